"""`kerasrwm export`: a portable SavedModel with the serving signature of the run's protocol."""

from kerasrwm.commands.common import add_model_argument
from kerasrwm.data import load_source
from kerasrwm.training.export import check_export_path
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.tasks import get_task


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="DIR", help="run directory written by `kerasrwm train`")
    parser.add_argument("--output", required=True, help="SavedModel directory to write (created)")
    add_model_argument(parser)


def run(args):
    check_export_path(args.output, "--output")
    config, model = load_trained(args.run_dir, args.model)
    image_shape = load_source(config["data"], **config["data_options"]).split("train").image_shape
    task = get_task(config["protocol"])
    task.export(model, args.output, image_shape)
    print(f"Wrote {args.output}: signature {task.signature}; loads with tf.saved_model.load, without kerasrwm.")

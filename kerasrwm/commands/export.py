"""`kerasrwm export`: a portable SavedModel with the `adapt_and_predict` signature."""

from kerasrwm.commands.common import add_model_argument
from kerasrwm.data import load_source
from kerasrwm.training.experiment import load_trained
from kerasrwm.training.export import export_adapt_and_predict


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="DIR", help="run directory written by `kerasrwm train`")
    parser.add_argument("--output", required=True, help="SavedModel directory to write")
    add_model_argument(parser)


def run(args):
    config, model = load_trained(args.run_dir, args.model)
    image_shape = load_source(config["data"], **config["data_options"]).split("train").image_shape
    export_adapt_and_predict(model, args.output, image_shape)
    print(
        f"Wrote {args.output}: signature adapt_and_predict(support_images, support_labels, query_images) -> "
        "logits; loads with tf.saved_model.load, without kerasrwm."
    )

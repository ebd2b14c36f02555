"""`kerasrwm export`: a portable SavedModel, `adapt_and_predict` (or `predict_sequence` for delayed-label runs)."""

from kerasrwm.commands.common import add_model_argument
from kerasrwm.data import load_source
from kerasrwm.training.experiment import load_trained
from kerasrwm.training.export import export_adapt_and_predict
from kerasrwm.training.export import export_predict_sequence


def add_arguments(parser):
    parser.add_argument("run_dir", metavar="DIR", help="run directory written by `kerasrwm train`")
    parser.add_argument("--output", required=True, help="SavedModel directory to write")
    add_model_argument(parser)


def run(args):
    config, model = load_trained(args.run_dir, args.model)
    image_shape = load_source(config["data"], **config["data_options"]).split("train").image_shape
    if config["protocol"] == "delayed_label":
        export_predict_sequence(model, args.output, image_shape)
        signature = "predict_sequence(images, labels) -> per-step logits"
    else:
        export_adapt_and_predict(model, args.output, image_shape)
        signature = "adapt_and_predict(support_images, support_labels, query_images) -> logits"
    print(f"Wrote {args.output}: signature {signature}; loads with tf.saved_model.load, without kerasrwm.")

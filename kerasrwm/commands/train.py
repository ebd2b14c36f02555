"""`kerasrwm train`: train (or resume) a bootstrapped SRWM learner into an output directory."""

from kerasrwm.commands.common import add_config_arguments
from kerasrwm.commands.common import config_from_args
from kerasrwm.training.experiment import train


def add_arguments(parser):
    parser.add_argument("--output", required=True, help="run directory (checkpoints, TensorBoard logs); rerun to resume")
    add_config_arguments(parser)


def run(args):
    config = config_from_args(args)
    train(config, args.output)
    print(f"Trained run in {args.output}. TensorBoard: tensorboard --logdir {args.output}/logs")

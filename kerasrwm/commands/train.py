"""`kerasrwm train`: train (or resume) the learner of a protocol (bootstrap or delayed_label) into a run directory."""

from kerasrwm.commands.common import add_config_arguments
from kerasrwm.commands.common import config_from_args
from kerasrwm.commands.common import progress_verbosity
from kerasrwm.training.bootstrap_diagnostics import diagnostics_callback
from kerasrwm.training.distributed import STRATEGIES
from kerasrwm.training.experiment import train


def add_arguments(parser):
    parser.add_argument(
        "--output", required=True, help="run directory (checkpoints, TensorBoard logs); rerun to resume"
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="none",
        help="none: one device; mirrored: all local GPUs (or logical CPUs, see KERASRWM_LOGICAL_CPUS); "
        "multiworker: the cluster in TF_CONFIG (run the command on every worker). --batch-size is the "
        "global batch. Not saved in the run: none and mirrored resume each other's runs; a multiworker "
        "run resumes under multiworker (default: none)",
    )
    add_config_arguments(parser)


def run(args):
    config = config_from_args(args)
    if config["diagnostics_every"] and args.strategy == "multiworker":
        raise ValueError("--diagnostics-every runs after training steps, which strategy 'multiworker' does not report.")
    callbacks = [diagnostics_callback(config, args.output)] if config["diagnostics_every"] else []
    train(config, args.output, callbacks=callbacks, verbose=progress_verbosity(), strategy=args.strategy)
    print(f"Trained run in {args.output}. TensorBoard: tensorboard --logdir {args.output}/logs")

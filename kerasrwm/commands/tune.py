"""`kerasrwm tune`: KerasTuner grid search over beta2, K' and the distillation start step, scored by validation
student accuracy."""

from kerasrwm.argument_types import number_list
from kerasrwm.commands.common import add_config_arguments
from kerasrwm.commands.common import config_from_args
from kerasrwm.commands.common import progress_verbosity
from kerasrwm.training.tuning import OBJECTIVE
from kerasrwm.training.tuning import trial_results
from kerasrwm.training.tuning import tune


def add_arguments(parser):
    parser.add_argument(
        "--output", required=True, help="search directory (trials, TensorBoard logs, best.json); rerun to resume"
    )
    parser.add_argument(
        "--beta2",
        dest="beta2_values",
        required=True,
        type=number_list(float),
        metavar="B2,...",
        help="distillation weights, e.g. 0,1,5,10",
    )
    parser.add_argument(
        "--k-extra",
        dest="k_extra_values",
        required=True,
        type=number_list(int),
        metavar="K',...",
        help="extra shots per class, e.g. 1,5,10",
    )
    parser.add_argument(
        "--beta2-start-step",
        dest="beta2_start_values",
        type=number_list(int),
        metavar="STEP,...",
        help="steps before distillation starts, searched (e.g. 0,1000); default: the configuration's, in every trial",
    )
    parser.add_argument(
        "--max-trials", type=int, help="most trials in all, finished ones included (default: the whole grid)"
    )
    add_config_arguments(parser, skip=("beta2", "k_extra", "beta2_start_step"))


def format_trials(trials, best_trial_id):
    """The trials as an aligned text table, the best one marked with `*`."""
    starts = any("beta2_start_step" in trial for trial in trials)
    header = ("trial", "beta2", *(("beta2_start_step",) if starts else ()), "k_extra", OBJECTIVE, "status")
    rows = [
        (
            ("* " if trial["trial_id"] == best_trial_id else "  ") + trial["trial_id"],
            f"{trial['beta2']:g}",
            *((str(trial.get("beta2_start_step", "-")),) if starts else ()),
            str(trial["k_extra"]),
            "-" if trial[OBJECTIVE] is None else f"{trial[OBJECTIVE]:.4f}",
            trial["status"],
        )
        for trial in trials
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in (header, *rows))


def run(args):
    config = config_from_args(args)
    grid_size = len(args.beta2_values) * len(args.k_extra_values) * len(args.beta2_start_values or [None])
    max_trials = grid_size if args.max_trials is None else args.max_trials
    best = tune(
        config,
        args.beta2_values,
        args.k_extra_values,
        max_trials,
        args.output,
        beta2_start_values=args.beta2_start_values,
        verbose=progress_verbosity(),
    )
    start = f", beta2_start_step={best['beta2_start_step']}" if "beta2_start_step" in best else ""
    print(
        f"Best: beta2={best['beta2']:g}{start}, k_extra={best['k_extra']} "
        f"({OBJECTIVE} {best[OBJECTIVE]:.4f}, trial {best['trial_id']}); written to {args.output}/best.json"
    )
    print(format_trials(trial_results(args.output), best["trial_id"]))
    print(f"TensorBoard (HParams tab): tensorboard --logdir {args.output}/logs")
    return best

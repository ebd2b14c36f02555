"""`kerasrwm evaluate`: K_test sweep of trained runs on fixed test episodes (table, JSON, CSV, plot)."""

import json
import os

from kerasrwm.argument_types import number_list
from kerasrwm.commands.common import add_model_argument
from kerasrwm.commands.common import progress_verbosity
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.evaluation import evaluate_runs
from kerasrwm.training.evaluation import summarize_settings
from kerasrwm.training.evaluation import write_results
from kerasrwm.training.k_test_sweep import format_settings_table
from kerasrwm.training.k_test_sweep import format_sweep_table

MAX_DEFAULT_BATCH = 32


def default_batch_size(episodes):
    """The largest divisor of `episodes` that is at most `MAX_DEFAULT_BATCH` (1 for episodes < 1)."""
    return max([size for size in range(1, min(episodes, MAX_DEFAULT_BATCH) + 1) if episodes % size == 0], default=1)


def add_arguments(parser):
    parser.add_argument(
        "runs_dirs",
        nargs="+",
        metavar="[NAME=]DIR",
        help="run directories written by `kerasrwm train`; runs given the same NAME are seeds of one "
        "setting, summarized as mean ± std over seeds (name every run or none)",
    )
    parser.add_argument("--k-test", type=number_list(int), default=[1, 5, 10, 15], help="comma-separated K_test values")
    parser.add_argument("--runs", type=int, default=5, help="evaluation runs (mean ± std over runs)")
    parser.add_argument("--episodes", type=int, default=320, help="episodes per run")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"episodes per batch; must divide --episodes (default: the largest divisor of --episodes up to {MAX_DEFAULT_BATCH})",
    )
    parser.add_argument("--split", default="test", help="split to evaluate on (test, validation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed evaluation episodes")
    parser.add_argument(
        "--output",
        help="where to write results.json, results.csv, k_test.png and, for named runs, settings.json "
        "(default: first DIR)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_model_argument(parser)


def parse_named_runs(arguments):
    """`{setting name: [run dirs]}` from `NAME=DIR` arguments, or None if no run is named."""
    named = [argument.partition("=") for argument in arguments]
    names = [name if separator and os.sep not in name else None for name, separator, _ in named]
    if all(name is None for name in names):
        return None
    if any(name is None or not name for name in names):
        raise ValueError(f"name every run (NAME=DIR) or none; received: {list(arguments)}.")
    settings = {}
    for name, (_, _, run_dir) in zip(names, named):
        settings.setdefault(name, []).append(run_dir)
    return settings


def run(args):
    settings = parse_named_runs(args.runs_dirs)
    run_dirs = list(dict.fromkeys(args.runs_dirs if settings is None else sum(settings.values(), [])))
    batch_size = default_batch_size(args.episodes) if args.batch_size is None else args.batch_size
    output = args.output or run_dirs[0]
    check_writable(output, "--output" if args.output else "--output (default: the first run directory)")
    results = evaluate_runs(
        run_dirs,
        args.k_test,
        args.runs,
        args.episodes,
        batch_size,
        args.split,
        args.seed,
        verbose=0 if args.json else progress_verbosity(),
        which=args.model,
    )
    summaries = summarize_settings(results, settings) if settings else None
    paths = write_results(results, output, summaries)
    if args.json:
        print(json.dumps({"runs": results, "settings": summaries} if summaries else results))
        return results
    for run_dir, rows in results.items():
        print(f"\n{run_dir} ({args.split} split, {args.runs} runs x {args.episodes} episodes)")
        print(format_sweep_table(rows))
    if summaries:
        print("\nAccuracy (%) per setting, mean ± std over seeds:")
        print(format_settings_table({name: summary["rows"] for name, summary in summaries.items()}))
    print(f"\nWrote {', '.join(paths.values())}")
    return results

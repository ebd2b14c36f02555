"""`kerasrwm evaluate`: K_test sweep of trained runs on fixed test episodes (table, JSON, CSV, plot)."""

import csv
import json
import os

from kerasrwm.data import load_source
from kerasrwm.models import format_settings_table
from kerasrwm.models import format_sweep_table
from kerasrwm.models import k_test_sweep
from kerasrwm.models import summarize_over_seeds
from kerasrwm.commands.common import add_model_argument
from kerasrwm.commands.common import progress_verbosity
from kerasrwm.training.experiment import load_trained


MAX_DEFAULT_BATCH = 32


def default_batch_size(episodes):
    """The largest divisor of `episodes` that is at most `MAX_DEFAULT_BATCH` (1 for episodes < 1)."""
    return max([size for size in range(1, min(episodes, MAX_DEFAULT_BATCH) + 1) if episodes % size == 0], default=1)


def _int_list(text):
    return [int(value) for value in text.split(",") if value]


def add_arguments(parser):
    parser.add_argument(
        "runs_dirs",
        nargs="+",
        metavar="[NAME=]DIR",
        help="run directories written by `kerasrwm train`; runs given the same NAME are seeds of one "
        "setting, summarized as mean ± std over seeds (name every run or none)",
    )
    parser.add_argument("--k-test", type=_int_list, default=[1, 5, 10, 15], help="comma-separated K_test values")
    parser.add_argument("--runs", type=int, default=5, help="evaluation runs (mean ± std over runs)")
    parser.add_argument("--episodes", type=int, default=320, help="episodes per run")
    parser.add_argument(
        "--batch-size", type=int, default=None,
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


def evaluate_runs(run_dirs, k_tests, runs, episodes, batch_size, split, seed, verbose=1, which="best"):
    """`{run_dir: sweep rows}` for each trained run's `which` model, on the same fixed episodes."""
    results = {}
    for run_dir in run_dirs:
        config, model = load_trained(run_dir, which)
        if config["protocol"] != "bootstrap":
            raise ValueError(
                f"run {run_dir!r} was trained with protocol={config['protocol']!r}; `evaluate` sweeps K_test "
                "of runs with protocol='bootstrap' (a delayed-label run reports accuracy by occurrence in its "
                "validation logs)."
            )
        store = load_source(config["data"], **config["data_options"]).split(split)
        results[run_dir] = k_test_sweep(
            model, store, k_tests, runs=runs, episodes=episodes, batch_size=batch_size, seed=seed,
            n_queries=config["n_queries"], verbose=verbose,
        )
    return results


def summarize_settings(results, settings):
    """`{name: {"runs": [run dirs], "rows": mean ± std over those runs}}` (see `summarize_over_seeds`)."""
    return {
        name: {"runs": run_dirs, "rows": summarize_over_seeds([results[run_dir] for run_dir in run_dirs])}
        for name, run_dirs in settings.items()
    }


def write_results(results, output_dir, settings=None):
    """Writes results.json, results.csv and the accuracy-vs-K_test plot k_test.png; returns their paths.

    With `settings` (from `summarize_settings`) it also writes settings.json, and the plot has
    one line per setting (error bars: std over seeds) instead of one per run.
    """
    os.makedirs(output_dir, exist_ok=True)
    names = ["results.json", "results.csv", "k_test.png"] + (["settings.json"] if settings else [])
    paths = {name: os.path.join(output_dir, name) for name in names}
    with open(paths["results.json"], "w") as file:
        json.dump(results, file, indent=2)
    with open(paths["results.csv"], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["run", "k_test", "accuracy_mean", "accuracy_std", "runs", "episodes"])
        for run_dir, rows in results.items():
            for row in rows:
                writer.writerow([run_dir, row["k_test"], row["accuracy_mean"], row["accuracy_std"], row["runs"], row["episodes"]])
    if settings:
        with open(paths["settings.json"], "w") as file:
            json.dump(settings, file, indent=2)
        curves = {name: setting["rows"] for name, setting in settings.items()}
    else:
        curves = {os.path.basename(os.path.normpath(run_dir)): rows for run_dir, rows in results.items()}
    _plot(curves, paths["k_test.png"])
    return paths


def _plot(curves, path):
    """Accuracy (%) against K_test, one line per curve (label -> sweep rows), std as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    for label, rows in curves.items():
        axes.errorbar(
            [row["k_test"] for row in rows],
            [100 * row["accuracy_mean"] for row in rows],
            yerr=[100 * row["accuracy_std"] for row in rows],
            marker="o", capsize=3, label=label,
        )
    axes.set_xlabel("K_test (shots per class at test time)")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run(args):
    settings = parse_named_runs(args.runs_dirs)
    run_dirs = list(dict.fromkeys(args.runs_dirs if settings is None else sum(settings.values(), [])))
    batch_size = default_batch_size(args.episodes) if args.batch_size is None else args.batch_size
    results = evaluate_runs(
        run_dirs, args.k_test, args.runs, args.episodes, batch_size, args.split, args.seed,
        verbose=0 if args.json else progress_verbosity(), which=args.model,
    )
    summaries = summarize_settings(results, settings) if settings else None
    paths = write_results(results, args.output or run_dirs[0], summaries)
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

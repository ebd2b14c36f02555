"""`kerasrwm evaluate`: K_test sweep of trained runs on fixed test episodes (table, JSON, CSV, plot)."""

import csv
import json
import os

from kerasrwm.data import load_source
from kerasrwm.models import format_sweep_table
from kerasrwm.models import k_test_sweep
from kerasrwm.training.experiment import load_trained


def _int_list(text):
    return [int(value) for value in text.split(",") if value]


def add_arguments(parser):
    parser.add_argument("runs_dirs", nargs="+", metavar="DIR", help="run directories written by `kerasrwm train`")
    parser.add_argument("--k-test", type=_int_list, default=[1, 5, 10, 15], help="comma-separated K_test values")
    parser.add_argument("--runs", type=int, default=5, help="evaluation runs (mean ± std over runs)")
    parser.add_argument("--episodes", type=int, default=320, help="episodes per run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--split", default="test", help="split to evaluate on (test, validation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed evaluation episodes")
    parser.add_argument("--output", help="where to write results.json, results.csv and k_test.png (default: first DIR)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def evaluate_runs(run_dirs, k_tests, runs, episodes, batch_size, split, seed, verbose=1):
    """`{run_dir: sweep rows}` for each trained run, on the same fixed episodes."""
    results = {}
    for run_dir in run_dirs:
        config, model = load_trained(run_dir)
        store = load_source(config["data"], **config["data_options"]).split(split)
        results[run_dir] = k_test_sweep(
            model, store, k_tests, runs=runs, episodes=episodes, batch_size=batch_size, seed=seed,
            n_queries=config["n_queries"], verbose=verbose,
        )
    return results


def write_results(results, output_dir):
    """Writes results.json, results.csv and the accuracy-vs-K_test plot k_test.png; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(output_dir, exist_ok=True)
    paths = {name: os.path.join(output_dir, name) for name in ("results.json", "results.csv", "k_test.png")}
    with open(paths["results.json"], "w") as file:
        json.dump(results, file, indent=2)
    with open(paths["results.csv"], "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["run", "k_test", "accuracy_mean", "accuracy_std", "runs", "episodes"])
        for run_dir, rows in results.items():
            for row in rows:
                writer.writerow([run_dir, row["k_test"], row["accuracy_mean"], row["accuracy_std"], row["runs"], row["episodes"]])
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for run_dir, rows in results.items():
        axes.errorbar(
            [row["k_test"] for row in rows],
            [100 * row["accuracy_mean"] for row in rows],
            yerr=[100 * row["accuracy_std"] for row in rows],
            marker="o", capsize=3, label=os.path.basename(os.path.normpath(run_dir)),
        )
    axes.set_xlabel("K_test (shots per class at test time)")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(paths["k_test.png"], dpi=120)
    plt.close(figure)
    return paths


def run(args):
    results = evaluate_runs(args.runs_dirs, args.k_test, args.runs, args.episodes, args.batch_size, args.split, args.seed)
    paths = write_results(results, args.output or args.runs_dirs[0])
    if args.json:
        print(json.dumps(results))
    else:
        for run_dir, rows in results.items():
            print(f"\n{run_dir} ({args.split} split, {args.runs} runs x {args.episodes} episodes)")
            print(format_sweep_table(rows))
        print(f"\nWrote {paths['results.json']}, {paths['results.csv']} and the plot {paths['k_test.png']}")
    return results

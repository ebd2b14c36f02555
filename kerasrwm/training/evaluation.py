"""Evaluation of trained runs, shared by `kerasrwm evaluate` and `kerasrwm demo`: K_test sweeps of
each run on the same fixed episodes, summaries over seeds, results files and the accuracy plot.
"""

import csv
import os

from kerasrwm.data import load_source
from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically
from kerasrwm.training.k_test_sweep import score_sweep
from kerasrwm.training.k_test_sweep import summarize_over_seeds
from kerasrwm.training.k_test_sweep import sweep_episodes
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import get_task


def evaluate_runs(run_dirs, k_tests, runs, episodes, batch_size, split, seed, verbose=1, which="best"):
    """`{run_dir: sweep rows}` for each trained run's `which` model, on the same fixed episodes.

    Every run is read and every argument checked (each run's configuration and model file, its
    protocol, `k_tests` against its `split`, `runs`, `episodes`, `batch_size`) before any run is
    scored, so a bad run or value fails at once, not after the runs before it.
    """
    planned = {}
    for run_dir in run_dirs:
        config, model = load_trained(run_dir, which)
        if not get_task(config["protocol"]).sweeps_k_test:
            sweepable = tuple(name for name, task in TASKS.items() if task.sweeps_k_test)
            raise ValueError(
                f"run {run_dir!r} was trained with protocol={config['protocol']!r}, whose learner is not an "
                f"episodic K-shot learner; `evaluate` sweeps K_test of runs with a protocol in {sweepable} "
                "(the run's validation logs hold its own scores)."
            )
        store = load_source(config["data"], **config["data_options"]).split(split)
        sweep = sweep_episodes(
            store, config["n_way"], k_tests, runs, episodes, batch_size, seed, config["n_queries"], name="k_test"
        )
        planned[run_dir] = model, sweep
    return {run_dir: score_sweep(model, sweep, verbose) for run_dir, (model, sweep) in planned.items()}


def summarize_settings(results, settings):
    """`{name: {"runs": [run dirs], "rows": mean ± std over those runs}}` (see `summarize_over_seeds`)."""
    return {
        name: {"runs": run_dirs, "rows": summarize_over_seeds([results[run_dir] for run_dir in run_dirs])}
        for name, run_dirs in settings.items()
    }


def write_results(results, output_dir, settings=None):
    """Writes results.json, results.csv and the accuracy-vs-K_test plot k_test.png; returns their paths.

    With `settings` (from `summarize_settings`) it also writes settings.json, and the plot has
    one line per setting (error bars: std over seeds) instead of one per run. Check that
    `output_dir` can be written (`atomic_files.check_writable`) before the evaluation.

    Raises:
        kerasrwm.training.atomic_files.WriteError: the disk is full; the files at those paths keep
            their previous content.
    """
    os.makedirs(output_dir, exist_ok=True)
    names = ["results.json", "results.csv", "k_test.png"] + (["settings.json"] if settings else [])
    paths = {name: os.path.join(output_dir, name) for name in names}
    write_json_atomically(paths["results.json"], results)
    write_atomically(paths["results.csv"], lambda path: _write_csv(results, path))
    if settings:
        write_json_atomically(paths["settings.json"], settings)
        curves = {name: setting["rows"] for name, setting in settings.items()}
    else:
        curves = {os.path.basename(os.path.normpath(run_dir)): rows for run_dir, rows in results.items()}
    write_atomically(paths["k_test.png"], lambda path: _plot(curves, path))
    return paths


def _write_csv(results, path):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["run", "k_test", "accuracy_mean", "accuracy_std", "runs", "episodes"])
        for run_dir, rows in results.items():
            for row in rows:
                writer.writerow(
                    [run_dir, row["k_test"], row["accuracy_mean"], row["accuracy_std"], row["runs"], row["episodes"]]
                )


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
            marker="o",
            capsize=3,
            label=label,
        )
    axes.set_xlabel("K_test (shots per class at test time)")
    axes.set_ylabel("accuracy (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)

"""Accuracy of a learner at several test-time shot counts K_test (Table-2 style), and its tables."""

import keras
import numpy as np
import tensorflow as tf

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import EvaluationEpisodes
from kerasrwm.validation import check_integer_list


def _correct_predictions_function(model):
    @tf.function
    def correct(batch):
        logits = model(batch, training=False)
        predictions = tf.argmax(logits, axis=-1, output_type=batch["query_labels"].dtype)
        return tf.reduce_sum(tf.cast(tf.equal(predictions, batch["query_labels"]), tf.int64))

    return correct


def check_k_tests(store, n_way, k_tests, n_queries=1, name="k_tests"):
    """Returns `k_tests` as a list of ints if every K_test is an integer >= 1 that `store` can fill.

    Args:
        store: `ClassStore` of the evaluation split.
        n_way: classes per episode.
        k_tests: the shot counts, a non-empty list.
        n_queries: queries per episode.
        name: the argument named in errors (`k_test_sweep` in a configuration).

    Raises:
        ValueError: naming `name`, for an empty list, a value that is not an integer >= 1, or a
            K_test whose episodes need more images of a class than the split holds.
    """
    k_tests = check_integer_list(name, k_tests)
    if not k_tests:
        raise ValueError(f"`{name}` must be a non-empty list of integers >= 1; received {name}={k_tests!r}.")
    try:
        store.for_spec(EpisodeSpec(n_way, max(k_tests), 0, n_queries))
    except ValueError as error:
        raise ValueError(f"`{name}` holds K_test={max(k_tests)}, too many shots for this split: {error}") from None
    return k_tests


def sweep_episodes(store, n_way, k_tests, runs=10, episodes=320, batch_size=32, seed=0, n_queries=1, name="k_tests"):
    """`{K_test: EvaluationEpisodes}` of a sweep, every argument checked before an episode is scored.

    Args: as in `k_test_sweep`, with `n_way` the classes per episode and `name` the argument
    that errors about `k_tests` name. Raises `ValueError` naming the bad argument.
    """
    k_tests = check_k_tests(store, n_way, k_tests, n_queries, name)
    return {
        k_test: EvaluationEpisodes(store, EpisodeSpec(n_way, k_test, 0, n_queries), batch_size, runs, episodes, seed)
        for k_test in k_tests
    }


def k_test_sweep(model, store, k_tests, runs=10, episodes=320, batch_size=32, seed=0, n_queries=1, verbose=0):
    """Accuracy mean and std over `runs` runs of `episodes` fixed episodes, for each K_test.

    The episodes come from `kerasrwm.data.EvaluationEpisodes`: the same in every process, and
    for one seed the support at a larger K_test extends the support at a smaller one (a paired
    sweep). The model reads N·K_test support examples and scores each query from that state.

    Args:
        model: a `kerasrwm.BootstrappedLearner` (anything called on an episode dict that
            returns query logits `[B, Q, n_way]` and has `n_way`).
        store: `ClassStore` of the evaluation split (validation or test).
        k_tests: iterable of shot counts, e.g. `(1, 5, 10, 15)`.
        runs, episodes, batch_size, seed: see `kerasrwm.data.EvaluationEpisodes`.
        n_queries: queries scored per episode.
        verbose: 1 shows a progress bar over (K_test, run) pairs.

    Returns:
        A list of dicts, one per K_test, with `k_test`, `accuracy_mean`, `accuracy_std`
        (sample standard deviation over runs; 0 for one run), `runs`, `episodes`; accuracies
        are fractions in [0, 1].
    """
    sweep = sweep_episodes(store, model.n_way, k_tests, runs, episodes, batch_size, seed, n_queries)
    return score_sweep(model, sweep, verbose)


def score_sweep(model, sweep, verbose=0):
    """The rows of `k_test_sweep` for `model` on the episodes of `sweep` (from `sweep_episodes`)."""
    correct = _correct_predictions_function(model)
    progress = keras.utils.Progbar(sum(len(runs) for runs in sweep.values()), verbose=verbose, unit_name="run")
    rows = []
    for k_test, evaluation in sweep.items():
        accuracies = []
        for run in evaluation:
            total = sum(int(correct(batch)) for batch in run)
            accuracies.append(total / (evaluation.episodes * evaluation.spec.n_queries))
            progress.add(1)
        rows.append(
            {
                "k_test": k_test,
                "accuracy_mean": float(np.mean(accuracies)),
                "accuracy_std": float(np.std(accuracies, ddof=1)) if evaluation.runs > 1 else 0.0,
                "runs": evaluation.runs,
                "episodes": evaluation.episodes,
            }
        )
    return rows


def summarize_over_seeds(sweeps):
    """Mean and std over training seeds of the sweeps of one setting (Table-2 style).

    Args:
        sweeps: one `k_test_sweep` result per seed, all over the same K_test values.

    Returns:
        A list of dicts, one per K_test, with `k_test`, `accuracy_mean` (mean over seeds of each
        seed's mean accuracy), `accuracy_std` (sample standard deviation over seeds; 0 for one
        seed) and `seeds`.
    """
    if not sweeps:
        raise ValueError("`sweeps` must hold at least one sweep.")
    k_tests = [row["k_test"] for row in sweeps[0]]
    for sweep in sweeps[1:]:
        if [row["k_test"] for row in sweep] != k_tests:
            raise ValueError(
                f"every sweep must cover the same K_test values; received {k_tests} and "
                f"{[row['k_test'] for row in sweep]}."
            )
    rows = []
    for index, k_test in enumerate(k_tests):
        means = [sweep[index]["accuracy_mean"] for sweep in sweeps]
        rows.append(
            {
                "k_test": k_test,
                "accuracy_mean": float(np.mean(means)),
                "accuracy_std": float(np.std(means, ddof=1)) if len(means) > 1 else 0.0,
                "seeds": len(means),
            }
        )
    return rows


def format_settings_table(settings):
    """Settings (name -> rows) as a Markdown table, one line per setting, one column per K_test.

    Args:
        settings: name -> `summarize_over_seeds` rows (cells: mean ± std over seeds) or
            `k_test_sweep` rows of one run (cells: mean ± std over evaluation runs).

    Cells are accuracy in percent.
    """
    first_rows = next(iter(settings.values()))
    count = "seeds" if "seeds" in first_rows[0] else "runs"
    k_tests = [row["k_test"] for row in first_rows]
    lines = [
        f"| setting | {count} | " + " | ".join(f"K_test={k}" for k in k_tests) + " |",
        "|---|---|" + "---|" * len(k_tests),
    ]
    for name, rows in settings.items():
        cells = " | ".join(f"{100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}" for row in rows)
        lines.append(f"| {name} | {rows[0][count]} | {cells} |")
    return "\n".join(lines)


def format_sweep_table(rows):
    """The sweep as a text table: one line per K_test, accuracy in percent, mean ± std."""
    lines = ["K_test | accuracy (%)", "------ | ------------"]
    for row in rows:
        lines.append(f"{row['k_test']:>6} | {100 * row['accuracy_mean']:.2f} ± {100 * row['accuracy_std']:.2f}")
    return "\n".join(lines)

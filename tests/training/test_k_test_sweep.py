"""`k_test_sweep` against accuracies counted independently on the same fixed episodes; its tables."""

import numpy as np
import pytest

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import EvaluationEpisodes
from kerasrwm.data import load_synthetic
from kerasrwm.training import format_settings_table
from kerasrwm.training import format_sweep_table
from kerasrwm.training import k_test_sweep
from kerasrwm.training import summarize_over_seeds
from tests.models.predictors import ConstantPredictor
from tests.models.predictors import Oracle


@pytest.fixture(scope="module")
def store():
    return load_synthetic(num_classes=40, images_per_class=20, image_size=12, seed=3).split("test")


@pytest.mark.slow
def test_constant_predictor_scores_the_fraction_of_class_zero_queries(store):
    model = ConstantPredictor(n_way=4)
    rows = k_test_sweep(model, store, [1, 3], runs=3, episodes=8, batch_size=4, seed=1, n_queries=2)
    assert model.support_lengths == {4, 12}
    for row in rows:
        spec = EpisodeSpec(4, row["k_test"], 0, 2)
        per_run = [
            np.mean(np.concatenate([batch["query_labels"].numpy().ravel() for batch in run]) == 0)
            for run in EvaluationEpisodes(store, spec, 4, 3, 8, 1)
        ]
        assert row["accuracy_mean"] == pytest.approx(np.mean(per_run))
        assert row["accuracy_std"] == pytest.approx(np.std(per_run, ddof=1))
        assert (row["runs"], row["episodes"]) == (3, 8)


def test_oracle_scores_one_and_the_table_shows_percentages(store):
    rows = k_test_sweep(Oracle(n_way=3), store, [2], runs=2, episodes=4, batch_size=2)
    assert rows == [{"k_test": 2, "accuracy_mean": 1.0, "accuracy_std": 0.0, "runs": 2, "episodes": 4}]
    assert "     2 | 100.00 ± 0.00" in format_sweep_table(rows)


@pytest.mark.parametrize("k_tests", [[], [0], [1.5], "5"])
def test_bad_k_tests(store, k_tests):
    with pytest.raises(ValueError, match=r"`k_tests` must be a (non-empty )?list of integers >= 1"):
        k_test_sweep(Oracle(n_way=3), store, k_tests)


def _sweep(means):
    return [
        {"k_test": k, "accuracy_mean": mean, "accuracy_std": 0.5, "runs": 2, "episodes": 4}
        for k, mean in zip((1, 5), means)
    ]


def test_summary_over_seeds_is_mean_and_sample_std_of_the_seed_means():
    seeds = [(0.5, 0.8), (0.6, 0.7), (0.7, 0.9)]
    rows = summarize_over_seeds([_sweep(means) for means in seeds])
    for index, row in enumerate(rows):
        column = [means[index] for means in seeds]
        assert row["k_test"] == (1, 5)[index] and row["seeds"] == 3
        assert row["accuracy_mean"] == pytest.approx(np.mean(column))
        assert row["accuracy_std"] == pytest.approx(np.std(column, ddof=1))
    assert summarize_over_seeds([_sweep((0.5, 0.8))])[0]["accuracy_std"] == 0.0
    table = format_settings_table({"plain": rows, "bootstrap": summarize_over_seeds([_sweep((0.25, 1.0))])})
    assert "| setting | seeds | K_test=1 | K_test=5 |" in table
    assert "| plain | 3 | 60.00 ± 10.00 | 80.00 ± 10.00 |" in table
    assert "| bootstrap | 1 | 25.00 ± 0.00 | 100.00 ± 0.00 |" in table


def test_summary_refuses_sweeps_over_different_k_tests():
    other = [dict(row, k_test=10) for row in _sweep((0.5, 0.8))]
    with pytest.raises(ValueError, match="same K_test values"):
        summarize_over_seeds([_sweep((0.5, 0.8)), other])


def test_settings_table_of_single_runs_counts_evaluation_runs():
    table = format_settings_table({"no_bootstrap": _sweep((0.5, 0.8)), "bootstrap": _sweep((0.6, 0.9))})
    assert "| setting | runs | K_test=1 | K_test=5 |" in table
    assert "| bootstrap | 2 | 60.00 ± 50.00 | 90.00 ± 50.00 |" in table

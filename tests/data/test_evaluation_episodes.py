import json
import subprocess
import sys

import numpy as np
import pytest

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import EvaluationEpisodes
from kerasrwm.data import episode_dataset
from tests.data.tagged_images import decode

SPEC = EpisodeSpec(n_way=4, k_shot=2, n_queries=2)

CHECKSUM_SCRIPT = """
import json, numpy as np
from kerasrwm.data import EpisodeSpec, EvaluationEpisodes, load_synthetic
store = load_synthetic(num_classes=30, images_per_class=8, seed=1).split("test")
evaluation = EvaluationEpisodes(store, EpisodeSpec(5, 3, n_queries=2), batch_size=4, runs=2, episodes=8, seed=11)
sums = [float(sum(np.sum(v.numpy() * (i + 1)) for b in run for i, v in enumerate(b.values()))) for run in evaluation]
print(json.dumps(sums))
"""


def run_batches(evaluation, run):
    return [{k: v.numpy() for k, v in batch.items()} for batch in evaluation.run(run)]


def test_runs_are_finite_fixed_and_distinct(tagged_store):
    evaluation = EvaluationEpisodes(tagged_store, SPEC, batch_size=4, runs=3, episodes=12, seed=5)
    assert len(evaluation) == 3
    first = run_batches(evaluation, 0)
    assert len(first) == 3 and first[0]["support_images"].shape == (4, 8, 6, 6, 1)
    again = run_batches(EvaluationEpisodes(tagged_store, SPEC, 4, 3, 12, seed=5), 0)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(first[0]["support_images"], run_batches(evaluation, 1)[0]["support_images"])
    assert sum(1 for _ in evaluation.dataset()) == 9


def test_episodes_do_not_depend_on_batch_size_and_differ_from_training(tagged_store):
    by_four = run_batches(EvaluationEpisodes(tagged_store, SPEC, 4, 1, 12, seed=5), 0)
    by_two = run_batches(EvaluationEpisodes(tagged_store, SPEC, 2, 1, 12, seed=5), 0)
    np.testing.assert_array_equal(
        np.concatenate([b["query_images"] for b in by_four]), np.concatenate([b["query_images"] for b in by_two])
    )
    training = next(iter(episode_dataset(tagged_store, SPEC, 4, seed=5)))
    assert not np.array_equal(training["support_images"].numpy(), by_four[0]["support_images"])


def test_k_sweep_keeps_classes_and_queries_and_nests_supports(tagged_store):
    one_shot = run_batches(EvaluationEpisodes(tagged_store, EpisodeSpec(4, 1, n_queries=2), 4, 1, 8, seed=2), 0)
    five_shot = run_batches(EvaluationEpisodes(tagged_store, EpisodeSpec(4, 5, n_queries=2), 4, 1, 8, seed=2), 0)
    for small, large in zip(one_shot, five_shot):
        np.testing.assert_array_equal(small["query_images"], large["query_images"])
        np.testing.assert_array_equal(small["query_labels"], large["query_labels"])
        for episode in range(4):
            small_support = set(zip(*decode(small["support_images"][episode])))
            large_support = set(zip(*decode(large["support_images"][episode])))
            assert small_support < large_support


@pytest.mark.slow
def test_identical_across_processes():
    outputs = [
        subprocess.run(
            [sys.executable, "-c", CHECKSUM_SCRIPT], capture_output=True, text=True, check=True, timeout=120
        ).stdout
        for _ in range(2)
    ]
    first, second = (json.loads(output.strip().splitlines()[-1]) for output in outputs)
    assert first == second and first[0] != first[1]


@pytest.mark.parametrize(
    "arguments, name",
    [((4, 0, 12), "runs"), ((4, 1, 10), "episodes"), ((0, 1, 12), "batch_size")],
)
def test_invalid_arguments(tagged_store, arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        EvaluationEpisodes(tagged_store, SPEC, *arguments, seed=0)


def test_evaluation_dataset_is_every_run_in_order_as_one_tf_data_dataset(tagged_store):
    import tensorflow as tf

    from kerasrwm.data import evaluation_dataset

    dataset = evaluation_dataset(tagged_store, SPEC, batch_size=4, runs=2, episodes=8, seed=5)
    assert isinstance(dataset, tf.data.Dataset)
    runs = EvaluationEpisodes(tagged_store, SPEC, batch_size=4, runs=2, episodes=8, seed=5)
    expected = run_batches(runs, 0) + run_batches(runs, 1)
    received = [{k: v.numpy() for k, v in batch.items()} for batch in dataset]
    assert len(received) == len(expected) == 4
    for got, want in zip(received, expected, strict=True):
        np.testing.assert_array_equal(got["support_labels"], want["support_labels"])
        np.testing.assert_array_equal(got["query_images"], want["query_images"])

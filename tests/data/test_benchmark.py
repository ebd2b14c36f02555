"""`kerasrwm.benchmarks.data`: the NumPy reference sampler makes the same kind of batch, and `run` reports figures."""

import argparse

import numpy as np

from kerasrwm.benchmarks import data as benchmark
from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from tests.data.tagged_images import decode


def test_numpy_sampler_matches_the_in_graph_batch_layout(tagged_store):
    spec = EpisodeSpec(4, 3, 2, 3)
    numpy_batch = benchmark.numpy_batch(tagged_store, spec, 5, np.random.default_rng(0))
    graph_batch = next(iter(episode_dataset(tagged_store, spec, 5, seed=0)))
    for key, value in graph_batch.items():
        assert numpy_batch[key].shape == tuple(value.shape) and numpy_batch[key].dtype == value.dtype.as_numpy_dtype
    for episode in range(5):
        parts = [list(zip(*decode(numpy_batch[f"{p}_images"][episode]))) for p in ("support", "extra", "query")]
        assert len(set(sum(parts, []))) == 12 + 8 + 3


def test_run_reports_both_rates_and_their_ratio():
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    args = parser.parse_args(
        ["--omniglot", "", "--synthetic-size", "12", "--synthetic-classes", "20", "--seconds", "0.05", "--rounds", "1"]
    )
    figures = benchmark.run(args)
    prefix = "synthetic_12x12x3_"
    rates = [figures[prefix + "in_graph_episodes_per_s"], figures[prefix + "numpy_episodes_per_s"]]
    assert all(rate > 0 for rate in rates)
    assert np.isclose(figures[prefix + "speedup"], rates[0] / rates[1])

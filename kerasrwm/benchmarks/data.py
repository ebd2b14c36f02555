"""`kerasrwm bench data`: episodes per second of the in-graph sampler vs a per-episode NumPy sampler.

The headline figure is `<store>_speedup`: in-graph over the NumPy sampler called directly.
"""

import itertools
import time

import numpy as np
import tensorflow as tf

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from kerasrwm.data import load_source


def add_arguments(parser):
    parser.add_argument(
        "--omniglot", default="", help="path of an omniglot_28.npz to time as well (default: synthetic only)"
    )
    parser.add_argument("--batch", type=int, default=16, help="episodes per batch B")
    parser.add_argument("--n-way", type=int, default=5, help="classes per episode N")
    parser.add_argument("--k-shot", type=int, default=5, help="support shots per class K")
    parser.add_argument("--k-extra", type=int, default=5, help="extra shots per class K'")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per round and sampler")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds (median kept)")
    parser.add_argument("--synthetic-size", type=int, default=84, help="side of the synthetic images")
    parser.add_argument("--synthetic-classes", type=int, default=100, help="classes of the synthetic source")


def numpy_episode(store, spec, rng):
    """One episode, sampled the straightforward way: Python loops and NumPy, one episode at a time."""
    classes = rng.choice(store.num_classes, spec.n_way, replace=False)
    picks = [rng.choice(store.class_image_indices[c], spec.images_per_class, replace=False) for c in classes]
    query_labels = rng.integers(spec.n_way, size=spec.n_queries)
    query_ids = np.array([picks[label][j] for j, label in enumerate(query_labels)])
    episode = {"query_images": query_ids, "query_labels": query_labels}
    first = spec.n_queries
    for part, shots in (("support", spec.k_shot), ("extra", spec.k_extra)):
        ids = np.concatenate([class_picks[first : first + shots] for class_picks in picks])
        labels = np.repeat(np.arange(spec.n_way), shots)
        order = rng.permutation(len(ids))
        episode[f"{part}_images"], episode[f"{part}_labels"] = ids[order], labels[order]
        first += shots
    return {
        name: store.images[value].astype(np.float32) / 255.0 if name.endswith("images") else value.astype(np.int32)
        for name, value in episode.items()
    }


def numpy_batch(store, spec, batch_size, rng):
    episodes = [numpy_episode(store, spec, rng) for _ in range(batch_size)]
    return {name: np.stack([episode[name] for episode in episodes]) for name in episodes[0]}


def compare(store, spec, batch_size, seconds, rounds):
    """Median episodes/s of the samplers over alternating rounds of `seconds` each, and the ratios.

    Three samplers: the in-graph pipeline; the NumPy sampler called directly
    (its best case); and the NumPy sampler fed through
    `tf.data.Dataset.from_generator`, as it would have to be to train with it.
    Each tf.data pipeline is built afresh each round, warmed up for
    `seconds / 2` (tf.data tunes its parallelism meanwhile) and released
    before the next sampler runs, so background threads never compete.
    """
    rng = np.random.default_rng(0)
    dataset = episode_dataset(store, spec, batch_size, seed=0)
    from_generator = tf.data.Dataset.from_generator(
        lambda: (numpy_batch(store, spec, batch_size, rng) for _ in itertools.count()),
        output_signature=dataset.element_spec,
    ).prefetch(tf.data.AUTOTUNE)
    rates = {"in_graph": [], "numpy": [], "numpy_from_generator": []}
    for _ in range(rounds):
        for name, pipeline in (("in_graph", dataset), ("numpy_from_generator", from_generator)):
            next_batch = iter(pipeline).__next__
            _run_for(next_batch, seconds / 2)
            rates[name].append(batch_size * _run_for(next_batch, seconds))
            del next_batch
        rates["numpy"].append(batch_size * _run_for(lambda: numpy_batch(store, spec, batch_size, rng), seconds))
    figures = {f"{name}_episodes_per_s": float(np.median(values)) for name, values in rates.items()}
    figures["speedup"] = figures["in_graph_episodes_per_s"] / figures["numpy_episodes_per_s"]
    figures["speedup_over_from_generator"] = (
        figures["in_graph_episodes_per_s"] / figures["numpy_from_generator_episodes_per_s"]
    )
    return figures


def _run_for(sample, seconds):
    """Calls `sample()` for about `seconds`; returns calls per second."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sample()
        calls += 1
    return calls / (time.perf_counter() - start)


def run(args):
    spec = EpisodeSpec(args.n_way, args.k_shot, args.k_extra)
    stores = {
        f"synthetic_{args.synthetic_size}x{args.synthetic_size}x3": load_source(
            "synthetic", num_classes=args.synthetic_classes, image_size=args.synthetic_size, channels=3
        ).split("train")
    }
    if args.omniglot:
        stores["omniglot_28"] = load_source(f"npz:{args.omniglot}", split_scheme="vinyals").split("train")
    figures = {"batch": args.batch, "n_way": args.n_way, "k_shot": args.k_shot, "k_extra": args.k_extra}
    for name, store in stores.items():
        for key, value in compare(store, spec, args.batch, args.seconds, args.rounds).items():
            figures[f"{name}_{key}"] = value
    return figures

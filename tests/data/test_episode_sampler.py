"""Properties of the in-graph episode stream, read back from images that encode their class and identity."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.data import ClassStore
from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from tests.data.tagged_images import decode

SPEC = EpisodeSpec(n_way=4, k_shot=3, k_extra=2, n_queries=3)


def take(store, spec, batches, seed=0, start_batch=0, batch_size=8):
    dataset = episode_dataset(store, spec, batch_size, seed, start_batch=start_batch)
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(batches)]


def episodes(batches):
    """Each episode as a dict of arrays (the batch axis removed)."""
    return [{k: v[i] for k, v in batch.items()} for batch in batches for i in range(len(batch["query_labels"]))]


def test_static_shapes_dtypes_and_range(tagged_store):
    dataset = episode_dataset(tagged_store, SPEC, batch_size=8, seed=0)
    shapes = {k: tuple(v.shape) for k, v in dataset.element_spec.items()}
    assert shapes == {
        "support_images": (8, 12, 6, 6, 1),
        "support_labels": (8, 12),
        "extra_images": (8, 8, 6, 6, 1),
        "extra_labels": (8, 8),
        "query_images": (8, 3, 6, 6, 1),
        "query_labels": (8, 3),
    }
    batch = next(iter(dataset))
    assert batch["support_images"].dtype == tf.float32 and batch["support_labels"].dtype == tf.int32
    assert 0.0 <= float(tf.reduce_min(batch["support_images"])) and float(tf.reduce_max(batch["support_images"])) <= 1.0


def test_extras_keep_a_zero_length_axis(tagged_store):
    dataset = episode_dataset(tagged_store, EpisodeSpec(4, 2), batch_size=3, seed=0)
    assert tuple(dataset.element_spec["extra_images"].shape) == (3, 0, 6, 6, 1)
    assert tuple(next(iter(dataset))["extra_labels"].shape) == (3, 0)


def test_labels_are_a_consistent_permutation_and_shots_per_class(tagged_store):
    label_of_class = {}
    for episode in episodes(take(tagged_store, SPEC, 10)):
        classes = {}
        for part in ("support", "extra", "query"):
            image_classes, _ = decode(episode[f"{part}_images"])
            for label, image_class in zip(episode[f"{part}_labels"], image_classes):
                assert classes.setdefault(label, image_class) == image_class
        assert sorted(classes) == list(range(SPEC.n_way))
        assert len(set(classes.values())) == SPEC.n_way
        assert np.array_equal(np.bincount(episode["support_labels"], minlength=4), [3] * 4)
        assert np.array_equal(np.bincount(episode["extra_labels"], minlength=4), [2] * 4)
        for label, image_class in classes.items():
            label_of_class.setdefault(image_class, set()).add(label)
    # Each class is seen under several labels: labels are re-drawn per episode.
    assert all(len(labels) >= 3 for labels in label_of_class.values())


def test_support_and_extras_are_interleaved_across_classes(tagged_store):
    runs = [
        labels
        for episode in episodes(take(tagged_store, SPEC, 10))
        for labels in (episode["support_labels"], episode["extra_labels"])
    ]
    blocked = sum(np.all(np.diff(labels) >= 0) for labels in runs)
    assert blocked == 0


def test_no_image_twice_and_queries_disjoint_from_support_and_extras(tagged_store):
    for episode in episodes(take(tagged_store, SPEC, 10)):
        identities = [list(zip(*decode(episode[f"{part}_images"]))) for part in ("support", "extra", "query")]
        everything = [identity for part in identities for identity in part]
        assert len(set(everything)) == len(everything) == 12 + 8 + 3


def test_same_seed_same_batches_other_seed_differs(tagged_store):
    first, again, other = (
        take(tagged_store, SPEC, 3, seed=7),
        take(tagged_store, SPEC, 3, seed=7),
        take(tagged_store, SPEC, 3, seed=8),
    )
    for a, b, c in zip(first, again, other):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a["support_images"], c["support_images"])


def test_start_batch_resumes_the_identical_stream(tagged_store):
    whole = take(tagged_store, SPEC, 5, seed=3)
    resumed = take(tagged_store, SPEC, 2, seed=3, start_batch=3)
    for a, b in zip(whole[3:], resumed):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(whole[0]["support_images"], resumed[0]["support_images"])


def test_class_frequencies_are_roughly_uniform(tagged_store):
    spec = EpisodeSpec(n_way=3, k_shot=1)
    batches = take(tagged_store, spec, 50, batch_size=64)
    classes, _ = decode(np.concatenate([b["support_images"] for b in batches]))
    counts = np.bincount(classes.ravel(), minlength=12)
    expected = 50 * 64 * 3 / 12  # 800 per class
    # Binomial std is about 25; a biased sampler (e.g. always the first classes) is far outside.
    assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))


def test_query_labels_are_uniform_over_the_way(tagged_store):
    batches = take(tagged_store, SPEC, 20, batch_size=32)
    labels = np.concatenate([b["query_labels"].ravel() for b in batches])
    counts = np.bincount(labels, minlength=4)
    assert np.all(np.abs(counts - len(labels) / 4) < 6 * np.sqrt(len(labels) / 4))


def test_pipeline_has_no_python_function(tagged_store):
    graph = episode_dataset(tagged_store, SPEC, 2, seed=0)._as_serialized_graph().numpy()
    for op_name in (b"PyFunc", b"EagerPyFunc", b"GeneratorDataset"):
        assert op_name not in graph


def test_too_small_class_names_it_unless_dropped():
    images = np.zeros((5 * 10 + 4, 4, 4, 1), np.uint8)
    counts = [10, 10, 10, 10, 10, 4]
    indices = np.split(np.arange(len(images)), np.cumsum(counts)[:-1])
    names = [f"class_{i}" for i in range(6)]
    spec = EpisodeSpec(n_way=5, k_shot=5, n_queries=1)
    with pytest.raises(ValueError, match=r"'class_5' \(4 images\).*drop_small_classes=True"):
        episode_dataset(ClassStore(images, indices, names), spec, 2, seed=0)
    store = ClassStore(images, indices, names, drop_small_classes=True)
    assert store.for_spec(spec).num_classes == 5
    with pytest.raises(ValueError, match=r"`n_way`.*\(5\).*n_way=6"):
        store.for_spec(EpisodeSpec(n_way=6, k_shot=5))


@pytest.mark.parametrize(
    "arguments, name", [({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"), ({"start_batch": -2}, "start_batch")]
)
def test_invalid_arguments_name_themselves(tagged_store, arguments, name):
    kwargs = {"batch_size": 2, "seed": 0, **arguments}
    with pytest.raises(ValueError, match=f"`{name}`"):
        episode_dataset(tagged_store, SPEC, **kwargs)

import numpy as np
import pytest

from kerasrwm.data import load_synthetic


@pytest.fixture(scope="module")
def source():
    return load_synthetic(num_classes=100, seed=3)


def nearest_class_mean_accuracy(store, n_way, k_shot, episodes=300, seed=0):
    """Accuracy of a nearest-class-mean classifier on raw pixels, an independent check of difficulty."""
    rng = np.random.default_rng(seed)
    pixels = store.images.reshape(len(store.images), -1).astype(np.float32) / 255.0
    correct = 0
    for _ in range(episodes):
        classes = rng.choice(store.num_classes, n_way, replace=False)
        picks = [rng.choice(store.class_image_indices[c], k_shot + 1, replace=False) for c in classes]
        means = np.stack([pixels[p[:k_shot]].mean(0) for p in picks])
        queries = np.stack([pixels[p[k_shot]] for p in picks])
        distances = ((queries[:, np.newaxis] - means[np.newaxis]) ** 2).sum(-1)
        correct += np.sum(distances.argmin(1) == np.arange(n_way))
    return correct / (episodes * n_way)


def test_more_shots_help_and_five_shot_is_not_saturated(source):
    store = source.split("train")
    one_shot = nearest_class_mean_accuracy(store, 5, 1)
    five_shot = nearest_class_mean_accuracy(store, 5, 5)
    assert 0.3 < one_shot < five_shot - 0.1
    assert five_shot < 0.95


def test_deterministic_from_seed_with_a_fixed_split(source):
    again = load_synthetic(num_classes=100, seed=3)
    np.testing.assert_array_equal(source.images, again.images)
    assert not np.array_equal(source.images, load_synthetic(num_classes=100, seed=4).images)
    splits = [set(source.split(s).class_names) for s in ("train", "validation", "test")]
    assert [len(s) for s in splits] == [64, 16, 20]
    assert not (splits[0] & splits[1] or splits[0] & splits[2] or splits[1] & splits[2])


def test_image_size_channels_and_counts():
    source = load_synthetic(num_classes=10, images_per_class=3, image_size=12, channels=3)
    assert source.images.shape == (30, 12, 12, 3) and source.images.dtype == np.uint8
    assert np.all(source.split("train").class_counts == 3)
    with pytest.raises(ValueError, match="`channels`"):
        load_synthetic(channels=2)
    with pytest.raises(ValueError, match="`num_classes`"):
        load_synthetic(num_classes=0)

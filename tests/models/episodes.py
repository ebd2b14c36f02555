"""Small random episode batches in the layout of `kerasrwm.data.episode_dataset`."""

import numpy as np
import tensorflow as tf


def random_episode_batch(batch=2, n_way=3, k_shot=2, k_extra=1, queries=2, image_shape=(4, 4, 1), seed=0):
    """A dict of tensors with the keys and shapes the learner consumes.

    Images of class c are noisy copies of a per-episode class prototype, so the task is learnable.
    """
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(size=(batch, n_way) + image_shape)

    def examples(count_per_class):
        labels = np.stack([rng.permutation(np.repeat(np.arange(n_way), count_per_class)) for _ in range(batch)])
        images = prototypes[np.arange(batch)[:, None], labels] + 0.3 * rng.normal(size=labels.shape + image_shape)
        return tf.constant(images.astype(np.float32)), tf.constant(labels.astype(np.int32))

    support_images, support_labels = examples(k_shot)
    extra_images, extra_labels = examples(k_extra)
    query_labels = rng.integers(0, n_way, size=(batch, queries))
    query_images = prototypes[np.arange(batch)[:, None], query_labels] + 0.3 * rng.normal(
        size=query_labels.shape + image_shape
    )
    return {
        "support_images": support_images,
        "support_labels": support_labels,
        "extra_images": extra_images,
        "extra_labels": extra_labels,
        "query_images": tf.constant(query_images.astype(np.float32)),
        "query_labels": tf.constant(query_labels.astype(np.int32)),
    }


def as_pixels(batch):
    """`batch` with every image array squashed into (0, 1) by the logistic function, as served images are."""
    return {
        key: 1.0 / (1.0 + np.exp(-np.asarray(value))) if key.endswith("images") else value
        for key, value in batch.items()
    }

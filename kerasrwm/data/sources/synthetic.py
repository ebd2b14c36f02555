"""A built-in few-shot source of procedurally drawn stroke characters; needs no download."""

import numpy as np

from kerasrwm.data.source import Source
from kerasrwm.data.sources.images import DEFAULT_SPLIT_FRACTIONS
from kerasrwm.data.sources.images import split_by_fractions
from kerasrwm.validation import check_integer

STROKES_PER_CLASS = 2
SEGMENTS_PER_STROKE = 3
POINT_JITTER = 0.035  # per-instance displacement of each stroke point, in image widths
MAX_ROTATION = np.pi / 9  # 20 degrees
SCALE_RANGE = (0.8, 1.1)
MAX_SHEAR = 0.15
MAX_SHIFT = 0.08
WIDTH_RANGE = (0.03, 0.06)
NOISE_STD = 0.15


def load_synthetic(
    num_classes=400,
    images_per_class=20,
    image_size=28,
    channels=1,
    seed=0,
    split_fractions=DEFAULT_SPLIT_FRACTIONS,
    drop_small_classes=False,
):
    """A `Source` of synthetic "characters": random strokes, distorted per image.

    Each class is a prototype of `STROKES_PER_CLASS` random-walk polylines
    (and, with 3 channels, a colour). Each image of a class moves every stroke
    point a little, applies a random affine map (rotation, anisotropic scale,
    shear, shift), draws the strokes with a random width and adds pixel noise.
    One image is an ambiguous view of its class, so more shots help and 5-way
    5-shot is far from solved by a pixel-space classifier. The same arguments
    give the same images and the same class split (classes in id order, cut by
    `split_fractions`).

    Args:
        num_classes: number of classes.
        images_per_class: images drawn per class.
        image_size: side of the square images.
        channels: 1 (grey) or 3 (coloured strokes).
        seed: seed of the generator.
        split_fractions: `(train, validation, test)` fractions of the classes.
        drop_small_classes: passed to the `Source` (no class is small here
            unless `images_per_class` is).

    Returns:
        A `Source` of uint8 images `[num_classes * images_per_class,
        image_size, image_size, channels]`.
    """
    num_classes = check_integer("num_classes", num_classes, 1)
    images_per_class = check_integer("images_per_class", images_per_class, 1)
    image_size = check_integer("image_size", image_size, 4)
    seed = check_integer("seed", seed, 0)
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3; received channels={channels!r}.")
    rng = np.random.default_rng(seed)
    prototypes = _stroke_prototypes(rng, num_classes)
    colours = rng.uniform(0.35, 1.0, size=(num_classes, channels))
    labels = np.repeat(np.arange(num_classes), images_per_class)
    points = _distort(rng, prototypes[labels])
    widths = rng.uniform(*WIDTH_RANGE, size=len(labels))
    ink = _render(points, widths, image_size)
    images = ink[..., np.newaxis] * colours[labels][:, np.newaxis, np.newaxis, :]
    images += rng.normal(scale=NOISE_STD, size=images.shape)
    images = np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    return Source(
        images,
        labels,
        [f"synthetic_{c:04d}" for c in range(num_classes)],
        split_by_fractions(num_classes, split_fractions),
        drop_small_classes=drop_small_classes,
    )


def _stroke_prototypes(rng, num_classes):
    """Random-walk stroke points `[num_classes, strokes, segments + 1, 2]` inside the unit square."""
    starts = rng.uniform(0.2, 0.8, size=(num_classes, STROKES_PER_CLASS, 1, 2))
    steps = rng.normal(scale=0.22, size=(num_classes, STROKES_PER_CLASS, SEGMENTS_PER_STROKE, 2))
    return np.clip(np.concatenate([starts, starts + np.cumsum(steps, axis=2)], axis=2), 0.1, 0.9)


def _distort(rng, points):
    """Per-image point jitter and random affine map about the centre; `points` `[n, strokes, p, 2]`."""
    n = len(points)
    points = points + rng.normal(scale=POINT_JITTER, size=points.shape)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION, size=n)
    scale = rng.uniform(*SCALE_RANGE, size=(n, 2))
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, size=n)
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shearing = np.stack([np.stack([np.ones(n), shear], -1), np.stack([np.zeros(n), np.ones(n)], -1)], -2)
    linear = rotation @ shearing * scale[:, :, np.newaxis]
    shift = 0.5 + rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=(n, 1, 1, 2))
    return np.einsum("nij,nspj->nspi", linear, points - 0.5) + shift


def _render(points, widths, image_size, chunk_size=256):
    """Anti-aliased ink `[n, image_size, image_size]` in [0, 1] of the polylines `points` `[n, s, p, 2]`."""
    centres = (np.arange(image_size, dtype=np.float32) + 0.5) / image_size
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)[:, ::-1]  # (x, y)
    points = points.astype(np.float32)
    starts = points[:, :, :-1].reshape(len(points), -1, 2)
    ends = points[:, :, 1:].reshape(len(points), -1, 2)
    ink = np.empty((len(points), image_size * image_size), dtype=np.float32)
    for first in range(0, len(points), chunk_size):
        chunk = slice(first, first + chunk_size)
        a, b = starts[chunk, :, np.newaxis], ends[chunk, :, np.newaxis]
        along = b - a
        t = np.clip(np.sum((grid - a) * along, -1) / np.maximum(np.sum(along**2, -1), 1e-9), 0.0, 1.0)
        distance = np.sqrt(np.sum((grid - (a + t[..., np.newaxis] * along)) ** 2, -1).min(axis=1))
        ink[chunk] = np.clip((widths[chunk, np.newaxis] - distance) * image_size + 0.5, 0.0, 1.0)
    return ink.reshape(-1, image_size, image_size)

"""Helpers shared by the sources: uint8 image checks, resizing, stacking decoded images, fraction splits."""

import numbers

import keras
import numpy as np
from PIL import Image

DEFAULT_SPLIT_FRACTIONS = (0.64, 0.16, 0.2)  # mini-ImageNet's 64 / 16 / 20 classes


def as_uint8_images(images):
    """Checks an image array and returns it as uint8 `[num_images, height, width, channels]`.

    Args:
        images: array `[num_images, height, width]` or `[..., channels]`;
            uint8, bool, or float with values in `[0, 1]`.

    Returns:
        A uint8 array of rank 4 (floats are scaled by 255 and rounded).
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"`images` must have shape [num_images, height, width] or [num_images, height, width, "
            f"channels] with 1 or 3 channels; received shape {images.shape}."
        )
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(images.dtype, np.floating):
        if not np.all(np.isfinite(images)):
            raise ValueError("`images` must hold finite values; received NaN or infinite values.")
        low, high = float(images.min()), float(images.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"Float `images` must have values in [0, 1]; received values in [{low}, {high}].")
        return np.round(images * 255.0).astype(np.uint8)
    raise ValueError(
        f"`images` must have dtype uint8, bool or float with values in [0, 1]; received dtype {images.dtype}."
    )


def image_size_pair(image_size):
    """`image_size` (an int or a `(height, width)` pair) as a tuple, or None."""
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral):
        image_size = (image_size, image_size)
    image_size = tuple(image_size)
    if len(image_size) != 2 or not all(isinstance(s, numbers.Integral) and s > 0 for s in image_size):
        raise ValueError(
            "`image_size` must be a positive int or a (height, width) pair of positive ints; "
            f"received image_size={image_size!r}."
        )
    return tuple(int(s) for s in image_size)


def resize_images(images, image_size):
    """Resizes uint8 images `[num_images, h, w, c]` to `image_size` by exact area averaging (PIL's box filter).

    Args:
        images: uint8 array `[num_images, height, width, channels]`, 1 or 3
            channels.
        image_size: int or `(height, width)`; None returns `images` unchanged.

    Returns:
        uint8 array `[num_images, new_height, new_width, channels]`.
    """
    image_size = image_size_pair(image_size)
    if image_size is None or tuple(images.shape[1:3]) == image_size:
        return images
    height, width = image_size
    resized = np.empty((len(images), height, width, images.shape[-1]), dtype=np.uint8)
    for i, image in enumerate(images):
        pil_image = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        resized[i] = np.asarray(pil_image.resize((width, height), Image.BOX)).reshape(resized.shape[1:])
    return resized


def stack_images(named_images, count, image_size=None, verbose=True):
    """Stacks decoded images of one size (or resized to `image_size`) into one uint8 array, with a progress bar.

    Args:
        named_images: iterable of `(name, uint8 array [h, w, c])`; the name
            (e.g. a file) is used in error messages.
        count: number of images, or None if unknown.
        image_size: optional int or `(height, width)` to resize every image to.
        verbose: show a `keras.utils.Progbar`.

    Returns:
        uint8 array `[num_images, height, width, channels]`.
    """
    progress = keras.utils.Progbar(count, unit_name="image", verbose=int(verbose))
    images, first_name = [], None
    for name, image in named_images:
        image = resize_images(image[np.newaxis], image_size)[0]
        if images and image.shape != images[0].shape:
            raise ValueError(
                f"All images must have one size unless `image_size` is given; {name!r} is "
                f"{image.shape[1]}x{image.shape[0]} but {first_name!r} is "
                f"{images[0].shape[1]}x{images[0].shape[0]}. Pass image_size=(height, width) to resize."
            )
        first_name = first_name or name
        images.append(image)
        progress.add(1)
    return np.stack(images)


def split_by_fractions(num_classes, split_fractions=DEFAULT_SPLIT_FRACTIONS):
    """Class ids `0..num_classes-1` cut into consecutive train / validation / test blocks.

    Args:
        num_classes: number of classes.
        split_fractions: `(train, validation, test)` fractions summing to 1.

    Returns:
        dict from split name to an int array of class ids.
    """
    try:
        fractions = np.asarray(split_fractions, dtype=np.float64)
    except (TypeError, ValueError):  # e.g. the string "0.6,0.2,0.2"
        fractions = np.zeros(0)
    if fractions.shape != (3,) or np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(
            "`split_fractions` must be three non-negative fractions (train, validation, test) "
            f"summing to 1; received split_fractions={split_fractions!r}."
        )
    ends = np.round(np.cumsum(fractions) * num_classes).astype(int)
    starts = np.concatenate([[0], ends[:-1]])
    names = ("train", "validation", "test")
    return {name: np.arange(start, end) for name, start, end in zip(names, starts, ends)}

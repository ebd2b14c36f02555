"""Sources from in-memory arrays and from `.npz` files (e.g. the Omniglot files of `shared/data`)."""

import os
import re

import numpy as np

from kerasrwm.data.source import Source
from kerasrwm.data.sources.images import DEFAULT_SPLIT_FRACTIONS
from kerasrwm.data.sources.images import as_uint8_images
from kerasrwm.data.sources.images import resize_images
from kerasrwm.data.sources.images import split_by_fractions

# Values accepted in a per-class split array, and the split each one stands for.
SPLIT_ALIASES = {
    "train": "train",
    "background": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "test": "test",
    "evaluation": "test",
}


def from_arrays(
    images,
    labels,
    class_split=None,
    class_names=None,
    split_fractions=DEFAULT_SPLIT_FRACTIONS,
    rotations=False,
    image_size=None,
    drop_small_classes=False,
):
    """A `Source` from an image array and integer labels.

    Args:
        images: array `[num_images, height, width]` or `[..., channels]` (1 or
            3 channels); uint8, bool, or float in `[0, 1]`.
        labels: int array `[num_images]` of class ids `0..num_classes-1`, indices into
            `class_names` and `class_split` when those are given. Without them, any
            non-negative values: the classes are the distinct values, named by their value,
            numbered in increasing order.
        class_split: optional array `[num_classes]` of split names per class:
            `"train"` (or `"background"`), `"validation"` (or `"val"`,
            `"valid"`), `"test"` (or `"evaluation"`). Without it, classes are
            cut in id order by `split_fractions`.
        class_names: optional `[num_classes]` names (default: the class ids).
        split_fractions: `(train, validation, test)` fractions used when
            `class_split` is None.
        rotations: add the 90/180/270-degree rotations of every class as new
            classes of the same split (square images only).
        image_size: optional int or `(height, width)` to resize to (area
            averaging).
        drop_small_classes: leave out classes too small for an episode instead
            of raising when the episode pipeline is built.

    Returns:
        A `Source`.
    """
    images = as_uint8_images(images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`labels` must be a rank-1 integer array; received shape {labels.shape} and dtype {labels.dtype}."
        )
    if len(labels) != len(images):
        raise ValueError(f"`labels` must have one entry per image ({len(images)}); received {len(labels)}.")
    if len(labels) and labels.min() < 0:
        raise ValueError(f"`labels` must be non-negative class ids; received {labels.min()}.")
    if class_names is None and class_split is None:
        labels, class_names = _dense_class_ids(labels)
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    if class_names is not None:
        if len(class_names) < num_classes:
            raise ValueError(
                f"`class_names` must name every class id up to {num_classes - 1}; received {len(class_names)} names."
            )
        num_classes = len(class_names)
    if class_split is None:
        class_splits = split_by_fractions(num_classes, split_fractions)
    else:
        class_splits = _splits_from_names(class_split, num_classes)
    if class_names is None:  # only now that `class_split` has one entry per class id
        class_names = [str(c) for c in range(num_classes)]
    return Source(
        resize_images(images, image_size),
        labels,
        class_names,
        class_splits,
        rotations=rotations,
        drop_small_classes=drop_small_classes,
    )


def _dense_class_ids(labels):
    """`(class ids 0..n-1, names)` of the n distinct label values, in increasing order of value.

    Labels that are already 0..n-1 keep their ids; others (e.g. `class * 10**12`) are numbered
    from the sorted distinct values, so no array as long as the largest value is ever built.
    """
    values, ids = np.unique(labels, return_inverse=True)
    return ids.reshape(labels.shape), [str(value) for value in values]


def _splits_from_names(class_split, num_classes):
    class_split = np.asarray(class_split).astype(str)
    if class_split.shape != (num_classes,):
        raise ValueError(
            f"`class_split` must have one entry per class ({num_classes}); received shape {class_split.shape}."
        )
    unknown = sorted(str(value) for value in set(class_split) - set(SPLIT_ALIASES) - {""})
    if unknown:
        raise ValueError(f"`class_split` values must be among {sorted(SPLIT_ALIASES)} or ''; received {unknown}.")
    splits = np.array([SPLIT_ALIASES.get(value, "") for value in class_split])
    return {name: np.flatnonzero(splits == name) for name in ("train", "validation", "test")}


def _open_npz(path):
    """`np.load(path)` of a `.npz` archive, or `ValueError` naming `path` and what is wrong with it."""
    if not os.path.exists(path):
        raise ValueError(f"The file `path`={str(path)!r} does not exist.")
    if os.path.isdir(path):
        raise ValueError(
            f"`path`={str(path)!r} is a directory; an npz source is one .npz file (folder:PATH reads class folders)."
        )
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as error:
        raise ValueError(f"The file `path`={str(path)!r} is not a readable .npz archive: {error}") from None
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise ValueError(f"The file `path`={str(path)!r} holds one array (.npy), not a .npz archive of named arrays.")
    return arrays


def load_npz(path, split_scheme=None, **options):
    """A `Source` from a `.npz` file of images, labels and optional per-class split arrays.

    The file holds `labels` and either `images` (`[n, h, w]` or
    `[n, h, w, c]`) or bit-packed binary images `images_packed` `[n, bytes]`
    with their `image_shape` `(h, w)`; optionally `class_names` and per-class
    split arrays. Both Omniglot files of `shared/data` load this way.

    Args:
        path: path of the `.npz` file.
        split_scheme: which per-class split array to use: None uses
            `class_split` if present (else `split_fractions`); `"background"`
            is `class_split` too (Omniglot's background / evaluation split,
            with no validation split); any other name `X` reads
            `class_X_split` (e.g. `"vinyals"`: Omniglot's 1028 / 172 / 423
            characters).
        **options: `from_arrays` options (`rotations`, `image_size`,
            `split_fractions`, `drop_small_classes`).

    Returns:
        A `Source`.
    """
    with _open_npz(path) as arrays:
        if "images" in arrays:
            images = arrays["images"]
        elif "images_packed" in arrays and "image_shape" in arrays:
            height, width = (int(s) for s in arrays["image_shape"])
            bits = np.unpackbits(arrays["images_packed"], axis=1, count=height * width)
            images = (bits * np.uint8(255)).reshape(-1, height, width)
        else:
            raise ValueError(
                f"The file `path`={str(path)!r} must hold `images`, or `images_packed` and "
                f"`image_shape`; it holds {sorted(arrays)}."
            )
        if "labels" not in arrays:
            raise ValueError(f"The file `path`={str(path)!r} must hold `labels`; it holds {sorted(arrays)}.")
        split_key = "class_split" if split_scheme in (None, "background") else f"class_{split_scheme}_split"
        if split_scheme is not None and split_key not in arrays:
            schemes = ["background"] if "class_split" in arrays else []
            schemes += [key[6:-6] for key in arrays if re.fullmatch(r"class_\w+_split", key)]
            raise ValueError(
                f"`split_scheme` must name a split array of {str(path)!r}: one of {schemes}; "
                f"received split_scheme={split_scheme!r}."
            )
        return from_arrays(
            images,
            arrays["labels"],
            class_split=arrays[split_key] if split_key in arrays else None,
            class_names=arrays["class_names"] if "class_names" in arrays else None,
            **options,
        )

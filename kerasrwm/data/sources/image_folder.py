"""A source from a folder of class subfolders of images (e.g. the usual mini-ImageNet layout)."""

import os

import numpy as np
from PIL import Image

from kerasrwm.data.source import Source
from kerasrwm.data.sources.arrays import SPLIT_ALIASES
from kerasrwm.data.sources.images import DEFAULT_SPLIT_FRACTIONS
from kerasrwm.data.sources.images import image_size_pair
from kerasrwm.data.sources.images import split_by_fractions
from kerasrwm.data.sources.images import stack_images
from kerasrwm.validation import check_choice

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
COLOR_MODES = {"rgb": "RGB", "grayscale": "L"}


def load_image_folder(
    path,
    image_size=None,
    color_mode="rgb",
    split_fractions=DEFAULT_SPLIT_FRACTIONS,
    drop_small_classes=False,
    verbose=True,
):
    """A `Source` from `path/<class>/<image>` or `path/<split>/<class>/<image>` files.

    If the subfolders of `path` are split names (`train`, `val` /
    `validation`, `test`; the mini-ImageNet layout), each holds the class
    subfolders of that split. Otherwise the subfolders of `path` are classes,
    cut in sorted-name order into splits by `split_fractions`. Every png / jpg
    image is decoded once into one uint8 array, with a progress bar.

    Args:
        path: the root folder.
        image_size: optional int or `(height, width)`: resize every image
            (area averaging). Without it all images must have one size.
        color_mode: `"rgb"` (3 channels) or `"grayscale"` (1 channel).
        split_fractions: `(train, validation, test)` fractions, used when
            `path` has no split subfolders.
        drop_small_classes: leave out classes too small for an episode
            instead of raising when the episode pipeline is built.
        verbose: show a `keras.utils.Progbar` while decoding.

    Returns:
        A `Source`; class names are `<class folder>` (or `<split>/<class>`).
    """
    check_choice("color_mode", color_mode, sorted(COLOR_MODES))
    image_size = image_size_pair(image_size)
    if not os.path.isdir(path):
        raise ValueError(f"`path` must be a folder; received path={str(path)!r}.")
    subfolders = _subfolders(path)
    if subfolders and all(name in SPLIT_ALIASES for name in subfolders):
        class_folders = [(name, c) for name in subfolders for c in _subfolders(os.path.join(path, name))]
        class_names = [f"{split}/{name}" for split, name in class_folders]
        split_of_class = np.array([SPLIT_ALIASES[split] for split, _ in class_folders])
        class_splits = {s: np.flatnonzero(split_of_class == s) for s in ("train", "validation", "test")}
    else:
        class_folders = [("", name) for name in subfolders]
        class_names = list(subfolders)
        class_splits = split_by_fractions(len(class_names), split_fractions)
    files, labels = [], []
    for label, (split, name) in enumerate(class_folders):
        folder = os.path.join(path, split, name)
        class_files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not class_files:
            raise ValueError(f"Every class folder must hold png or jpg images; {folder!r} under `path` holds none.")
        files += [os.path.join(folder, f) for f in class_files]
        labels += [label] * len(class_files)
    if not files:
        raise ValueError(f"`path`={str(path)!r} must hold class subfolders of png or jpg images; it holds none.")
    images = stack_images(_decode(files, COLOR_MODES[color_mode]), len(files), image_size, verbose)
    return Source(images, np.array(labels), class_names, class_splits, drop_small_classes=drop_small_classes)


def _subfolders(path):
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _decode(files, pil_mode):
    """Yields `(file, uint8 array [h, w, c])` for each image file."""
    for file in files:
        try:
            with Image.open(file) as opened:
                image = np.asarray(opened.convert(pil_mode))
        except OSError as error:  # includes PIL's UnidentifiedImageError
            raise ValueError(f"Cannot read the image file {file!r}: {error}") from error
        yield file, image.reshape(*image.shape[:2], -1)

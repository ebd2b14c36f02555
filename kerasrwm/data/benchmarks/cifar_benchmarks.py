"""CIFAR-FS and FC100 as one `.npz` file each (`load_source("npz:PATH")` reads it), from CIFAR-100.

The file holds `images` uint8 `[num_images, 32, 32, 3]`, `labels` `[num_images]`,
`class_names` (CIFAR-100's fine names) and `class_split` (`"train"`, `"validation"` or `"test"`
per class). It is written whole under a temporary name and renamed; reading CIFAR-100 takes
seconds, so an interrupted run simply starts again.
"""

import os

import keras
import numpy as np

from kerasrwm.data.benchmarks.split_lists import SPLIT_FILES
from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes
from kerasrwm.data.benchmarks.split_lists import read_name_lists
from kerasrwm.training.atomic_files import write_atomically

SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}  # list file -> `class_split` value


def cifar_fs_classes(lists_directory):
    """`{split: [fine class name]}` of Bertinetto et al.'s CIFAR-FS lists."""
    return read_name_lists(lists_directory)


def fc100_classes(lists_directory):
    """`{split: [fine class name]}` of Oreshkin et al.'s FC100: every class of the split's superclasses.

    Classes are listed superclass by superclass (in list order), in fine-label order within one.
    """
    table = read_cifar100_classes()
    superclasses = read_name_lists(lists_directory)
    known = {coarse for _, coarse in table}
    for split, names in superclasses.items():
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"The fc100 list {split}.txt names superclasses CIFAR-100 lacks: {unknown}.")
    return {
        split: [fine for coarse in names for fine, c in table if c == coarse] for split, names in superclasses.items()
    }


def check_classes(cifar, split_classes):
    """Raises `ValueError` if a class of `{split: [fine name]}` is absent from `cifar` or holds fewer images than the others."""
    class_names = [name for split in SPLIT_FILES for name in split_classes[split]]
    unknown = sorted(set(class_names) - set(cifar.fine_names))
    if unknown:
        raise ValueError(f"The split lists name classes CIFAR-100 lacks: {unknown}.")
    counts_by_class = np.bincount(cifar.fine_labels, minlength=len(cifar.fine_names))
    full = int(counts_by_class.max())
    for name in class_names:
        count = counts_by_class[cifar.fine_names.index(name)]
        if count < full:
            raise ValueError(
                f"CIFAR-100 class {name!r} holds {count} images in `source`, the others {full}; the copy is incomplete."
            )


def write_cifar_benchmark(cifar, path, split_classes, verbose=True):
    """Writes the classes `{split: [fine name]}` of the `Cifar100` `cifar` to the `.npz` file `path`.

    Returns:
        `{split: {"classes": ..., "images": ...}}`.
    """
    check_classes(cifar, split_classes)
    class_names = [name for split in SPLIT_FILES for name in split_classes[split]]
    full = int(np.bincount(cifar.fine_labels).max())
    progress = keras.utils.Progbar(full * len(class_names), unit_name="image", verbose=int(verbose))
    images, labels = [], []
    for label, name in enumerate(class_names):
        selected = cifar.images[cifar.fine_labels == cifar.fine_names.index(name)]
        images.append(selected)
        labels.append(np.full(len(selected), label, dtype=np.int64))
        progress.add(len(selected))
    class_split = [SPLIT_NAMES[split] for split in SPLIT_FILES for _ in split_classes[split]]
    arrays = {
        "images": np.concatenate(images),
        "labels": np.concatenate(labels),
        "class_names": np.array(class_names),
        "class_split": np.array(class_split),
    }
    write_atomically(str(path), lambda temporary: np.savez(temporary, **arrays))
    return {s: {"classes": len(split_classes[s]), "images": full * len(split_classes[s])} for s in SPLIT_FILES}


def npz_path(output, dataset):
    """Where the `.npz` file of `dataset` goes in the folder `output`."""
    return os.path.join(str(output), dataset.replace("-", "_") + ".npz")

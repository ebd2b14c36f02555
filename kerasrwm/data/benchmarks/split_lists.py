"""The published class splits of the few-shot benchmarks, read from the lists shipped in `splits/`.

Every list is a file per split, `train`, `val` and `test`, in the layout of its publication
(`splits/SOURCES.md` says where each comes from):

- `mini_imagenet/{split}.csv`: Ravi & Larochelle's `filename,label` rows, one per image
  (`n0153282900000005.jpg,n01532829`: image 5 of the class in the numeric order of its
  ILSVRC-2012 training files);
- `tiered_imagenet/{split}.csv`: Ren et al.'s `synset,category` rows, one per class;
- `cifar_fs/{split}.txt`: Bertinetto et al.'s CIFAR-100 class names, one a line;
- `fc100/{split}.txt`: Oreshkin et al.'s CIFAR-100 superclass names, one a line.

A folder of the same layout (for instance reduced lists for a test) can replace the shipped one.
"""

import csv
import hashlib
import os
import re

SHIPPED_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "splits")
SPLIT_FILES = ("train", "val", "test")  # also the split folder names of a prepared image folder
SYNSET_PATTERN = re.compile(r"n\d{8}")
MINI_IMAGENET_NAME = re.compile(r"(n\d{8})(\d{8})\.jpg")


def split_list_directory(dataset_folder, split_lists=None):
    """The folder of one dataset's lists: `split_lists` if given, else the shipped `splits/<dataset_folder>`."""
    directory = os.path.join(SHIPPED_DIRECTORY, dataset_folder) if split_lists is None else str(split_lists)
    if not os.path.isdir(directory):
        raise ValueError(f"`split_lists` must be a folder of train / val / test lists; received {directory!r}.")
    return directory


def _split_file(directory, split, extension):
    path = os.path.join(directory, split + extension)
    if not os.path.isfile(path):
        raise ValueError(f"The split lists in `split_lists`={directory!r} lack {split + extension}.")
    return path


def _csv_rows(path, header=None):
    with open(path, newline="") as file:
        rows = [row for row in csv.reader(file) if row]
    if header is not None:
        if not rows or rows[0] != header:
            raise ValueError(f"The split list {path!r} must start with the header {','.join(header)}.")
        rows = rows[1:]
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != 2:
            raise ValueError(f"Line {number} of the split list {path!r} must have two fields; received {row}.")
    return rows


def read_mini_imagenet_lists(directory):
    """Ravi & Larochelle's lists: `{split: {synset: [image index, ...]}}` in file order.

    An image index `i` names the `i`-th (from 1) training image of the synset in the numeric
    order of the ILSVRC-2012 file numbers (`n01532829_123.JPEG` is number 123).
    """
    lists = {}
    for split in SPLIT_FILES:
        path = _split_file(directory, split, ".csv")
        classes = {}
        for filename, synset in _csv_rows(path, header=["filename", "label"]):
            match = MINI_IMAGENET_NAME.fullmatch(filename)
            if match is None or match.group(1) != synset or int(match.group(2)) < 1:
                raise ValueError(
                    f"The split list {path!r} names {filename!r} for class {synset!r}; mini-ImageNet names look "
                    "like n0153282900000005.jpg (the synset, then an 8-digit image number from 1)."
                )
            classes.setdefault(synset, []).append(int(match.group(2)))
        lists[split] = classes
    return lists


def read_tiered_imagenet_lists(directory):
    """Ren et al.'s lists: `{split: {synset: category synset}}` in file order."""
    lists = {}
    for split in SPLIT_FILES:
        path = _split_file(directory, split, ".csv")
        rows = _csv_rows(path)
        for synset, category in rows:
            if not (SYNSET_PATTERN.fullmatch(synset) and SYNSET_PATTERN.fullmatch(category)):
                raise ValueError(
                    f"The split list {path!r} must hold synset,category rows; received {synset},{category}."
                )
        lists[split] = dict(rows)
    return lists


def read_name_lists(directory):
    """One name a line per split (CIFAR-FS classes, FC100 superclasses): `{split: [name, ...]}`."""
    lists = {}
    for split in SPLIT_FILES:
        with open(_split_file(directory, split, ".txt")) as file:
            lists[split] = [line.strip() for line in file if line.strip()]
    return lists


def read_cifar100_classes():
    """CIFAR-100's classes by fine label: `[(fine name, coarse name), ...]` (the dataset's `meta` table)."""
    with open(os.path.join(SHIPPED_DIRECTORY, "cifar100_classes.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    return [(row["fine_label_name"], row["coarse_label_name"]) for row in rows]


def lists_sha256(directory, extension):
    """SHA-256 of a list folder's train, val and test files, in that order: identifies the split used."""
    digest = hashlib.sha256()
    for split in SPLIT_FILES:
        with open(_split_file(directory, split, extension), "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()

"""Reading CIFAR-100 (train and test merged, 600 images per class) from `cifar-100-python` or TFDS.

`source` is the `cifar-100-python.tar.gz` archive, its unpacked `cifar-100-python` folder (or a
folder holding it), or `tfds:cifar100` for a copy that TensorFlow Datasets has prepared.
"""

import dataclasses
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np

from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes

ARCHIVE_FOLDER = "cifar-100-python"
PICKLES = ("train", "test", "meta")
PUBLISHED_ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"  # cifar-100-python.tar.gz on the CIFAR page


@dataclasses.dataclass
class Cifar100:
    """CIFAR-100's 60,000 images, train then test.

    Attributes:
        images: uint8 `[60000, 32, 32, 3]`.
        fine_labels: int `[60000]`, the class ids (0..99, alphabetical by name).
        coarse_labels: int `[60000]`, the superclass ids (0..19).
        fine_names: the 100 class names by id.
        coarse_names: the 20 superclass names by id.
        checksums: `{file: {"sha256": ..., "md5": ...}}` of what was read (empty for TFDS).
    """

    images: np.ndarray
    fine_labels: np.ndarray
    coarse_labels: np.ndarray
    fine_names: list
    coarse_names: list
    checksums: dict


def _digests(data):
    return {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}


def _wrong_dataset(source, names):
    names = sorted(names)
    if any("cifar-10-batches" in n or os.path.basename(n).startswith("data_batch") for n in names):
        what = "a CIFAR-10 copy (cifar-10-batches-py), not CIFAR-100"
    elif any(n.startswith("n") and n[1:9].isdigit() for n in (os.path.basename(n) for n in names)):
        what = "ImageNet synsets, not CIFAR-100"
    else:
        what = f"no {ARCHIVE_FOLDER}/{{train,test,meta}}; it holds {', '.join(repr(n) for n in names[:3]) or 'nothing'}"
    return ValueError(
        f"`source`={str(source)!r} must be CIFAR-100 (cifar-100-python.tar.gz, its folder or tfds:cifar100); it is {what}."
    )


def _read_pickles(source):
    """`({name: bytes} of train / test / meta, checksums)` from the archive or the folder."""
    source = str(source)
    if os.path.isdir(source):
        folder = os.path.join(source, ARCHIVE_FOLDER) if os.path.isdir(os.path.join(source, ARCHIVE_FOLDER)) else source
        present = set(os.listdir(folder))
        if not set(PICKLES) <= present:
            raise _wrong_dataset(source, present)
        files = {}
        for name in PICKLES:
            with open(os.path.join(folder, name), "rb") as file:
                files[name] = file.read()
        return files, {name: _digests(data) for name, data in files.items()}
    if not os.path.isfile(source):
        raise ValueError(f"`source`={source!r} does not exist.")
    with open(source, "rb") as file:
        archive_bytes = file.read()
    wanted = {f"{ARCHIVE_FOLDER}/{name}": name for name in PICKLES}
    files, names = {}, []
    try:
        with tarfile.open(fileobj=io.BytesIO(archive_bytes), mode="r|*") as archive:  # one pass over the stream
            for member in archive:
                names.append(member.name)
                if member.isfile() and member.name in wanted:
                    files[wanted[member.name]] = archive.extractfile(member).read()
    except tarfile.ReadError:
        raise ValueError(
            f"`source`={source!r} is not a tar archive; give cifar-100-python.tar.gz or its folder."
        ) from None
    if len(files) < len(PICKLES):
        raise _wrong_dataset(source, names)
    digests = _digests(archive_bytes)
    digests["published_md5"] = digests["md5"] == PUBLISHED_ARCHIVE_MD5
    return files, {os.path.basename(source): digests}


def _unpickle(data, name, source):
    try:
        loaded = pickle.loads(data, encoding="bytes")
    except Exception as error:  # a damaged pickle raises many kinds of errors
        raise ValueError(
            f"The {name!r} file of `source`={str(source)!r} is not a readable CIFAR pickle: {error}"
        ) from None
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in loaded.items()}


def _read_python_version(source):
    files, checksums = _read_pickles(source)
    parts = {name: _unpickle(files[name], name, source) for name in PICKLES}
    for name, keys in (("train", ("data", "fine_labels", "coarse_labels")), ("meta", ("fine_label_names",))):
        if not set(keys) <= set(parts[name]):
            raise _wrong_dataset(source, [f"{name}:{key}" for key in parts[name]])
    data = np.concatenate([np.asarray(parts[name]["data"], dtype=np.uint8) for name in ("train", "test")])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # stored as [channel, row, column] planes
    fine = np.concatenate([np.asarray(parts[name]["fine_labels"]) for name in ("train", "test")])
    coarse = np.concatenate([np.asarray(parts[name]["coarse_labels"]) for name in ("train", "test")])
    names = [
        [n.decode() if isinstance(n, bytes) else n for n in parts["meta"][key]]
        for key in ("fine_label_names", "coarse_label_names")
    ]
    return Cifar100(images, fine, coarse, names[0], names[1], checksums)


def _read_tfds(name, data_dir=None):
    import tensorflow_datasets as tfds  # imported on use: loading it takes seconds

    try:
        datasets, info = tfds.load(name, split=["train", "test"], data_dir=data_dir, download=False, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"`source`='tfds:{name}' names no TFDS dataset; use tfds:cifar100.") from None
    except AssertionError as error:  # TFDS's way of saying the dataset is not prepared
        raise ValueError(
            f"The TFDS dataset {name!r} is not prepared (TFDS data dir {data_dir or 'default'}): {error}"
        ) from None
    if "coarse_label" not in info.features:
        raise _wrong_dataset(f"tfds:{name}", sorted(info.features))
    arrays = [tfds.as_numpy(d.batch(10000)) for d in datasets]
    batches = [batch for split in arrays for batch in split]
    return Cifar100(
        np.concatenate([b["image"] for b in batches]).astype(np.uint8),
        np.concatenate([b["label"] for b in batches]),
        np.concatenate([b["coarse_label"] for b in batches]),
        list(info.features["label"].names),
        list(info.features["coarse_label"].names),
        {},
    )


def read_cifar100(source):
    """All 60,000 CIFAR-100 images from `source`, checked against CIFAR-100's class table.

    Args:
        source: `cifar-100-python.tar.gz`, the `cifar-100-python` folder (or
            a folder holding it), or `"tfds:cifar100"` (optionally
            `"tfds:cifar100:VERSION"`; read with `download=False`).

    Returns:
        A `Cifar100`.

    Raises:
        ValueError: `source` is another dataset (CIFAR-10, ImageNet, ...),
            or its classes or superclasses are not CIFAR-100's.
    """
    source = str(source)
    cifar = _read_tfds(source[5:]) if source.startswith("tfds:") else _read_python_version(source)
    table = read_cifar100_classes()
    if cifar.fine_names != [fine for fine, _ in table]:
        raise _wrong_dataset(source, cifar.fine_names)
    coarse_names = sorted({coarse for _, coarse in table})
    expected_coarse = np.array([coarse_names.index(coarse) for _, coarse in table])
    if cifar.coarse_names != coarse_names or np.any(expected_coarse[cifar.fine_labels] != cifar.coarse_labels):
        raise ValueError(f"`source`={source!r} has CIFAR-100's classes but not its superclasses; the copy is damaged.")
    return cifar

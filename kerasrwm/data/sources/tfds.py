"""A source from a TensorFlow Datasets dataset, loaded with `tfds.load`."""

import socket

import numpy as np

from kerasrwm.data.source import SPLIT_NAMES
from kerasrwm.data.sources.arrays import from_arrays
from kerasrwm.data.sources.images import stack_images
from kerasrwm.validation import check_boolean

DEFAULT_SPLITS = {"train": "train", "test": "test"}  # e.g. Omniglot: background -> train, evaluation -> test


def load_tfds(
    name,
    splits=None,
    image_key="image",
    label_key="label",
    data_dir=None,
    download=True,
    verbose=True,
    **options,
):
    """A `Source` from the TFDS dataset `name`, read once into memory.

    Args:
        name: TFDS name, e.g. `"omniglot"` (with an optional `:version`).
        splits: either a dict from our split names (`"train"`,
            `"validation"`, `"test"`) to TFDS split strings, whose classes must
            then be disjoint (default `{"train": "train", "test": "test"}`,
            right for Omniglot), or one TFDS split string (e.g.
            `"train+test"`) whose classes are cut by `split_fractions`.
        image_key: feature holding the image.
        label_key: feature holding the integer class label.
        data_dir: TFDS data folder (default: TFDS's own).
        download: let TFDS download and prepare the dataset if needed.
        verbose: show a progress bar while reading.
        **options: `from_arrays` options (`image_size`, `rotations`,
            `split_fractions`, `drop_small_classes`).

    Returns:
        A `Source`.
    """
    download = check_boolean("download", download)
    splits = DEFAULT_SPLITS if splits is None else splits
    if not isinstance(splits, str) and not set(splits) <= set(SPLIT_NAMES):
        raise ValueError(f"`splits` keys must be among {SPLIT_NAMES}; received splits={splits!r}.")
    tfds_splits = [splits] if isinstance(splits, str) else list(splits.values())
    import tensorflow_datasets as tfds  # imported on use: loading it takes seconds

    try:
        if download and not tfds.builder(name, data_dir=data_dir).is_prepared():
            _check_network(name, data_dir)
        datasets, info = tfds.load(name, split=tfds_splits, data_dir=data_dir, download=download, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(f"`name` {name!r} is not a TFDS dataset; `tfds.list_builders()` lists them.") from None
    except AssertionError as error:  # TFDS's way of saying the data is not prepared and download=False
        raise ValueError(
            f"The TFDS dataset {name!r} is not prepared in `data_dir`={data_dir!r} and `download` is false: "
            f"pass download=true or prepare it first ({error})."
        ) from None
    for key in (image_key, label_key):
        if key not in info.features:
            raise ValueError(
                f"The TFDS dataset {name!r} has no feature {key!r} (from `image_key` / `label_key`); "
                f"its features are {sorted(info.features)}."
            )
    image_size = options.get("image_size")
    images, labels = zip(*(_read(d, image_key, label_key, image_size, verbose) for d in datasets))
    class_names = getattr(info.features[label_key], "names", None)
    if isinstance(splits, str):
        return from_arrays(images[0], labels[0], class_names=class_names, **options)
    num_classes = len(class_names) if class_names else int(max(split_labels.max() for split_labels in labels)) + 1
    class_split = np.full(num_classes, "", dtype=object)
    for split, split_labels in zip(splits, labels):
        for class_id in np.unique(split_labels):
            if class_split[class_id] not in ("", split):
                raise ValueError(
                    f"The TFDS splits in `splits`={splits!r} share class {class_id}; use one TFDS "
                    "split string (e.g. 'train+test') to cut the classes by `split_fractions` instead."
                )
            class_split[class_id] = split
    return from_arrays(
        np.concatenate(images),
        np.concatenate(labels),
        class_split=class_split.astype(str),
        class_names=class_names,
        **options,
    )


PROBE_ADDRESS = ("storage.googleapis.com", 443)
"""Where TFDS keeps its prepared copies; reaching it says the network is there before TFDS retries for minutes."""


def _check_network(name, data_dir, timeout_s=5.0):
    """Raises `ValueError` (one line: how to prepare `name` offline) unless `PROBE_ADDRESS` answers."""
    try:
        socket.create_connection(PROBE_ADDRESS, timeout=timeout_s).close()
    except OSError as error:
        where = data_dir or "DIR"
        raise ValueError(
            f"The TFDS dataset {name!r} is not prepared in `data_dir`={data_dir!r} and the network is unreachable "
            f"({type(error).__name__}: {error}): prepare it where there is network (`tfds build {name} "
            f"--data_dir {where}`, or `tfds build {name} --manual_dir FILES` from downloaded files), copy that "
            f"folder here and pass data_dir={where!r}, download=false."
        ) from None


def _read(dataset, image_key, label_key, image_size, verbose):
    """All `(image, label)` pairs of a TFDS split as uint8 `[n, h, w, c]` and int64 `[n]` arrays."""
    labels = []

    def named_images():
        for index, example in enumerate(dataset.as_numpy_iterator()):
            labels.append(example[label_key])
            yield f"{label_key}={example[label_key]} #{index}", example[image_key]

    count = int(dataset.cardinality())
    images = stack_images(named_images(), count if count >= 0 else None, image_size, verbose)
    return images, np.array(labels, dtype=np.int64)

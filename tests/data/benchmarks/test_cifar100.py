"""Reading CIFAR-100 through TFDS (`tfds:cifar100`), with `tfds.load` replaced by a tiny in-memory copy."""

import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from kerasrwm.data.benchmarks import prepare_dataset
from kerasrwm.data.benchmarks.cifar100 import read_cifar100
from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes
from tests.data.benchmarks import fake_sources


def fake_tfds_load(parts, label_names=None):
    """A stand-in for `tfds.load(name, split=["train", "test"], ...)` serving the fake CIFAR-100 `parts`."""
    table = read_cifar100_classes()
    fine_names = label_names or [fine for fine, _ in table]
    features = {
        "image": None,
        "label": types.SimpleNamespace(names=fine_names),
        "coarse_label": types.SimpleNamespace(names=sorted({coarse for _, coarse in table})),
    }

    def load(name, split, data_dir=None, download=True, with_info=False):
        assert name == "cifar100" and split == ["train", "test"] and download is False
        datasets = []
        for part in (parts["train"], parts["test"]):
            images = part[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            datasets.append(
                tf.data.Dataset.from_tensor_slices(
                    {"image": images, "label": part[b"fine_labels"], "coarse_label": part[b"coarse_labels"]}
                )
            )
        return datasets, types.SimpleNamespace(features=features)

    return load


def test_tfds_cifar100_reads_the_same_images_as_the_python_version(tmp_path, monkeypatch):
    parts = fake_sources.fake_cifar100()
    monkeypatch.setattr(tfds, "load", fake_tfds_load(parts))
    from_tfds = read_cifar100("tfds:cifar100")
    from_folder = read_cifar100(fake_sources.write_cifar_folder(str(tmp_path), parts))
    np.testing.assert_array_equal(from_tfds.images, from_folder.images)
    np.testing.assert_array_equal(from_tfds.fine_labels, from_folder.fine_labels)
    manifest = prepare_dataset("cifar-fs", "tfds:cifar100", str(tmp_path / "cifar_fs"), verbose=0)
    assert manifest["source"] == "tfds:cifar100" and manifest["splits"]["test"] == {"classes": 20, "images": 80}


def test_a_tfds_dataset_with_other_classes_is_refused(monkeypatch):
    monkeypatch.setattr(tfds, "load", fake_tfds_load(fake_sources.fake_cifar100(), [str(i) for i in range(100)]))
    with pytest.raises(ValueError, match="`source`='tfds:cifar100' must be CIFAR-100"):
        read_cifar100("tfds:cifar100")

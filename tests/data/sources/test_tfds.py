"""The TFDS source through the real `tfds.load`, on a tiny dataset prepared in a temporary folder (no download)."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from kerasrwm.data import load_source


class TinyFewShot(tfds.core.GeneratorBasedBuilder):
    """8 classes x 4 images of 6x6x3; classes 0-5 in 'train', 6-7 in 'test'; pixel [0, 0, 0] holds the class."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"image": tfds.features.Image(shape=(6, 6, 3)), "label": tfds.features.ClassLabel(num_classes=8)}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(range(6)), "test": self._generate_examples(range(6, 8))}

    def _generate_examples(self, classes):
        for c in classes:
            for i in range(4):
                image = np.full((6, 6, 3), 20 * i, np.uint8)
                image[0, 0, 0] = c
                yield f"{c}_{i}", {"image": image, "label": c}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    TinyFewShot(data_dir=str(data_dir)).download_and_prepare()
    return str(data_dir)


def test_tfds_splits_map_to_class_disjoint_stores(data_dir):
    source = load_source("tfds:tiny_few_shot", data_dir=data_dir, download=False, verbose=False)
    assert source.split_names == ("train", "test")
    train, test = source.split("train"), source.split("test")
    assert (train.num_classes, test.num_classes, train.image_shape) == (6, 2, (6, 6, 3))
    for store in (train, test):
        for name, indices in zip(store.class_names, store.class_image_indices):
            assert len(indices) == 4
            assert np.all(store.images[indices, 0, 0, 0] == int(name))


def test_one_tfds_split_string_is_cut_by_fractions_with_resize(data_dir):
    source = load_source(
        "tfds:tiny_few_shot",
        data_dir=data_dir,
        download=False,
        splits="train+test",
        split_fractions=(0.5, 0.25, 0.25),
        image_size=3,
        verbose=False,
    )
    assert [source.split(s).num_classes for s in ("train", "validation", "test")] == [4, 2, 2]
    assert source.split("train").image_shape == (3, 3, 3)


def test_tfds_errors(data_dir):
    with pytest.raises(ValueError, match="share class"):
        load_source(
            "tfds:tiny_few_shot",
            data_dir=data_dir,
            download=False,
            splits={"train": "train", "test": "train[:50%]"},
            verbose=False,
        )
    with pytest.raises(ValueError, match="`splits` keys"):
        load_source("tfds:tiny_few_shot", data_dir=data_dir, download=False, splits={"holdout": "test"}, verbose=False)
    with pytest.raises(ValueError, match="no feature 'picture'"):
        load_source("tfds:tiny_few_shot", data_dir=data_dir, download=False, image_key="picture", verbose=False)


def test_unknown_dataset_is_one_line():
    with pytest.raises(ValueError, match=r"^`name` 'no_such_dataset_xyz' is not a TFDS dataset; [^\n]*$"):
        load_source("tfds:no_such_dataset_xyz")


def test_unprepared_dataset_without_download(tmp_path):
    with pytest.raises(ValueError, match="is not prepared in `data_dir`=.*and `download` is false"):
        load_source("tfds:omniglot", data_dir=str(tmp_path), download=False)


def test_an_unprepared_dataset_without_network_fails_fast_saying_how_to_prepare_it(tmp_path, monkeypatch):
    attempts = []

    def unreachable(address, *args, **kwargs):
        attempts.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: unreachable(address))
    started = time.monotonic()
    with pytest.raises(ValueError) as refused:
        load_source("tfds:omniglot", data_dir=str(tmp_path), verbose=False)
    assert time.monotonic() - started < 30
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        f"The TFDS dataset 'omniglot' is not prepared in `data_dir`={str(tmp_path)!r} and the network is unreachable"
    )
    assert f"`tfds build omniglot --data_dir {tmp_path}`" in message
    assert message.endswith(f"pass data_dir={str(tmp_path)!r}, download=false.")
    assert attempts == [("storage.googleapis.com", 443)]


def test_a_prepared_dataset_needs_no_network(data_dir, monkeypatch):
    def unreachable(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    source = load_source("tfds:tiny_few_shot", data_dir=data_dir, verbose=False)
    assert source.split("train").num_classes == 6


def test_download_must_be_a_boolean(data_dir):
    with pytest.raises(ValueError, match="`download` must be true or false; received download='no'"):
        load_source("tfds:tiny_few_shot", data_dir=data_dir, download="no", verbose=False)

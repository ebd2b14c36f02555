"""Small stores shared by the data tests."""

import numpy as np
import pytest

from kerasrwm.data import from_arrays


def labelled_arrays(num_classes=12, images_per_class=10, image_size=6):
    """uint8 images whose pixel [0, 0] is the class id and pixel [0, 1] the image's index in its class."""
    labels = np.repeat(np.arange(num_classes), images_per_class)
    images = np.zeros((len(labels), image_size, image_size, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = labels
    images[:, 0, 1, 0] = np.tile(np.arange(images_per_class), num_classes)
    return images, labels


@pytest.fixture(scope="session")
def tagged_store():
    """A train store of 12 classes x 10 images; each image's class and identity can be read back from it."""
    images, labels = labelled_arrays()
    return from_arrays(images, labels, class_split=["train"] * 12).split("train")


def decode(images):
    """(class id, image index in class) of float images `[..., h, w, 1]` from `labelled_arrays`."""
    pixels = np.round(np.asarray(images)[..., 0, :2, 0] * 255).astype(int)
    return pixels[..., 0], pixels[..., 1]

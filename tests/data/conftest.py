"""Fixtures shared by the data tests."""

import pytest

from kerasrwm.data import from_arrays
from tests.data.tagged_images import labelled_arrays


@pytest.fixture(scope="session")
def tagged_store():
    """A train store of 12 classes x 10 images; each image's class and identity can be read back from it."""
    images, labels = labelled_arrays()
    return from_arrays(images, labels, class_split=["train"] * 12).split("train")

import numpy as np
import pytest

from kerasrwm.data import load_source


def test_schemes_dispatch(tmp_path):
    path = tmp_path / "tiny.npz"
    labels = np.repeat(np.arange(4), 3)
    np.savez(path, images=np.zeros((12, 5, 5), np.uint8), labels=labels, class_split=np.array(["train"] * 3 + ["test"]))
    source = load_source(f"npz:{path}")
    assert (source.split("train").num_classes, source.split("test").num_classes) == (3, 1)
    assert load_source("synthetic", num_classes=5, images_per_class=2).images.shape == (10, 28, 28, 1)


@pytest.mark.parametrize("spec_string", ["imagenet", "npz:", "s3:bucket", ""])
def test_unknown_spec_strings(spec_string):
    with pytest.raises(ValueError, match=f"`spec_string`.*received spec_string='{spec_string}'"):
        load_source(spec_string)


def test_npz_without_images(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, labels=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="must hold `images`"):
        load_source(f"npz:{path}")

import numpy as np
import pytest

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
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


def test_drop_small_classes_option_reaches_the_stores(tmp_path):
    path = tmp_path / "uneven.npz"
    labels = np.concatenate([np.repeat(np.arange(3), 4), [3]])  # class 3 has one image
    np.savez(path, images=np.zeros((13, 5, 5), np.uint8), labels=labels, class_split=np.array(["train"] * 4))
    spec = EpisodeSpec(n_way=3, k_shot=2)
    with pytest.raises(ValueError, match=r"'3' \(1 images\)"):
        episode_dataset(load_source(f"npz:{path}").split("train"), spec, 2, seed=0)
    store = load_source(f"npz:{path}", drop_small_classes=True).split("train")
    batch = next(iter(episode_dataset(store, spec, 2, seed=0)))
    assert tuple(batch["support_images"].shape) == (2, 6, 5, 5, 1)


@pytest.mark.parametrize("rotations", [False, True])
def test_too_few_classes_names_the_split(tmp_path, rotations):
    path = tmp_path / "small_validation.npz"
    labels = np.repeat(np.arange(6), 3)
    splits = np.array(["train"] * 5 + ["validation"])
    np.savez(path, images=np.zeros((18, 4, 4), np.uint8), labels=labels, class_split=splits)
    store = load_source(f"npz:{path}", rotations=rotations).split("validation")
    with pytest.raises(ValueError, match=r"usable classes in the 'validation' split \((1|4)\); received n_way=5"):
        store.for_spec(EpisodeSpec(n_way=5, k_shot=1))

import numpy as np
import pytest
from PIL import Image

from kerasrwm.data import load_image_folder


def write_image(path, value, size=(8, 6), mode="L", fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8)).convert(mode).save(path, fmt)


def test_split_subfolders_are_the_splits(tmp_path):
    for split, classes in {"train": ["a", "b"], "val": ["c"], "test": ["d"]}.items():
        for value, name in enumerate(classes):
            for i in range(3):
                write_image(tmp_path / split / name / f"{i}.png", 10 * value + i)
    source = load_image_folder(tmp_path, color_mode="grayscale", verbose=False)
    assert source.split_names == ("train", "validation", "test")
    train = source.split("train")
    assert train.class_names == ("train/a", "train/b") and train.image_shape == (6, 8, 1)
    np.testing.assert_array_equal(train.images[train.class_image_indices[1], 0, 0, 0], [10, 11, 12])
    assert source.split("validation").class_names == ("val/c",)


def test_flat_class_folders_with_jpg_rgb_and_resize(tmp_path):
    for c in range(5):
        for i in range(2):
            size = (8, 6) if i == 0 else (12, 9)  # mixed sizes, resized below
            write_image(tmp_path / f"class{c}" / f"{i}.jpg", 200, size=size, mode="RGB", fmt="JPEG")
    source = load_image_folder(tmp_path, image_size=(4, 5), split_fractions=(0.6, 0.2, 0.2), verbose=False)
    train = source.split("train")
    assert train.class_names == ("class0", "class1", "class2")
    assert train.images.shape == (6, 4, 5, 3)
    assert np.all(np.abs(train.images.astype(int) - 200) <= 3)


def test_mixed_sizes_without_resize_name_the_file(tmp_path):
    write_image(tmp_path / "a" / "0.png", 1, size=(8, 6))
    write_image(tmp_path / "a" / "1.png", 1, size=(7, 6))
    with pytest.raises(ValueError, match=r"1\.png.*7x6.*image_size"):
        load_image_folder(tmp_path, verbose=False)


def test_unreadable_image_names_the_file(tmp_path):
    write_image(tmp_path / "a" / "0.png", 1)
    (tmp_path / "a" / "1.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"Cannot read.*1\.png"):
        load_image_folder(tmp_path, verbose=False)


def test_empty_folders_raise(tmp_path):
    with pytest.raises(ValueError, match="`path`.*holds none"):
        load_image_folder(tmp_path, verbose=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match="class folder.*'.*a'.*holds none"):
        load_image_folder(tmp_path, verbose=False)
    with pytest.raises(ValueError, match="`path` must be a folder"):
        load_image_folder(tmp_path / "missing", verbose=False)
    with pytest.raises(ValueError, match="`color_mode`"):
        load_image_folder(tmp_path, color_mode="cmyk", verbose=False)

from pathlib import Path

import numpy as np
import pytest

from kerasrwm.data import from_arrays
from kerasrwm.data import load_npz
from tests.data.tagged_images import labelled_arrays

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"  # beside the repository
OMNIGLOT_28 = str(SHARED_DATA / "omniglot_28.npz")
OMNIGLOT_105 = str(SHARED_DATA / "omniglot_105_packed.npz")
needs_omniglot = pytest.mark.skipif(
    not all(Path(p).exists() for p in (OMNIGLOT_28, OMNIGLOT_105)), reason=f"no Omniglot files in {SHARED_DATA}"
)


def test_class_split_aliases_give_disjoint_splits_with_their_images():
    images, labels = labelled_arrays(num_classes=6, images_per_class=3)
    source = from_arrays(images, labels, class_split=["train", "background", "val", "test", "evaluation", ""])
    assert {name: list(ids) for name, ids in source.class_splits.items()} == {
        "train": [0, 1],
        "validation": [2],
        "test": [3, 4],
    }
    test = source.split("test")
    assert test.class_names == ("3", "4")
    for indices, class_id in zip(test.class_image_indices, (3, 4)):
        assert np.all(test.images[indices, 0, 0, 0] == class_id)
    with pytest.raises(ValueError, match="`name`.*'validation'"):
        from_arrays(images, labels, class_split=["train"] * 6).split("validation")


def test_without_split_classes_are_cut_by_fractions():
    images, labels = labelled_arrays(num_classes=10, images_per_class=2)
    source = from_arrays(images, labels, split_fractions=(0.6, 0.2, 0.2))
    assert [list(source.class_splits[s]) for s in ("train", "validation", "test")] == [
        [0, 1, 2, 3, 4, 5],
        [6, 7],
        [8, 9],
    ]


def test_float_images_are_scaled_and_rotations_add_rotated_classes():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(4, 5, 5)).astype(np.float32)
    source = from_arrays(images, [0, 0, 1, 1], class_split=["train", "train"], rotations=True)
    store = source.split("train")
    assert store.class_names == ("0", "0/rot90", "0/rot180", "0/rot270", "1", "1/rot90", "1/rot180", "1/rot270")
    expected = np.round(images * 255).astype(np.uint8)
    for quarter_turns in range(4):
        rotated = store.images[store.class_image_indices[quarter_turns], ..., 0]
        np.testing.assert_array_equal(rotated, np.rot90(expected[:2], quarter_turns, axes=(1, 2)))


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.full((2, 4, 4), np.nan, np.float32), [0, 1], "NaN"),
        (np.full((2, 4, 4), 2.0), [0, 1], r"\[0, 1\].*2.0"),
        (np.zeros((2, 4), np.uint8), [0, 1], r"`images`.*shape \(2, 4\)"),
        (np.zeros((2, 4, 4, 2), np.uint8), [0, 1], "1 or 3 channels"),
        (np.zeros((2, 4, 4), np.int64), [0, 1], "dtype int64"),
        (np.zeros((2, 4, 4), np.uint8), [0.0, 1.0], "`labels`.*integer"),
        (np.zeros((2, 4, 4), np.uint8), [0, 1, 1], r"`labels`.*\(2\); received 3"),
        (np.zeros((2, 4, 4), np.uint8), [0, -1], "non-negative"),
    ],
)
def test_bad_arrays_raise_value_errors_naming_them(images, labels, message):
    with pytest.raises(ValueError, match=message):
        from_arrays(images, np.asarray(labels))


def test_bad_class_split_values_and_non_square_rotations():
    images, labels = labelled_arrays(num_classes=2, images_per_class=2)
    with pytest.raises(ValueError, match=r"`class_split` values.*\['holdout'\]"):
        from_arrays(images, labels, class_split=["train", "holdout"])
    with pytest.raises(ValueError, match="square"):
        from_arrays(np.zeros((2, 4, 6), np.uint8), [0, 1], rotations=True)


@needs_omniglot
def test_omniglot_28_vinyals_split_with_rotations():
    source = load_npz(OMNIGLOT_28, split_scheme="vinyals", rotations=True)
    train = source.split("train")
    assert (train.num_classes, source.split("validation").num_classes, source.split("test").num_classes) == (
        4112,
        688,
        1692,
    )
    assert train.image_shape == (28, 28, 1) and len(train.images) == 4112 * 20
    assert np.all(train.class_counts == 20)
    names = [set(source.split(s).class_names) for s in source.split_names]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])


@pytest.mark.slow
@needs_omniglot
def test_omniglot_105_background_split_matches_the_28_file():
    source = load_npz(OMNIGLOT_105, split_scheme="background", image_size=28)
    assert source.split_names == ("train", "test")
    assert (source.split("train").num_classes, source.split("test").num_classes) == (964, 659)
    small = load_npz(OMNIGLOT_28, split_scheme="background").split("test")
    resized = source.split("test")
    assert resized.class_names == small.class_names
    # The 28x28 file is the box-filtered (exact area average) 0/255 ink masks: the same resize.
    np.testing.assert_array_equal(resized.images, small.images)
    with pytest.raises(ValueError, match=r"`split_scheme`.*\['background', 'vinyals'\].*'lake'"):
        load_npz(OMNIGLOT_28, split_scheme="lake")


def test_sparse_label_values_are_numbered_in_order_without_arrays_of_their_size(tmp_path):
    images, labels = labelled_arrays(num_classes=5, images_per_class=3)
    values = (labels.astype(np.int64) + 1) * 10**12  # 1e12 .. 5e12: an array of that size would not fit in memory
    np.savez(tmp_path / "sparse.npz", images=images, labels=values)
    source = load_npz(str(tmp_path / "sparse.npz"), split_fractions=(0.6, 0.2, 0.2))
    assert source.class_names == tuple(str(value * 10**12) for value in range(1, 6))
    assert [list(source.class_splits[s]) for s in ("train", "validation", "test")] == [[0, 1, 2], [3], [4]]
    train = source.split("train")
    for indices, class_id in zip(train.class_image_indices, (0, 1, 2)):
        assert np.all(train.images[indices, 0, 0, 0] == class_id)  # each image keeps its class


def test_labels_with_gaps_give_no_empty_classes():
    images, labels = labelled_arrays(num_classes=4, images_per_class=2)
    source = from_arrays(images, labels * 3, split_fractions=(0.5, 0.25, 0.25))
    assert source.class_names == ("0", "3", "6", "9")
    assert [list(source.class_splits[s]) for s in ("train", "validation", "test")] == [[0, 1], [2], [3]]


@pytest.mark.parametrize("key", ["rotations", "drop_small_classes"])
@pytest.mark.parametrize("value", ["no", "false", 1, None])
def test_boolean_options_refuse_anything_but_a_bool_by_name(key, value):
    images, labels = labelled_arrays(num_classes=4, images_per_class=2)
    with pytest.raises(ValueError, match=f"`{key}` must be true or false; received {key}={value!r}"):
        from_arrays(images, labels, **{key: value})


def test_split_fractions_as_a_string_is_refused_by_name():
    images, labels = labelled_arrays(num_classes=4, images_per_class=2)
    with pytest.raises(ValueError, match=r"`split_fractions` must be three .*received split_fractions='0.6,0.2,0.2'"):
        from_arrays(images, labels, split_fractions="0.6,0.2,0.2")

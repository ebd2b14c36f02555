"""The shipped split lists hold the published counts, and their splits are disjoint."""

import itertools
import os

import pytest

from kerasrwm.data.benchmarks.cifar_benchmarks import fc100_classes
from kerasrwm.data.benchmarks.split_lists import SHIPPED_DIRECTORY
from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes
from kerasrwm.data.benchmarks.split_lists import read_mini_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import read_name_lists
from kerasrwm.data.benchmarks.split_lists import read_tiered_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import split_list_directory


def assert_disjoint(groups):
    for (first, a), (second, b) in itertools.combinations(groups.items(), 2):
        assert not set(a) & set(b), f"{first} and {second} share {sorted(set(a) & set(b))[:3]}"


def test_mini_imagenet_is_64_16_20_classes_of_600_distinct_images():
    lists = read_mini_imagenet_lists(os.path.join(SHIPPED_DIRECTORY, "mini_imagenet"))
    assert {split: len(classes) for split, classes in lists.items()} == {"train": 64, "val": 16, "test": 20}
    for classes in lists.values():
        for numbers in classes.values():
            assert len(numbers) == 600 and len(set(numbers)) == 600
            assert 1 <= min(numbers) and max(numbers) <= 1300  # the largest ILSVRC-2012 class holds 1300
    assert_disjoint(lists)


def test_tiered_imagenet_is_351_97_160_classes_in_20_6_8_disjoint_categories():
    lists = read_tiered_imagenet_lists(os.path.join(SHIPPED_DIRECTORY, "tiered_imagenet"))
    assert {split: len(classes) for split, classes in lists.items()} == {"train": 351, "val": 97, "test": 160}
    categories = {split: set(classes.values()) for split, classes in lists.items()}
    assert {split: len(c) for split, c in categories.items()} == {"train": 20, "val": 6, "test": 8}
    assert_disjoint(lists)
    assert_disjoint(categories)


def test_cifar100_table_has_100_classes_in_20_superclasses_of_5():
    table = read_cifar100_classes()
    fine = [name for name, _ in table]
    assert len(set(fine)) == 100 and fine == sorted(fine)  # CIFAR-100's fine labels are alphabetical
    superclasses = [coarse for _, coarse in table]
    assert len(set(superclasses)) == 20
    assert all(superclasses.count(coarse) == 5 for coarse in superclasses)


def test_cifar_fs_is_64_16_20_of_the_100_cifar_classes():
    lists = read_name_lists(os.path.join(SHIPPED_DIRECTORY, "cifar_fs"))
    assert {split: len(names) for split, names in lists.items()} == {"train": 64, "val": 16, "test": 20}
    assert_disjoint(lists)
    assert set().union(*lists.values()) == {fine for fine, _ in read_cifar100_classes()}


def test_fc100_is_12_4_4_superclasses_and_60_20_20_classes():
    folder = os.path.join(SHIPPED_DIRECTORY, "fc100")
    superclasses = read_name_lists(folder)
    assert {split: len(names) for split, names in superclasses.items()} == {"train": 12, "val": 4, "test": 4}
    assert_disjoint(superclasses)
    assert set().union(*superclasses.values()) == {coarse for _, coarse in read_cifar100_classes()}
    classes = fc100_classes(folder)
    assert {split: len(names) for split, names in classes.items()} == {"train": 60, "val": 20, "test": 20}
    assert_disjoint(classes)
    superclass_of = dict(read_cifar100_classes())
    for split, names in classes.items():
        assert {superclass_of[name] for name in names} == set(superclasses[split])


def test_a_list_folder_that_is_not_there_or_lacks_a_split_is_named(tmp_path):
    with pytest.raises(ValueError, match="`split_lists` must be a folder"):
        split_list_directory("mini_imagenet", tmp_path / "absent")
    (tmp_path / "train.txt").write_text("apple\n")
    with pytest.raises(ValueError, match=r"lack val\.txt"):
        read_name_lists(str(tmp_path))


def test_a_mini_imagenet_row_of_another_layout_is_refused(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv").write_text("filename,label\nn01532829_5.JPEG,n01532829\n")
    with pytest.raises(ValueError, match="names 'n01532829_5.JPEG' for class 'n01532829'"):
        read_mini_imagenet_lists(str(tmp_path))

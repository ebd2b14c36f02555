"""`prepare_dataset` end to end on tiny fake copies of ImageNet and CIFAR-100 in their real layouts."""

import hashlib
import json
import os

import numpy as np
import pytest

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from kerasrwm.data import load_source
from kerasrwm.data.benchmarks import imagenet_benchmarks
from kerasrwm.data.benchmarks import prepare_dataset
from kerasrwm.data.benchmarks.resize import resize_image
from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes
from tests.data.benchmarks import fake_sources

POSITIONS = (1, 3, 4, 6)  # images of each class the reduced mini-ImageNet lists name (numeric order, from 1)


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """A fake ILSVRC-2012 training folder holding the mini- and tiered-ImageNet classes of the reduced lists."""
    root = tmp_path_factory.mktemp("imagenet")
    mini = fake_sources.real_synsets("mini_imagenet")
    tiered = fake_sources.real_synsets("tiered_imagenet")
    synsets = sorted({s for lists in (mini, tiered) for classes in lists.values() for s in classes})
    fake_sources.write_fake_imagenet(str(root / "train"), synsets)
    fake_sources.write_mini_imagenet_lists(str(root / "mini_lists"), mini, POSITIONS)
    fake_sources.write_tiered_imagenet_lists(str(root / "tiered_lists"), tiered)
    return {"root": root, "train": str(root / "train"), "mini": mini, "tiered": tiered}


@pytest.fixture(scope="module")
def mini_output(imagenet, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("prepared") / "mini")
    manifest = prepare_dataset("mini-imagenet", imagenet["train"], output, imagenet["root"] / "mini_lists", verbose=0)
    return output, manifest


def folder_files(output):
    """`{relative path: bytes}` of every file under `output` (hidden ones included, the manifest left out)."""
    files = {}
    for folder, _, names in os.walk(output):
        for name in names:
            path = os.path.join(folder, name)
            if name != "manifest.json":
                with open(path, "rb") as file:
                    files[os.path.relpath(path, output)] = file.read()
    return files


def test_mini_imagenet_holds_the_listed_images_in_numeric_file_order_resized_by_area(imagenet, mini_output):
    output, manifest = mini_output
    assert manifest["splits"] == {
        "train": {"classes": 3, "images": 12},
        "val": {"classes": 2, "images": 8},
        "test": {"classes": 2, "images": 8},
    }
    assert manifest["image_size"] == [84, 84, 3] and manifest["load_source"] == f"folder:{output}"
    assert manifest["matches_published"] is False  # 28 images, not 38,400 / 9,600 / 12,000
    numbers = sorted(fake_sources.FILE_NUMBERS)
    for split, classes in imagenet["mini"].items():
        for synset in classes:
            folder = os.path.join(output, split, synset)
            assert sorted(n for n in os.listdir(folder) if n.endswith(".png")) == [
                f"{synset}{p:08d}.png" for p in POSITIONS
            ]
            for position in POSITIONS:
                source = fake_sources.decode(
                    os.path.join(imagenet["train"], synset, f"{synset}_{numbers[position - 1]}.JPEG")
                )
                written = fake_sources.decode(os.path.join(folder, f"{synset}{position:08d}.png"))
                np.testing.assert_array_equal(written, resize_image(source, (84, 84), "area"))
    with open(os.path.join(output, "manifest.json")) as file:
        assert json.load(file) == manifest
    assert "Ravi & Larochelle" in manifest["citation"]


def test_mini_imagenet_loads_and_gives_episodes(mini_output):
    output, manifest = mini_output
    source = load_source(manifest["load_source"])
    train = source.split("train")
    assert (train.num_classes, source.split("validation").num_classes, source.split("test").num_classes) == (3, 2, 2)
    assert train.image_shape == (84, 84, 3)
    batch = next(iter(episode_dataset(train, EpisodeSpec(n_way=3, k_shot=2, k_extra=1), batch_size=2, seed=0)))
    assert batch["support_images"].shape == (2, 6, 84, 84, 3)


@pytest.mark.parametrize("layout", ["class tars", "tar of class tars"])
def test_the_tar_layouts_give_the_same_files_as_the_folder(imagenet, mini_output, layout, tmp_path):
    if layout == "class tars":
        source = str(tmp_path / "train_tars")
        fake_sources.write_class_tars(imagenet["train"], source)
    else:
        source = str(tmp_path / "ILSVRC2012_img_train.tar")
        fake_sources.write_tar_of_class_tars(imagenet["train"], source, str(tmp_path / "work"))
    output = str(tmp_path / "mini")
    prepare_dataset("mini-imagenet", source, output, imagenet["root"] / "mini_lists", verbose=0)
    assert folder_files(output) == folder_files(mini_output[0])


def test_an_interrupted_prepare_continues_without_rewriting_what_it_wrote(imagenet, mini_output, tmp_path, monkeypatch):
    output = str(tmp_path / "mini")
    writes = []
    original = imagenet_benchmarks.write_png

    def write_then_stop(path, image):
        if len(writes) == 10:
            raise KeyboardInterrupt
        writes.append(path)
        original(path, image)

    monkeypatch.setattr(imagenet_benchmarks, "write_png", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("mini-imagenet", imagenet["train"], output, imagenet["root"] / "mini_lists", verbose=0)
    assert not os.path.exists(os.path.join(output, "manifest.json"))
    first_run = list(writes)
    writes.clear()
    monkeypatch.setattr(
        imagenet_benchmarks, "write_png", lambda path, image: (writes.append(path), original(path, image))
    )
    prepare_dataset("mini-imagenet", imagenet["train"], output, imagenet["root"] / "mini_lists", verbose=0)
    assert len(first_run) == 10 and len(writes) == 28 - 10 and not set(first_run) & set(writes)
    assert folder_files(output) == folder_files(mini_output[0])
    writes.clear()
    again = prepare_dataset("mini-imagenet", imagenet["train"], output, imagenet["root"] / "mini_lists", verbose=0)
    assert writes == [] and again["splits"] == mini_output[1]["splits"]


def test_tiered_imagenet_holds_every_image_of_its_classes_resized_bicubically(imagenet, tmp_path):
    output = str(tmp_path / "tiered")
    manifest = prepare_dataset(
        "tiered-imagenet", imagenet["train"], output, imagenet["root"] / "tiered_lists", verbose=0
    )
    per_class = len(fake_sources.FILE_NUMBERS)
    for split, classes in imagenet["tiered"].items():
        assert manifest["splits"][split]["classes"] == len(classes)
        assert manifest["splits"][split]["images"] == len(classes) * per_class
    assert manifest["splits"]["train"]["categories"] == 1  # the first three train classes share a category
    synset = imagenet["tiered"]["test"][0]
    name = f"{synset}_{fake_sources.FILE_NUMBERS[0]}"
    source = fake_sources.decode(os.path.join(imagenet["train"], synset, name + ".JPEG"))
    written = fake_sources.decode(os.path.join(output, "test", synset, name + ".png"))
    np.testing.assert_array_equal(written, resize_image(source, (84, 84), "cubic"))
    assert load_source(manifest["load_source"]).split("test").num_classes == 2


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    parts = fake_sources.fake_cifar100()
    archive = str(root / "cifar-100-python.tar.gz")
    fake_sources.write_cifar_archive(archive, parts)
    return {"parts": parts, "archive": archive, "folder": fake_sources.write_cifar_folder(str(root), parts)}


def test_cifar_fs_from_the_archive_holds_its_classes_with_train_and_test_images(cifar, tmp_path):
    output = str(tmp_path / "cifar_fs")
    manifest = prepare_dataset("cifar-fs", cifar["archive"], output, verbose=0)
    assert {split: counts["classes"] for split, counts in manifest["splits"].items()} == {
        "train": 64,
        "val": 16,
        "test": 20,
    }
    with open(cifar["archive"], "rb") as file:
        md5 = hashlib.md5(file.read()).hexdigest()
    assert manifest["source_checksums"]["cifar-100-python.tar.gz"]["md5"] == md5
    assert manifest["source_checksums"]["cifar-100-python.tar.gz"]["published_md5"] is False
    with np.load(os.path.join(output, "cifar_fs.npz")) as arrays:
        names = list(arrays["class_names"])
        assert names[0] == "dolphin" and arrays["class_split"][0] == "train"  # first class of the train list
        apple = names.index("apple")
        np.testing.assert_array_equal(
            arrays["images"][arrays["labels"] == apple], fake_sources.cifar_images(cifar["parts"], 0)
        )
    source = load_source(manifest["load_source"])
    assert source.split("validation").num_classes == 16 and source.split("test").image_shape == (32, 32, 3)


def test_fc100_from_the_folder_holds_the_classes_of_its_superclasses(cifar, tmp_path):
    manifest = prepare_dataset("fc100", cifar["folder"], str(tmp_path / "fc100"), verbose=0)
    assert {split: counts["classes"] for split, counts in manifest["splits"].items()} == {
        "train": 60,
        "val": 20,
        "test": 20,
    }
    superclass = dict(read_cifar100_classes())
    source = load_source(manifest["load_source"])
    test_superclasses = {superclass[source.class_names[c]] for c in source.class_splits["test"]}
    assert test_superclasses == {"aquatic_mammals", "insects", "medium_mammals", "people"}
    assert set(manifest["source_checksums"]) == {"train", "test", "meta"}


def test_a_missing_class_folder_is_named_with_how_many_are_missing(imagenet, tmp_path):
    partial = tmp_path / "train"
    wanted = {s for classes in imagenet["mini"].values() for s in classes}
    missing = sorted(wanted)[:2]
    fake_sources.write_fake_imagenet(str(partial), sorted(wanted - set(missing)))
    message = f"lacks 2 of the 7 mini-imagenet class folders: {missing[0]}, {missing[1]}\\.$"
    with pytest.raises(ValueError, match=message):
        prepare_dataset(
            "mini-imagenet", str(partial), str(tmp_path / "out"), imagenet["root"] / "mini_lists", verbose=0
        )


def test_a_class_with_fewer_images_than_the_list_names_is_refused(imagenet, tmp_path):
    lists = tmp_path / "lists"
    fake_sources.write_mini_imagenet_lists(str(lists), imagenet["mini"], positions=(1, 7))
    with pytest.raises(ValueError, match=r"holds 6 training images but the mini-imagenet list names image 7"):
        prepare_dataset("mini-imagenet", imagenet["train"], str(tmp_path / "out"), lists, verbose=0)


def test_a_cifar_class_with_too_few_images_is_refused(tmp_path):
    parts = fake_sources.fake_cifar100()
    keep = np.array(parts["test"][b"fine_labels"]) != 5
    parts["test"] = {
        key: (np.asarray(value)[keep] if key != b"filenames" else value) for key, value in parts["test"].items()
    }
    folder = fake_sources.write_cifar_folder(str(tmp_path), parts)
    with pytest.raises(
        ValueError, match="CIFAR-100 class 'bed' holds 3 images .* the others 4; the copy is incomplete"
    ):
        prepare_dataset("cifar-fs", folder, str(tmp_path / "out"), verbose=0)


def test_archives_of_other_datasets_are_named(cifar, imagenet, tmp_path):
    cifar10 = str(tmp_path / "cifar-10-python.tar.gz")
    fake_sources.write_cifar_archive(cifar10, {"data_batch_1": {}, "batches.meta": {}}, "cifar-10-batches-py")
    with pytest.raises(ValueError, match="is a CIFAR-10 copy"):
        prepare_dataset("fc100", cifar10, str(tmp_path / "a"), verbose=0)
    with pytest.raises(ValueError, match="it holds CIFAR data, not ImageNet"):
        prepare_dataset("mini-imagenet", cifar["archive"], str(tmp_path / "b"), verbose=0)
    with pytest.raises(ValueError, match="is ImageNet synsets, not CIFAR-100"):
        prepare_dataset("cifar-fs", imagenet["train"], str(tmp_path / "c"), verbose=0)
    validation = tmp_path / "val"
    validation.mkdir()
    (validation / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    with pytest.raises(ValueError, match="validation or test images, not the training set"):
        prepare_dataset("tiered-imagenet", str(validation), str(tmp_path / "d"), verbose=0)
    notes = tmp_path / "notes.txt"
    notes.write_text("not an archive")
    with pytest.raises(ValueError, match="is not a tar archive; give cifar-100-python.tar.gz or its folder"):
        prepare_dataset("fc100", str(notes), str(tmp_path / "e"), verbose=0)
    with pytest.raises(ValueError, match="is neither a folder nor a tar archive"):
        prepare_dataset("mini-imagenet", str(notes), str(tmp_path / "e"), verbose=0)
    assert not any(os.path.exists(tmp_path / name) for name in "abcde")  # refused before the output was claimed


def test_an_output_holding_another_dataset_or_other_files_is_refused(cifar, imagenet, tmp_path):
    output = str(tmp_path / "out")
    prepare_dataset("fc100", cifar["archive"], output, verbose=0)
    with pytest.raises(ValueError, match="already holds the dataset 'fc100', not 'cifar-fs'"):
        prepare_dataset("cifar-fs", cifar["archive"], output, verbose=0)
    with pytest.raises(ValueError, match=r"holds 'fc100' prepared with other \['split_lists_sha256'\]"):
        lists = tmp_path / "lists"
        lists.mkdir()
        for split, superclass in (("train", "fish"), ("val", "trees"), ("test", "people")):
            (lists / f"{split}.txt").write_text(superclass + "\n")
        prepare_dataset("fc100", cifar["archive"], output, lists, verbose=0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty and was not written by `kerasrwm prepare`"):
        prepare_dataset("fc100", cifar["archive"], str(foreign), verbose=0)


def test_the_disk_use_is_printed_before_starting(cifar, tmp_path, capsys):
    prepare_dataset("fc100", cifar["archive"], str(tmp_path / "fc100"), verbose=2)
    lines = capsys.readouterr().out.splitlines()
    first_line = lines[0]
    assert "Note: 240 / 80 / 80 images per split, not the published 12 / 4 / 4 superclasses" in lines[-2]
    assert first_line.startswith("Preparing fc100 in ") and "60,000 32x32 images" in first_line
    assert "about 184 MB on disk" in first_line  # 60,000 x 32 x 32 x 3 bytes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "images"), [("cifar-fs", (38_400, 9_600, 12_000)), ("fc100", (36_000, 12_000, 12_000))]
)
def test_a_full_size_cifar100_gives_the_published_image_counts(dataset, images, tmp_path):
    folder = fake_sources.write_cifar_folder(str(tmp_path), fake_sources.fake_cifar100(500, 100))
    manifest = prepare_dataset(dataset, folder, str(tmp_path / dataset), verbose=0)
    assert tuple(manifest["splits"][split]["images"] for split in ("train", "val", "test")) == images
    assert manifest["matches_published"] is True

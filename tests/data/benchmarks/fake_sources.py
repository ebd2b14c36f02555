"""Tiny fake ImageNet and CIFAR-100 copies in their real layouts, with real class ids, and reduced split lists."""

import io
import os
import pickle
import tarfile

import numpy as np
from PIL import Image

from kerasrwm.data.benchmarks.split_lists import SHIPPED_DIRECTORY
from kerasrwm.data.benchmarks.split_lists import read_cifar100_classes
from kerasrwm.data.benchmarks.split_lists import read_mini_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import read_tiered_imagenet_lists

# File numbers of each fake class: numeric order 3, 7, 12, 45, 100, 1000 is not the name order.
FILE_NUMBERS = (1000, 7, 45, 3, 100, 12)
CLASSES_PER_SPLIT = {"train": 3, "val": 2, "test": 2}


def real_synsets(dataset):
    """`{split: [synset]}`: the first few real classes of each split of the shipped lists."""
    folder = os.path.join(SHIPPED_DIRECTORY, dataset)
    lists = read_mini_imagenet_lists(folder) if dataset == "mini_imagenet" else read_tiered_imagenet_lists(folder)
    return {split: list(classes)[: CLASSES_PER_SPLIT[split]] for split, classes in lists.items()}


def _jpeg(rng):
    height, width = rng.integers(40, 130, size=2)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_fake_imagenet(root, synsets, seed=0):
    """Writes `root/<synset>/<synset>_<number>.JPEG` for every synset; returns `{synset: [numbers sorted]}`."""
    rng = np.random.default_rng(seed)
    for synset in synsets:
        os.makedirs(os.path.join(root, synset))
        for number in FILE_NUMBERS:
            with open(os.path.join(root, synset, f"{synset}_{number}.JPEG"), "wb") as file:
                file.write(_jpeg(rng))
    return {synset: sorted(FILE_NUMBERS) for synset in synsets}


def decode(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def write_class_tars(root, folder):
    """Writes one `<synset>.tar` per class folder of `root` into `folder` (the unpacked ILSVRC-2012 tar)."""
    os.makedirs(folder, exist_ok=True)
    for synset in sorted(os.listdir(root)):
        with tarfile.open(os.path.join(folder, synset + ".tar"), "w") as archive:
            for name in sorted(os.listdir(os.path.join(root, synset))):
                archive.add(os.path.join(root, synset, name), arcname=name)


def write_tar_of_class_tars(root, path, work):
    """Writes `path` laid out as ILSVRC2012_img_train.tar: one `<synset>.tar` per class of `root`."""
    write_class_tars(root, work)
    with tarfile.open(path, "w") as archive:
        for name in sorted(os.listdir(work)):
            archive.add(os.path.join(work, name), arcname=name)


def write_mini_imagenet_lists(folder, synsets, positions=(1, 3, 4, 6)):
    """Reduced Ravi-Larochelle lists naming images `positions` (1-based, numeric order) of each class."""
    os.makedirs(folder)
    for split, classes in synsets.items():
        with open(os.path.join(folder, split + ".csv"), "w") as file:
            file.write("filename,label\n")
            for synset in classes:
                file.writelines(f"{synset}{p:08d}.jpg,{synset}\n" for p in positions)


def write_tiered_imagenet_lists(folder, synsets):
    """Reduced Ren et al. lists for `synsets`, with their real categories."""
    shipped = read_tiered_imagenet_lists(os.path.join(SHIPPED_DIRECTORY, "tiered_imagenet"))
    os.makedirs(folder)
    for split, classes in synsets.items():
        with open(os.path.join(folder, split + ".csv"), "w") as file:
            file.writelines(f"{synset},{shipped[split][synset]}\n" for synset in classes)


def fake_cifar100(train_per_class=3, test_per_class=1, seed=0):
    """`{"train"|"test": dict, "meta": dict}`: CIFAR-100's pickled dicts (bytes keys), tiny, real class table."""
    table = read_cifar100_classes()
    coarse_names = sorted({coarse for _, coarse in table})
    rng = np.random.default_rng(seed)
    parts = {}
    for name, per_class in (("train", train_per_class), ("test", test_per_class)):
        fine = rng.permutation(np.repeat(np.arange(100), per_class))
        parts[name] = {
            b"data": rng.integers(0, 256, size=(len(fine), 3072), dtype=np.uint8),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": [coarse_names.index(table[f][1]) for f in fine],
            b"filenames": [f"image_{i}.png".encode() for i in range(len(fine))],
        }
    parts["meta"] = {
        b"fine_label_names": [fine.encode() for fine, _ in table],
        b"coarse_label_names": [coarse.encode() for coarse in coarse_names],
    }
    return parts


def write_cifar_folder(folder, parts, archive_folder="cifar-100-python"):
    os.makedirs(os.path.join(folder, archive_folder))
    for name, part in parts.items():
        with open(os.path.join(folder, archive_folder, name), "wb") as file:
            pickle.dump(part, file, protocol=2)
    return os.path.join(folder, archive_folder)


def write_cifar_archive(path, parts, archive_folder="cifar-100-python"):
    """Writes a `.tar.gz` laid out as cifar-100-python.tar.gz (or, with another folder, a look-alike)."""
    with tarfile.open(path, "w:gz") as archive:
        for name, part in parts.items():
            data = pickle.dumps(part, protocol=2)
            info = tarfile.TarInfo(f"{archive_folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def cifar_images(parts, fine_label):
    """The images `[n, 32, 32, 3]` of one class, train then test, in file order."""
    images = []
    for name in ("train", "test"):
        labels = np.array(parts[name][b"fine_labels"])
        images.append(parts[name][b"data"][labels == fine_label].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(images)

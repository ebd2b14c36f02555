"""`prepare_dataset`: a standard few-shot benchmark, built from the user's copy of ImageNet or CIFAR-100."""

import dataclasses
import datetime
import os
import shutil

from kerasrwm.data.benchmarks import cifar_benchmarks
from kerasrwm.data.benchmarks import imagenet_benchmarks
from kerasrwm.data.benchmarks.cifar100 import read_cifar100
from kerasrwm.data.benchmarks.imagenet_train import ImageNetTrain
from kerasrwm.data.benchmarks.prepared_output import check_output
from kerasrwm.data.benchmarks.prepared_output import claim_output
from kerasrwm.data.benchmarks.prepared_output import write_manifest
from kerasrwm.data.benchmarks.split_lists import lists_sha256
from kerasrwm.data.benchmarks.split_lists import read_mini_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import read_tiered_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import split_list_directory
from kerasrwm.validation import check_choice

PNG_BYTES = 16_600  # an 84x84 RGB PNG of an ImageNet photo: Ren et al.'s 779,165 take 12.9 GB
IMAGES_PER_IMAGENET_CLASS = 1281  # ILSVRC-2012 training set: 1,281,167 images, 1000 classes
CIFAR_IMAGE_BYTES = 32 * 32 * 3
CIFAR_IMAGES_PER_CLASS = 600


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark: its lists, its source and what it is cited as."""

    lists_folder: str
    list_extension: str
    source: str
    citation: str
    published: str
    published_images: dict  # images per split file (train / val / test) of the published benchmark


ILSVRC = "Russakovsky et al., ImageNet Large Scale Visual Recognition Challenge, IJCV 2015"
CIFAR = "Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009"

BENCHMARKS = {
    "mini-imagenet": Benchmark(
        "mini_imagenet",
        ".csv",
        "ILSVRC-2012 training set",
        "Ravi & Larochelle, Optimization as a Model for Few-Shot Learning, ICLR 2017 (split); Vinyals et al., "
        f"Matching Networks for One Shot Learning, NeurIPS 2016 (mini-ImageNet); {ILSVRC}",
        "64 / 16 / 20 classes of 600 images, 84x84",
        {"train": 38_400, "val": 9_600, "test": 12_000},
    ),
    "tiered-imagenet": Benchmark(
        "tiered_imagenet",
        ".csv",
        "ILSVRC-2012 training set",
        "Ren et al., Meta-Learning for Semi-Supervised Few-Shot Classification, ICLR 2018; " + ILSVRC,
        "351 / 97 / 160 classes in 20 / 6 / 8 categories, 448,695 / 124,261 / 206,209 images, 84x84",
        {"train": 448_695, "val": 124_261, "test": 206_209},
    ),
    "cifar-fs": Benchmark(
        "cifar_fs",
        ".txt",
        "CIFAR-100",
        "Bertinetto et al., Meta-learning with Differentiable Closed-form Solvers, ICLR 2019; " + CIFAR,
        "64 / 16 / 20 classes of 600 images, 32x32",
        {"train": 38_400, "val": 9_600, "test": 12_000},
    ),
    "fc100": Benchmark(
        "fc100",
        ".txt",
        "CIFAR-100",
        "Oreshkin et al., TADAM: Task Dependent Adaptive Metric for Improved Few-Shot Learning, NeurIPS 2018; " + CIFAR,
        "12 / 4 / 4 superclasses, 60 / 20 / 20 classes of 600 images, 32x32",
        {"train": 36_000, "val": 12_000, "test": 12_000},
    ),
}


def _expected_images(dataset, lists_directory):
    """How many images `dataset` will hold (tiered-ImageNet: estimated from ILSVRC-2012's mean class size)."""
    if dataset == "mini-imagenet":
        lists = read_mini_imagenet_lists(lists_directory)
        return sum(len(numbers) for classes in lists.values() for numbers in classes.values())
    if dataset == "tiered-imagenet":
        return IMAGES_PER_IMAGENET_CLASS * sum(map(len, read_tiered_imagenet_lists(lists_directory).values()))
    classes = cifar_benchmarks.cifar_fs_classes if dataset == "cifar-fs" else cifar_benchmarks.fc100_classes
    return CIFAR_IMAGES_PER_CLASS * sum(map(len, classes(lists_directory).values()))


def expected_disk_use(dataset, lists_directory):
    """`(bytes, description)`: about how much `prepare_dataset` will write for `dataset`."""
    images = _expected_images(dataset, lists_directory)
    if BENCHMARKS[dataset].source == "CIFAR-100":
        return images * CIFAR_IMAGE_BYTES, f"{images:,} 32x32 images in one .npz file"
    return images * PNG_BYTES, f"about {images:,} 84x84 PNG files of about {PNG_BYTES // 1000} kB"


def _size(num_bytes):
    """`num_bytes` for people: `"184 MB"`, `"12.9 GB"`."""
    return f"{num_bytes / 1e6:.0f} MB" if num_bytes < 1e9 else f"{num_bytes / 1e9:.1f} GB"


def _start(dataset, output, request, lists_directory, verbose):
    """Claims `output` (the source has been checked) and prints the expected disk use."""
    claim_output(output, request)
    if verbose:
        disk_bytes, description = expected_disk_use(dataset, lists_directory)
        free = shutil.disk_usage(output).free
        print(
            f"Preparing {dataset} in {output}: {description}, about {_size(disk_bytes)} on disk ({_size(free)} free)."
        )


def _prepare_cifar(dataset, source, output, request, lists_directory, verbose):
    classes = cifar_benchmarks.cifar_fs_classes if dataset == "cifar-fs" else cifar_benchmarks.fc100_classes
    split_classes = classes(lists_directory)
    cifar = read_cifar100(source)
    cifar_benchmarks.check_classes(cifar, split_classes)
    _start(dataset, output, request, lists_directory, verbose)
    path = cifar_benchmarks.npz_path(output, dataset)
    counts = cifar_benchmarks.write_cifar_benchmark(cifar, path, split_classes, verbose)
    return counts, {"format": "npz", "image_size": [32, 32, 3], "load_source": f"npz:{path}"}, cifar.checksums


def _prepare_imagenet(dataset, source, output, request, lists_directory, verbose):
    if dataset == "mini-imagenet":
        (plan, count), method = imagenet_benchmarks.mini_imagenet_plan(lists_directory), "area"
        categories, resize = None, "area (OpenCV INTER_AREA)"
    else:
        (plan, categories), method = imagenet_benchmarks.tiered_imagenet_plan(lists_directory), "cubic"
        count, resize = None, "bicubic (OpenCV INTER_CUBIC)"
    with ImageNetTrain(source) as imagenet:
        imagenet_benchmarks.check_classes(imagenet, plan, dataset)
        _start(dataset, output, request, lists_directory, verbose)
        counts = imagenet_benchmarks.write_image_folder(imagenet, output, plan, method, count, verbose)
    for split, split_categories in (categories or {}).items():
        counts[split]["categories"] = len(split_categories)
    layout = {"format": "image folder of PNG files", "image_size": [84, 84, 3], "resize": resize}
    return counts, {**layout, "load_source": f"folder:{output}"}, {}


def prepare_dataset(dataset, source, output, split_lists=None, verbose=True):
    """Builds a few-shot benchmark in `output` from a local copy of its source data.

    - `"mini-imagenet"`: Ravi & Larochelle's split (64 / 16 / 20 classes x
      600 images) of the ILSVRC-2012 training set, the images the lists
      name, resized to 84x84 with OpenCV-style area interpolation, as
      `output/{train,val,test}/<synset>/*.png`;
    - `"tiered-imagenet"`: Ren et al.'s split (351 / 97 / 160 classes, all
      their images) of the same source, 84x84 with OpenCV-style bicubic
      interpolation as Ren et al.'s conversion, in the same layout;
    - `"cifar-fs"`: Bertinetto et al.'s 64 / 16 / 20 classes of CIFAR-100
      (train and test images merged, 600 per class), as `output/cifar_fs.npz`;
    - `"fc100"`: Oreshkin et al.'s 12 / 4 / 4 superclasses (60 / 20 / 20
      classes) of CIFAR-100, as `output/fc100.npz`.

    `output/manifest.json`, written last, holds the counts per split, the
    image size, the split lists' SHA-256, source checksums where cheap (the
    CIFAR-100 files), the citation and the `load_source` spec to read the
    result. Every file is written whole; rerun the same call after an
    interruption to continue. The expected disk use is printed first.

    Args:
        dataset: `"mini-imagenet"`, `"tiered-imagenet"`, `"cifar-fs"` or `"fc100"`.
        source: ImageNet: the ILSVRC-2012 training folder (class folders or
            class tars) or `ILSVRC2012_img_train.tar`. CIFAR: the
            `cifar-100-python.tar.gz` archive, its folder, or `"tfds:cifar100"`.
        output: the folder to write (new, empty, or an unfinished or finished
            `prepare` of the same request).
        split_lists: optional folder of lists in the shipped layout
            (`kerasrwm/data/benchmarks/splits/<dataset>/`) to use instead.
        verbose: print the disk use and show a `keras.utils.Progbar` over the
            images (`2`: one line at the end).

    Returns:
        The manifest (a dict).

    Example:

    >>> manifest = prepare_dataset("fc100", "cifar-100-python.tar.gz", "data/fc100")
    >>> source = load_source(manifest["load_source"])
    """
    benchmark = BENCHMARKS[check_choice("dataset", dataset, sorted(BENCHMARKS))]
    lists_directory = split_list_directory(benchmark.lists_folder, split_lists)
    request = {"dataset": dataset, "split_lists_sha256": lists_sha256(lists_directory, benchmark.list_extension)}
    output = os.path.abspath(str(output))
    finished = check_output(output, request)
    if finished is not None:
        if verbose:
            print(f"{output} already holds {dataset}; nothing to do.")
        return finished
    if benchmark.source == "CIFAR-100":
        counts, layout, checksums = _prepare_cifar(dataset, source, output, request, lists_directory, verbose)
    else:
        counts, layout, checksums = _prepare_imagenet(dataset, source, output, request, lists_directory, verbose)
    manifest = {
        "dataset": dataset,
        **layout,
        "splits": counts,
        "published": benchmark.published,
        "matches_published": all(counts[split]["images"] == n for split, n in benchmark.published_images.items()),
        "split_lists_sha256": request["split_lists_sha256"],
        "split_lists": "shipped" if split_lists is None else os.path.abspath(str(split_lists)),
        "source": str(source) if str(source).startswith("tfds:") else os.path.abspath(str(source)),
        "source_checksums": checksums,
        "citation": benchmark.citation,
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_manifest(output, manifest)
    if verbose and not manifest["matches_published"]:
        images = " / ".join(f"{counts[split]['images']:,}" for split in benchmark.published_images)
        print(f"Note: {images} images per split, not the published {benchmark.published}.")
    if verbose:
        print(f"Wrote {dataset} to {output}; load it with load_source({manifest['load_source']!r}).")
    return manifest

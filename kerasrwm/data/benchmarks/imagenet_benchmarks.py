"""mini-ImageNet and tiered-ImageNet as image folders, `OUTPUT/{train,val,test}/<synset>/*.png`, from ILSVRC-2012.

Each class folder is finished by a hidden `.complete` file; a rerun skips finished classes and,
in an unfinished one, the images already written (each written whole), so an interrupted
`prepare` continues where it stopped.
"""

import io
import os

import keras
import numpy as np
from PIL import Image

from kerasrwm.data.benchmarks.prepared_output import remove_partial_files
from kerasrwm.data.benchmarks.prepared_output import write_png
from kerasrwm.data.benchmarks.resize import resize_image
from kerasrwm.data.benchmarks.split_lists import SPLIT_FILES
from kerasrwm.data.benchmarks.split_lists import read_mini_imagenet_lists
from kerasrwm.data.benchmarks.split_lists import read_tiered_imagenet_lists

IMAGE_SIZE = (84, 84)
CLASS_COMPLETE = ".complete"


def _decode(data, synset, name):
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:  # includes PIL's UnidentifiedImageError
        raise ValueError(f"Cannot read the image {name!r} of class {synset!r} in `source`: {error}") from None


def check_classes(imagenet, split_classes, dataset):
    """Raises `ValueError` naming the classes of `{split: {synset: ...}}` that `imagenet` lacks, and how many."""
    needed = [synset for classes in split_classes.values() for synset in classes]
    missing = sorted(set(needed) - imagenet.synsets)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(
            f"`source`={imagenet.path!r} lacks {len(missing)} of the {len(needed)} {dataset} class "
            f"{'folders' if imagenet.layout == 'class folders' else 'tars'}: {shown}."
        )


def _write_class(imagenet, folder, synset, select, method, progress):
    """Writes one class's selected images into `folder` (skipping those written before); returns their count.

    `select(names)` maps the class's image names (numeric order) to `[(source name, output name)]`.
    """
    if os.path.isfile(os.path.join(folder, CLASS_COMPLETE)):
        count = sum(name.endswith(".png") for name in os.listdir(folder))
        progress.add(count)
        return count
    os.makedirs(folder, exist_ok=True)
    remove_partial_files(folder)
    selected = select(imagenet.image_names(synset))
    for source_name, output_name in selected:
        path = os.path.join(folder, output_name)
        if not os.path.exists(path):
            image = _decode(imagenet.read(synset, source_name), synset, source_name)
            write_png(path, resize_image(image, IMAGE_SIZE, method))
        progress.add(1)
    with open(os.path.join(folder, CLASS_COMPLETE), "w"):
        pass
    return len(selected)


def write_image_folder(imagenet, output, plan, method, count=None, verbose=True):
    """Writes `plan` `{split: {synset: select}}` under `output/<split>/<synset>/`; returns the counts per split.

    Args:
        imagenet: an open `ImageNetTrain` holding every class of `plan`.
        output: the output folder.
        plan: from `mini_imagenet_plan` or `tiered_imagenet_plan`.
        method: `"area"` or `"cubic"` (see `resize_image`).
        count: the number of images, for the progress bar (None if unknown).
        verbose: show a `keras.utils.Progbar` over the images.
    """
    progress = keras.utils.Progbar(count, unit_name="image", verbose=int(verbose))
    counts = {}
    for split in SPLIT_FILES:
        images = 0
        for synset, select in plan[split].items():
            folder = os.path.join(str(output), split, synset)
            images += _write_class(imagenet, folder, synset, select, method, progress)
        counts[split] = {"classes": len(plan[split]), "images": images}
    return counts


def mini_imagenet_plan(lists_directory):
    """`({split: {synset: select}}, number of images)` for Ravi & Larochelle's lists in `lists_directory`."""
    lists = read_mini_imagenet_lists(lists_directory)

    def selector(synset, numbers):
        def select(names):
            if max(numbers) > len(names):
                raise ValueError(
                    f"Class {synset} of `source` holds {len(names)} training images but the mini-imagenet list "
                    f"names image {max(numbers)} of it; the class is incomplete (ILSVRC-2012 classes hold 732 to 1300)."
                )
            return [(names[number - 1], f"{synset}{number:08d}.png") for number in numbers]

        return select

    plan = {split: {s: selector(s, numbers) for s, numbers in classes.items()} for split, classes in lists.items()}
    return plan, sum(len(numbers) for classes in lists.values() for numbers in classes.values())


def tiered_imagenet_plan(lists_directory):
    """`({split: {synset: select}}, categories per split)` for Ren et al.'s lists: every image of every class."""
    lists = read_tiered_imagenet_lists(lists_directory)

    def selector(synset):
        def select(names):
            if not names:
                raise ValueError(f"Class {synset} of `source` holds no JPEG images; tiered-imagenet uses all of them.")
            return [(name, os.path.splitext(name)[0] + ".png") for name in names]

        return select

    plan = {split: {s: selector(s) for s in classes} for split, classes in lists.items()}
    return plan, {split: sorted(set(classes.values())) for split, classes in lists.items()}

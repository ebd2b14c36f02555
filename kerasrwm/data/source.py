"""`Source`: a labelled image set with a fixed, class-disjoint train / validation / test split."""

import numpy as np

from kerasrwm.data.class_store import ClassStore
from kerasrwm.validation import check_boolean

SPLIT_NAMES = ("train", "validation", "test")
ROTATION_SUFFIXES = ("", "/rot90", "/rot180", "/rot270")


class Source:
    """Labelled uint8 images and a fixed class split, from which each split's `ClassStore` is taken.

    Every source (arrays, `.npz`, image folders, TFDS, synthetic) ends up as a
    `Source`. Splits are fixed by the data, never drawn at run time.

    Args:
        images: uint8 array `[num_images, height, width, channels]`.
        labels: int array `[num_images]` of class ids in `[0, len(class_names))`.
        class_names: one name per class id.
        class_splits: dict from split name (`"train"`, `"validation"`,
            `"test"`) to the class ids of that split; the splits must be
            disjoint. Absent splits are allowed.
        rotations: if True, every class also appears rotated by 90, 180 and
            270 degrees (counter-clockwise), as three more classes of the same
            split (x4 classes and x4 images; square images only).
        drop_small_classes: passed to each `ClassStore`: leave out classes too
            small for an episode instead of raising.
    """

    def __init__(
        self,
        images,
        labels,
        class_names,
        class_splits,
        rotations=False,
        drop_small_classes=False,
    ):
        self.images = images
        self.labels = np.asarray(labels)
        self.class_names = tuple(str(name) for name in class_names)
        self.rotations = check_boolean("rotations", rotations)
        self.drop_small_classes = check_boolean("drop_small_classes", drop_small_classes)
        if rotations and images.shape[1] != images.shape[2]:
            raise ValueError(f"`rotations=True` needs square images; received images of shape {images.shape[1:]}.")
        self.class_splits = {}
        seen = {}
        for split, class_ids in class_splits.items():
            if split not in SPLIT_NAMES:
                raise ValueError(f"Split names must be among {SPLIT_NAMES}; received {split!r} in `class_splits`.")
            class_ids = np.asarray(class_ids, dtype=np.int64)
            for class_id in class_ids:
                if class_id in seen:
                    raise ValueError(
                        f"Splits must be class-disjoint, but class {self.class_names[class_id]!r} "
                        f"is in both {seen[class_id]!r} and {split!r}."
                    )
                seen[class_id] = split
            if len(class_ids):
                self.class_splits[split] = class_ids

    @property
    def split_names(self):
        """The names of the non-empty splits."""
        return tuple(self.class_splits)

    def split(self, name):
        """The `ClassStore` of split `name`, holding only that split's images.

        Args:
            name: `"train"`, `"validation"` or `"test"`.

        Returns:
            A `ClassStore`; with `rotations`, each class `c` is followed by
            `c/rot90`, `c/rot180` and `c/rot270`.
        """
        if name not in self.class_splits:
            raise ValueError(f"`name` must be one of this source's splits {self.split_names}; received {name!r}.")
        class_ids = self.class_splits[name]
        order = np.argsort(self.labels, kind="stable")
        starts = np.searchsorted(self.labels[order], class_ids, side="left")
        ends = np.searchsorted(self.labels[order], class_ids, side="right")
        per_class = [order[start:end] for start, end in zip(starts, ends)]
        images = self.images[np.concatenate(per_class)]
        offsets = np.cumsum([0] + [len(indices) for indices in per_class])
        class_image_indices = [np.arange(start, end) for start, end in zip(offsets[:-1], offsets[1:])]
        names = [self.class_names[c] for c in class_ids]
        if not self.rotations:
            return ClassStore(images, class_image_indices, names, self.drop_small_classes, split_name=name)
        quarter_turns = range(len(ROTATION_SUFFIXES))
        return ClassStore(
            np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in quarter_turns]),
            [indices + k * len(images) for indices in class_image_indices for k in quarter_turns],
            [class_name + ROTATION_SUFFIXES[k] for class_name in names for k in quarter_turns],
            self.drop_small_classes,
            split_name=name,
        )

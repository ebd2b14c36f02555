"""`ClassStore`: the images of one split, grouped by class, ready for the episode sampler."""

import numpy as np


class ClassStore:
    """The uint8 images of one class split and, per class, the indices of its images.

    Args:
        images: uint8 array `[num_images, height, width, channels]`.
        class_image_indices: one int array per class, indices into `images`.
        class_names: one name per class.
        drop_small_classes: if True, classes too small for an episode spec
            are left out by `for_spec` instead of raising a `ValueError`.
        split_name: the split these classes form (`"train"`, ...), named in errors.
    """

    def __init__(
        self,
        images,
        class_image_indices,
        class_names,
        drop_small_classes=False,
        split_name=None,
    ):
        self.images = images
        self.split_name = split_name
        self.class_image_indices = [np.asarray(i, dtype=np.int32) for i in class_image_indices]
        self.class_names = tuple(class_names)
        self.drop_small_classes = drop_small_classes
        if len(self.class_image_indices) != len(self.class_names):
            raise ValueError(
                "`class_image_indices` and `class_names` must have one entry per class; received "
                f"{len(self.class_image_indices)} and {len(self.class_names)} entries."
            )

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        """`(height, width, channels)` of every image."""
        return tuple(self.images.shape[1:])

    @property
    def class_counts(self):
        """int32 array `[num_classes]`: images per class."""
        return np.array([len(i) for i in self.class_image_indices], dtype=np.int32)

    def index_table(self):
        """int32 array `[num_classes, max_count]` of image indices, padded with 0 after each count."""
        table = np.zeros((self.num_classes, max(self.class_counts, default=0)), dtype=np.int32)
        for row, indices in zip(table, self.class_image_indices):
            row[: len(indices)] = indices
        return table

    def for_spec(self, spec):
        """This store, checked for `spec`: every class can fill an episode and there are enough classes.

        Args:
            spec: an `EpisodeSpec`.

        Returns:
            This store, or, when `drop_small_classes` is set, a store without the
            classes holding fewer than `spec.images_per_class` images.

        Raises:
            ValueError: if a class is too small (and `drop_small_classes` is
                False), or if fewer than `spec.n_way` classes remain.
        """
        counts = self.class_counts
        small = np.flatnonzero(counts < spec.images_per_class)
        store = self
        if len(small) and not self.drop_small_classes:
            listed = ", ".join(f"{self.class_names[c]!r} ({counts[c]} images)" for c in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            raise ValueError(
                f"An episode needs k_shot + k_extra + n_queries = {spec.k_shot} + {spec.k_extra} + "
                f"{spec.n_queries} = {spec.images_per_class} images of a class, but {len(small)} "
                f"classes hold fewer: {listed}{more}. Lower the spec or load the source with "
                "drop_small_classes=True to leave these classes out."
            )
        if len(small):
            keep = np.flatnonzero(counts >= spec.images_per_class)
            store = ClassStore(
                self.images,
                [self.class_image_indices[c] for c in keep],
                [self.class_names[c] for c in keep],
                drop_small_classes=True,
                split_name=self.split_name,
            )
        if spec.n_way > store.num_classes:
            split = "the split" if self.split_name is None else f"the {self.split_name!r} split"
            raise ValueError(
                f"`n_way` must be at most the number of usable classes in {split} "
                f"({store.num_classes}); received n_way={spec.n_way}. Give that split more classes "
                "(e.g. the source's `split_fractions`) or lower `n_way`."
            )
        return store

"""Tagged images for the data tests: each image encodes its class and its index within the class."""

import numpy as np


def labelled_arrays(num_classes=12, images_per_class=10, image_size=6):
    """uint8 images whose pixel [0, 0] is the class id and pixel [0, 1] the image's index in its class."""
    labels = np.repeat(np.arange(num_classes), images_per_class)
    images = np.zeros((len(labels), image_size, image_size, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = labels
    images[:, 0, 1, 0] = np.tile(np.arange(images_per_class), num_classes)
    return images, labels


def decode(images):
    """(class id, image index in class) of float images `[..., h, w, 1]` from `labelled_arrays`."""
    pixels = np.round(np.asarray(images)[..., 0, :2, 0] * 255).astype(int)
    return pixels[..., 0], pixels[..., 1]

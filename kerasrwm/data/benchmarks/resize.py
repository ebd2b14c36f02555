"""Resizing as the reference conversions do it (OpenCV's `INTER_AREA` and `INTER_CUBIC`), in NumPy.

mini-ImageNet's usual conversion resizes every ILSVRC-2012 image to 84x84 with OpenCV's area
interpolation; Ren et al.'s tiered-ImageNet conversion uses OpenCV's bicubic interpolation.
Both ignore the aspect ratio. PIL's filters differ from them (its bicubic filter widens with
the scale factor, its box filter has no fractional pixel weights), so the two are written
here as separable weight matrices: `resized = rows @ image @ columns.T` per channel, rounded
to the nearest integer and clipped to uint8 as OpenCV's float path does. A value that lies on a
half (a tie) may round either way depending on the order of the float sums, and OpenCV's
integer fast paths can differ by one grey level too.
"""

import numpy as np

from kerasrwm.validation import check_choice

CUBIC_A = -0.75  # OpenCV's bicubic coefficient


def _linear_weights(in_size, out_size):
    """`[out_size, in_size]` bilinear weights, half-pixel centres, edge pixels repeated."""
    weights = np.zeros((out_size, in_size))
    position = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0.0)
    left = np.floor(position).astype(int)
    fraction = position - left
    rows = np.arange(out_size)
    np.add.at(weights, (rows, np.minimum(left, in_size - 1)), 1.0 - fraction)
    np.add.at(weights, (rows, np.minimum(left + 1, in_size - 1)), fraction)
    return weights


def area_weights(in_size, out_size):
    """`[out_size, in_size]` weights of OpenCV's `INTER_AREA` along one axis.

    Shrinking, output pixel `i` is the mean of the input interval `[i * s, (i + 1) * s)`,
    `s = in_size / out_size`, input pixels weighted by the length of their overlap with it.
    Enlarging, `INTER_AREA` is bilinear interpolation.
    """
    if out_size > in_size:
        return _linear_weights(in_size, out_size)
    scale = in_size / out_size
    starts = np.arange(out_size)[:, np.newaxis] * scale
    pixels = np.arange(in_size)[np.newaxis, :]
    overlap = np.clip(np.minimum(pixels + 1, starts + scale) - np.maximum(pixels, starts), 0.0, None)
    return overlap / scale


def _cubic(distance):
    distance = np.abs(distance)
    near = ((CUBIC_A + 2) * distance - (CUBIC_A + 3)) * distance * distance + 1
    far = ((distance - 5) * distance + 8) * distance * CUBIC_A - 4 * CUBIC_A
    return np.where(distance <= 1, near, np.where(distance < 2, far, 0.0))


def cubic_weights(in_size, out_size):
    """`[out_size, in_size]` weights of OpenCV's `INTER_CUBIC` along one axis.

    Output pixel `i` samples the input at `x = (i + 0.5) * in_size / out_size - 0.5` with the
    four taps `floor(x) - 1 .. floor(x) + 2` of the cubic kernel with `a = -0.75` (no widening
    when shrinking); taps outside the image take the nearest edge pixel.
    """
    weights = np.zeros((out_size, in_size))
    position = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    left = np.floor(position).astype(int)
    rows = np.arange(out_size)
    for tap in range(-1, 3):
        np.add.at(weights, (rows, np.clip(left + tap, 0, in_size - 1)), _cubic(position - (left + tap)))
    return weights


WEIGHTS = {"area": area_weights, "cubic": cubic_weights}


def resize_image(image, size, method):
    """Resizes one uint8 image `[height, width, channels]` to `size` `(height, width)`.

    Args:
        image: uint8 array `[height, width, channels]`.
        size: `(height, width)` of the result.
        method: `"area"` (OpenCV `INTER_AREA`) or `"cubic"` (OpenCV `INTER_CUBIC`).

    Returns:
        uint8 array `[size[0], size[1], channels]`.
    """
    check_choice("method", method, sorted(WEIGHTS))
    rows = WEIGHTS[method](image.shape[0], size[0])
    columns = WEIGHTS[method](image.shape[1], size[1])
    resized = np.einsum("oh,hwc,pw->opc", rows, image.astype(np.float64), columns, optimize=True)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)

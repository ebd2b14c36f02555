"""The OpenCV-style resizes against references written from their definitions."""

import numpy as np
import pytest

from kerasrwm.data.benchmarks.resize import resize_image


def area_reference(image, size):
    """Area averaging by supersampling: repeat each pixel `out` times, then average blocks of `in` pixels."""
    (height, width), (out_height, out_width) = image.shape[:2], size
    fine = np.repeat(np.repeat(image.astype(np.float64), out_height, axis=0), out_width, axis=1)
    return fine.reshape(out_height, height, out_width, width, -1).mean(axis=(1, 3))


def keys_kernel(distance, a=-0.75):
    distance = abs(distance)
    if distance <= 1:
        return (a + 2) * distance**3 - (a + 3) * distance**2 + 1
    if distance < 2:
        return a * distance**3 - 5 * a * distance**2 + 8 * a * distance - 4 * a
    return 0.0


def cubic_reference(image, size):
    """OpenCV INTER_CUBIC pixel by pixel: half-pixel centres, 4x4 taps, edge pixels repeated."""
    height, width = image.shape[:2]
    result = np.zeros((*size, image.shape[2]))
    for i in range(size[0]):
        y = (i + 0.5) * height / size[0] - 0.5
        for j in range(size[1]):
            x = (j + 0.5) * width / size[1] - 0.5
            for row in range(int(np.floor(y)) - 1, int(np.floor(y)) + 3):
                for column in range(int(np.floor(x)) - 1, int(np.floor(x)) + 3):
                    weight = keys_kernel(y - row) * keys_kernel(x - column)
                    result[i, j] += weight * image[min(max(row, 0), height - 1), min(max(column, 0), width - 1)]
    return result


def assert_rounds(resized, exact):
    """`resized` is `exact` rounded to the nearest integer (a tie either way) and clipped to [0, 255]."""
    assert resized.dtype == np.uint8
    np.testing.assert_array_less(np.abs(resized - np.clip(exact, 0, 255)), 0.5 + 1e-9)


@pytest.mark.parametrize("shape", [(30, 37), (12, 28), (13, 12), (50, 41)])
def test_area_shrinking_is_the_mean_over_each_output_pixel_area(shape):
    image = np.random.default_rng(0).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    assert_rounds(resize_image(image, (12, 11), "area"), area_reference(image, (12, 11)))


def test_area_by_an_integer_factor_is_the_block_mean():
    image = np.random.default_rng(1).integers(0, 256, size=(168, 336, 3), dtype=np.uint8)
    block_mean = image.reshape(84, 2, 84, 4, 3).astype(np.float64).mean(axis=(1, 3))
    np.testing.assert_array_equal(resize_image(image, (84, 84), "area"), np.rint(block_mean).astype(np.uint8))


def test_area_enlarging_interpolates_linearly_between_pixel_centres():
    image = np.array([[0, 100]], dtype=np.uint8)[..., np.newaxis]  # one row, two pixels
    enlarged = resize_image(image, (1, 4), "area")[0, :, 0]
    # output centres at input x = -0.25, 0.25, 0.75, 1.25: clamped, 25 %, 75 %, clamped
    np.testing.assert_array_equal(enlarged, [0, 25, 75, 100])


@pytest.mark.parametrize("shape", [(50, 43), (30, 65), (21, 19)])
def test_cubic_matches_the_pixel_by_pixel_definition(shape):
    image = np.random.default_rng(2).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    assert_rounds(resize_image(image, (21, 19), "cubic"), cubic_reference(image, (21, 19)))


def test_cubic_keeps_a_constant_image_and_same_size_is_the_identity():
    constant = np.full((97, 61, 3), 173, dtype=np.uint8)
    np.testing.assert_array_equal(resize_image(constant, (84, 84), "cubic"), np.full((84, 84, 3), 173))
    image = np.random.default_rng(3).integers(0, 256, size=(84, 84, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_image(image, (84, 84), "cubic"), image)
    np.testing.assert_array_equal(resize_image(image, (84, 84), "area"), image)


def test_an_unknown_method_is_named():
    with pytest.raises(ValueError, match="`method` must be one of"):
        resize_image(np.zeros((4, 4, 3), np.uint8), (2, 2), "lanczos")

"""Input checks and dropout construction shared by the image backbones."""

import keras


def check_image_shape(input_shape, num_pools):
    """Raises `ValueError` unless `input_shape` is `[batch, h, w, c]` surviving `num_pools` 2x2 pools.

    Args:
        input_shape: shape of the backbone input.
        num_pools: number of 2x2, stride-2 max-pools applied to the image.
    """
    if len(input_shape) != 4:
        raise ValueError(f"`inputs` must have rank 4, `[batch, h, w, c]`; received shape: {tuple(input_shape)}.")
    if input_shape[-1] is None:
        raise ValueError(f"`inputs` must have a known channel dimension; received shape: {tuple(input_shape)}.")
    minimum = 2**num_pools
    if any(size is not None and size < minimum for size in input_shape[1:3]):
        raise ValueError(
            f"`inputs` images must be at least {minimum}x{minimum} to survive {num_pools} 2x2 max-pools; "
            f"received shape: {tuple(input_shape)}."
        )


def check_float_images(inputs):
    """Raises `ValueError` unless `inputs` has a floating-point dtype."""
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if not keras.backend.is_float_dtype(dtype):
        raise ValueError(f"`inputs` must be floating-point images (cast and normalise first); received dtype: {dtype}.")


def dropout_layer(rate, spatial, dtype_policy, name):
    """`SpatialDropout2D(rate)` (whole feature maps) if `spatial`, else element-wise `Dropout(rate)`."""
    dropout_class = keras.layers.SpatialDropout2D if spatial else keras.layers.Dropout
    return dropout_class(rate, dtype=dtype_policy, name=name)

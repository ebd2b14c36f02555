"""The first convolution of a backbone and its batch normalisation as one matrix product.

On the images themselves a 3x3 convolution has few inputs per output (9 per image channel) and
writes the largest feature map of the network, so its training step is bound by memory passes,
not arithmetic: the convolution, the normalisation statistics, the normalisation, and their
gradients each read or write that map, and oneDNN's filter gradient for one input channel is
slow on AVX2. With batch statistics, batch normalisation of a convolution is itself an affine
convolution: with `P` the 3x3 patches of the images (one row per output position, plus a
constant 1), the batch mean of output channel `o` is `mu . W_o + b_o` and its (biased) variance
`W_o^T Cov(P) W_o`, both from the small Gram matrix `P^T P`. So

    BN(conv(x)) = P @ [W * s ; beta - (mu @ W) * s],   s = gamma / sqrt(var + epsilon),

one matrix product forward and one for the kernel gradient, with the gradient through the batch
statistics given by differentiating `s`. The conv bias cancels, as in the layer-by-layer form.
"""

import tensorflow as tf

MAX_IMAGE_CHANNELS = 4


def can_normalize_on_patches(conv, norm, images, training):
    """Whether `normalized_image_conv` computes `norm(conv(images), training)` exactly.

    True for a trainable 3x3, stride-1, "same" `keras.layers.Conv2D` on float32 channels-last
    images with at most `MAX_IMAGE_CHANNELS` channels and static height and width, followed by a
    kerasrwm `BatchNormalization` over the channels that uses this replica's batch statistics
    (not `synchronized` across replicas).
    """
    return (
        bool(training)
        and norm.trainable
        and not norm.renorm
        and not norm.synchronized
        and norm.scale
        and norm.center
        and norm.axis in (-1, 3)
        and tuple(conv.kernel_size) == (3, 3)
        and tuple(conv.strides) == (1, 1)
        and tuple(conv.dilation_rate) == (1, 1)
        and conv.padding == "same"
        and conv.groups == 1
        and conv.data_format == "channels_last"
        and len(images.shape) == 4
        and None not in images.shape[1:]
        and images.shape[-1] <= MAX_IMAGE_CHANNELS
        and images.dtype == tf.float32
        and conv.compute_dtype == "float32"
    )


def image_patches(images):
    """`[9 * channels + 1, batch * h * w]`: each output position's 3x3 "same" patch, then a 1.

    Rows are ordered (kernel row, kernel column, channel), as a Conv2D kernel's first three axes.
    """
    height, width, channels = images.shape[1:]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    rows = [
        padded[:, row : row + height, column : column + width, channel]
        for row in range(3)
        for column in range(3)
        for channel in range(channels)
    ]
    rows.append(tf.ones_like(images[..., 0]))
    return tf.reshape(tf.stack(rows), [len(rows), -1])


def normalized_image_conv(images, conv, norm):
    """`norm(conv(images), training=True)` as one matrix product over the image patches.

    Args:
        images: float32 images `[batch, h, w, channels]`.
        conv: the 3x3 "same" `keras.layers.Conv2D` (see `can_normalize_on_patches`).
        norm: the `BatchNormalization` that follows it; its moving statistics are updated.

    Returns:
        The normalised feature map `[batch, h, w, conv.filters]`.
    """
    patches = image_patches(images)
    count = tf.cast(tf.shape(patches)[1], patches.dtype)
    second_moments = tf.matmul(patches, patches, transpose_b=True) / count
    patch_mean = second_moments[-1, :-1]
    patch_covariance = second_moments[:-1, :-1] - patch_mean[:, None] * patch_mean[None, :]
    kernel = tf.reshape(conv.kernel, [patches.shape[0] - 1, conv.filters])
    # A quadratic form of a covariance, >= 0 but for rounding, which can make it negative when the
    # patches barely vary (e.g. constant images): clamped, so that rsqrt never sees a negative.
    variance = tf.maximum(tf.reduce_sum(kernel * tf.matmul(patch_covariance, kernel), axis=0), 0.0)
    mean = tf.linalg.matvec(kernel, patch_mean, transpose_a=True)
    scale = norm.gamma * tf.math.rsqrt(variance + norm.epsilon)
    offset = -mean
    if conv.use_bias:
        mean += conv.bias
        offset = conv.bias - mean  # zero, with the bias's (zero) gradient as in the layer-by-layer form
    projection = tf.concat([kernel * scale, (norm.beta + offset * scale)[None]], axis=0)
    outputs = tf.matmul(patches, projection, transpose_a=True)
    norm.update_moving_statistics(mean, variance)
    return tf.reshape(outputs, tf.concat([tf.shape(images)[:3], [conv.filters]], axis=0))

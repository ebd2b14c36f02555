"""`BatchNormalization` that runs TensorFlow's fused kernels on channels-last feature maps."""

import keras
import tensorflow as tf

FUSED_DTYPES = ("float32", "float16", "bfloat16")


@keras.saving.register_keras_serializable(package="kerasrwm")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by one fused TensorFlow op per direction.

    Keras 3 normalises with separate ops (moments, then scale and shift) whose gradient is a
    dozen more passes over the feature map, several of them over the largest tensor of a Conv-4
    step (`[images, 28, 28, channels]` before the first pool). On `[batch, h, w, channels]`
    inputs normalised over the last axis, this layer calls `FusedBatchNormV3`, one pass forward
    and one backward (oneDNN's kernel where TensorFlow enables it). The function, the weights
    and the moving-statistics update are those of the Keras layer: the moving variance is
    updated with the biased batch variance, as Keras does (the fused op returns the unbiased
    one, which is rescaled). Any other case (another rank, axis, dtype or backend, renorm,
    a mask, a frozen layer, `synchronized=True`: the fused op sees one replica's batch only)
    runs the Keras layer unchanged, which all-reduces the statistics across replicas.

    Args:
        **kwargs: arguments of `keras.layers.BatchNormalization`.

    Call arguments:
        inputs: feature maps `[batch, h, w, channels]` (other shapes use the Keras layer).
        training: batch statistics (and a moving-statistics update) if true.
        mask: as in `keras.layers.BatchNormalization`; a mask disables the fused path.

    Returns:
        The normalised feature maps, with the shape of `inputs`.
    """

    def _fusable(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and keras.backend.standardize_dtype(inputs.dtype) in FUSED_DTYPES
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        use_batch_statistics = bool(training) and self.trainable
        if use_batch_statistics:
            empty = tf.zeros([0], "float32")
            outputs, mean, unbiased_variance = _fused_batch_norm(inputs, self, empty, empty, is_training=True)
            shape = tf.shape(inputs)
            count = tf.cast(shape[0] * shape[1] * shape[2], "float32")
            self.update_moving_statistics(mean, unbiased_variance * (tf.maximum(count - 1.0, 0.0) / count))
        else:
            outputs, _, _ = _fused_batch_norm(inputs, self, self.moving_mean, self.moving_variance, is_training=False)
        return tf.cast(outputs, self.compute_dtype)

    def update_moving_statistics(self, mean, variance):
        """Moves the moving statistics towards a batch's `mean` and biased `variance`, `[channels]`."""
        for moving, batch_value in ((self.moving_mean, mean), (self.moving_variance, variance)):
            batch_value = tf.cast(batch_value, moving.dtype)
            moving.assign(moving * self.momentum + batch_value * (1.0 - self.momentum))


def _fused_batch_norm(inputs, layer, mean, variance, is_training):
    """`FusedBatchNormV3` on NHWC `inputs` with `layer`'s scale, offset and epsilon.

    The raw op, because `tf.compat.v1.nn.fused_batch_norm` raises epsilon to 1.001e-5.
    Returns `(outputs, batch_mean, unbiased_batch_variance)` (the last two are only meaningful
    when `is_training`).
    """
    outputs, batch_mean, batch_variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs,
        scale=tf.cast(layer.gamma, "float32"),
        offset=tf.cast(layer.beta, "float32"),
        mean=tf.cast(mean, "float32"),
        variance=tf.cast(variance, "float32"),
        epsilon=layer.epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=is_training,
    )
    return outputs, batch_mean, batch_variance

"""The Conv-4 image backbone of the reference few-shot models."""

import keras

from kerasrwm.layers.initializers import torch_linear_initializer
from kerasrwm.models.backbones.batch_normalization import BatchNormalization
from kerasrwm.models.backbones.common import check_float_images
from kerasrwm.models.backbones.common import check_image_shape
from kerasrwm.models.backbones.common import dropout_layer
from kerasrwm.models.backbones.image_conv import can_normalize_on_patches
from kerasrwm.models.backbones.image_conv import normalized_image_conv
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate

NUM_BLOCKS = 4
DROPOUT_TYPES = ("base", "2d")


@keras.saving.register_keras_serializable(package="kerasrwm")
class Conv4Backbone(keras.layers.Layer):
    """Four conv blocks then flatten, as in the authors' Conv-4 backbone.

    Each block is Conv2D(3x3, stride 1, "same", with bias) → BatchNormalization → MaxPool2D(2) →
    Dropout → ReLU. The reference uses 32 channels for 84x84 images (800 features, 28,896
    trainable parameters with RGB input) and 64 for 28x28 Omniglot (64 features). Conv kernels
    are initialised as PyTorch does, U(±1/sqrt(fan_in)); biases start at zero. Features are
    flattened in (h, w, c) order, whereas PyTorch flattens (c, h, w); this only matters when
    porting weights of a following dense layer.

    Training computes the same function faster: batch normalisation runs TensorFlow's fused
    kernels (`kerasrwm.models.backbones.BatchNormalization`), and the first block's convolution
    and normalisation are one matrix product over the image patches
    (`kerasrwm.models.backbones.image_conv`).

    Irie & Schmidhuber, "Accelerating Neural Self-Improvement via Bootstrapping", 2023.

    Args:
        channels: filters of every convolution.
        dropout: dropout rate after each pool.
        dropout_type: `"base"` (element-wise `Dropout`) or `"2d"` (`SpatialDropout2D`).
        batch_norm_momentum: Keras moving-average momentum (0.9 is PyTorch's momentum 0.1).
        batch_norm_epsilon: BatchNormalization epsilon (1e-5 as in PyTorch).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float images `[batch, h, w, c]`, with h and w at least 16.
        training: batch statistics and dropout if true; moving statistics otherwise.

    Returns:
        Features `[batch, (h // 16) * (w // 16) * channels]`.
    """

    def __init__(
        self,
        channels=32,
        dropout=0.0,
        dropout_type="base",
        batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = check_integer("channels", channels)
        self.dropout = rate("dropout", dropout)
        self.dropout_type = check_choice("dropout_type", dropout_type, DROPOUT_TYPES)
        self.batch_norm_momentum = rate("batch_norm_momentum", batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.convs = [
            keras.layers.Conv2D(
                self.channels,
                3,
                padding="same",
                kernel_initializer=torch_linear_initializer(),
                dtype=self.dtype_policy,
                name=f"conv_{index}",
            )
            for index in range(NUM_BLOCKS)
        ]
        self.norms = [
            BatchNormalization(
                momentum=self.batch_norm_momentum,
                epsilon=self.batch_norm_epsilon,
                dtype=self.dtype_policy,
                name=f"batch_norm_{index}",
            )
            for index in range(NUM_BLOCKS)
        ]
        self.dropouts = [
            dropout_layer(self.dropout, self.dropout_type == "2d", self.dtype_policy, f"dropout_{index}")
            for index in range(NUM_BLOCKS)
        ]
        self.pool = keras.layers.MaxPool2D(2, dtype=self.dtype_policy, name="pool")
        self.relu = keras.layers.ReLU(dtype=self.dtype_policy, name="relu")
        self.flatten = keras.layers.Flatten(dtype=self.dtype_policy, name="flatten")

    def build(self, input_shape):
        check_image_shape(input_shape, NUM_BLOCKS)
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            norm.build(shape)
            shape = self.pool.compute_output_shape(shape)

    def call(self, inputs, training=None):
        check_float_images(inputs)
        hidden = inputs
        for index, (conv, norm, dropout) in enumerate(zip(self.convs, self.norms, self.dropouts)):
            if index == 0 and can_normalize_on_patches(conv, norm, hidden, training):
                hidden = normalized_image_conv(hidden, conv, norm)
            else:
                hidden = norm(conv(hidden), training=training)
            hidden = self.relu(dropout(self.pool(hidden), training=training))
        return self.flatten(hidden)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1:3]
        if height is None or width is None:
            return (input_shape[0], None)
        scale = 2**NUM_BLOCKS
        return (input_shape[0], (height // scale) * (width // scale) * self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "dropout": self.dropout,
                "dropout_type": self.dropout_type,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
            }
        )
        return config

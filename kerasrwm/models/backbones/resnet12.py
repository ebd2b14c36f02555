"""The ResNet-12 image backbone of the reference few-shot models."""

import keras

from kerasrwm.models.backbones.common import check_float_images
from kerasrwm.models.backbones.common import check_image_shape
from kerasrwm.models.backbones.residual_block import ResidualBlock
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate

DROPOUT_TYPES = ("base", "inblock", "2d", "2d_inblock")


@keras.saving.register_keras_serializable(package="kerasrwm")
class ResNet12Backbone(keras.layers.Layer):
    """Residual blocks then global average pooling, as in the authors' `res12` models.

    One `ResidualBlock` per entry of `channels`, each halving the spatial size: 84x84 images
    reach 5x5 before pooling, 32x32 images 2x2. The reference uses channels (64, 96, 128, 256),
    or (64, 128, 256, 512) for its "big" variant.

    Args:
        channels: output channels of each residual block.
        dropout: dropout rate of the blocks.
        dropout_type: `"base"` (dropout after each block's pool), `"inblock"` (also after the
            first two activations of each block), or `"2d"` / `"2d_inblock"`, the same with
            `SpatialDropout2D`.
        leaky_relu_slope: negative slope of the LeakyReLUs.
        batch_norm_momentum: Keras moving-average momentum (0.9 is PyTorch's momentum 0.1).
        batch_norm_epsilon: BatchNormalization epsilon (1e-5 as in PyTorch).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: float images `[batch, h, w, c]`, with h and w at least `2 ** len(channels)`.
        training: batch statistics and dropout if true; moving statistics otherwise.

    Returns:
        Features `[batch, channels[-1]]`.
    """

    def __init__(
        self,
        channels=(64, 96, 128, 256),
        dropout=0.0,
        dropout_type="base",
        leaky_relu_slope=0.1,
        batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__iter__") or not len(channels):
            raise ValueError(f"`channels` must be a non-empty sequence of positive integers; received: {channels!r}.")
        self.channels = tuple(check_integer("channels", value) for value in channels)
        self.dropout = rate("dropout", dropout)
        self.dropout_type = check_choice("dropout_type", dropout_type, DROPOUT_TYPES)
        self.leaky_relu_slope = float(leaky_relu_slope)
        self.batch_norm_momentum = rate("batch_norm_momentum", batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.blocks = [
            ResidualBlock(
                filters,
                dropout=self.dropout,
                in_block_dropout=self.dropout_type.endswith("inblock"),
                spatial_dropout=self.dropout_type.startswith("2d"),
                leaky_relu_slope=self.leaky_relu_slope,
                batch_norm_momentum=self.batch_norm_momentum,
                batch_norm_epsilon=self.batch_norm_epsilon,
                dtype=self.dtype_policy,
                name=f"block_{index}",
            )
            for index, filters in enumerate(self.channels)
        ]
        self.global_pool = keras.layers.GlobalAveragePooling2D(dtype=self.dtype_policy, name="global_pool")

    def build(self, input_shape):
        check_image_shape(input_shape, len(self.blocks))
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        check_float_images(inputs)
        hidden = inputs
        for block in self.blocks:
            hidden = block(hidden, training=training)
        return self.global_pool(hidden)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.channels[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": list(self.channels),
                "dropout": self.dropout,
                "dropout_type": self.dropout_type,
                "leaky_relu_slope": self.leaky_relu_slope,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
            }
        )
        return config

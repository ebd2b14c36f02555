"""One residual block of the ResNet-12 backbone."""

import keras

from kerasrwm.models.backbones.batch_normalization import BatchNormalization
from kerasrwm.models.backbones.common import dropout_layer
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate


@keras.saving.register_keras_serializable(package="kerasrwm")
class ResidualBlock(keras.layers.Layer):
    """A ResNet-12 block of the authors' `res12` models, halving the spatial size.

    `LeakyReLU(BN(conv3(a(BN(conv2(a(BN(conv1(x)))))))) + BN(shortcut(x)))` → MaxPool2D(2) →
    Dropout, where `a` is LeakyReLU (followed by dropout if `in_block_dropout`), the three
    convolutions are 3x3 and the shortcut 1x1, all without bias. Kernels use He-normal
    initialisation over the fan-out with the leaky-ReLU gain, as in the reference.

    Args:
        filters: output channels of every convolution.
        dropout: dropout rate after the pool (and inside the block if `in_block_dropout`).
        in_block_dropout: also apply dropout after the first two activations.
        spatial_dropout: use `SpatialDropout2D` (whole feature maps) instead of `Dropout`.
        leaky_relu_slope: negative slope of the LeakyReLUs.
        batch_norm_momentum: Keras moving-average momentum (0.9 is PyTorch's momentum 0.1).
        batch_norm_epsilon: BatchNormalization epsilon (1e-5 as in PyTorch).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, h, w, c]` with h and w at least 2.
        training: batch statistics and dropout if true; moving statistics otherwise.

    Returns:
        `[batch, h // 2, w // 2, filters]`.
    """

    def __init__(
        self,
        filters,
        dropout=0.0,
        in_block_dropout=False,
        spatial_dropout=False,
        leaky_relu_slope=0.1,
        batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_integer("filters", filters)
        self.dropout = rate("dropout", dropout)
        self.in_block_dropout = bool(in_block_dropout)
        self.spatial_dropout = bool(spatial_dropout)
        self.leaky_relu_slope = float(leaky_relu_slope)
        self.batch_norm_momentum = rate("batch_norm_momentum", batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        initializer = keras.initializers.VarianceScaling(
            scale=2.0 / (1.0 + self.leaky_relu_slope**2), mode="fan_out", distribution="untruncated_normal"
        )
        self.convs = [
            keras.layers.Conv2D(
                self.filters,
                kernel_size,
                padding="same",
                use_bias=False,
                kernel_initializer=initializer,
                dtype=self.dtype_policy,
                name=name,
            )
            for kernel_size, name in ((3, "conv_1"), (3, "conv_2"), (3, "conv_3"), (1, "shortcut_conv"))
        ]
        self.norms = [
            BatchNormalization(
                momentum=self.batch_norm_momentum, epsilon=self.batch_norm_epsilon, dtype=self.dtype_policy, name=name
            )
            for name in ("batch_norm_1", "batch_norm_2", "batch_norm_3", "shortcut_batch_norm")
        ]
        self.activation = keras.layers.LeakyReLU(self.leaky_relu_slope, dtype=self.dtype_policy, name="leaky_relu")
        self.pool = keras.layers.MaxPool2D(2, dtype=self.dtype_policy, name="pool")
        num_dropouts = 3 if self.in_block_dropout else 1
        self.dropouts = [
            dropout_layer(self.dropout, self.spatial_dropout, self.dtype_policy, f"dropout_{index}")
            for index in range(num_dropouts)
        ]

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        output_shape = input_shape[:-1] + (self.filters,)
        conv_1, conv_2, conv_3, shortcut_conv = self.convs
        conv_1.build(input_shape)
        shortcut_conv.build(input_shape)
        conv_2.build(output_shape)
        conv_3.build(output_shape)
        for norm in self.norms:
            norm.build(output_shape)

    def call(self, inputs, training=None):
        conv_1, conv_2, conv_3, shortcut_conv = self.convs
        norm_1, norm_2, norm_3, shortcut_norm = self.norms
        hidden = self.activation(norm_1(conv_1(inputs), training=training))
        if self.in_block_dropout:
            hidden = self.dropouts[1](hidden, training=training)
        hidden = self.activation(norm_2(conv_2(hidden), training=training))
        if self.in_block_dropout:
            hidden = self.dropouts[2](hidden, training=training)
        hidden = norm_3(conv_3(hidden), training=training)
        hidden = self.activation(hidden + shortcut_norm(shortcut_conv(inputs), training=training))
        return self.dropouts[0](self.pool(hidden), training=training)

    def compute_output_shape(self, input_shape):
        return self.pool.compute_output_shape(tuple(input_shape[:-1]) + (self.filters,))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "dropout": self.dropout,
                "in_block_dropout": self.in_block_dropout,
                "spatial_dropout": self.spatial_dropout,
                "leaky_relu_slope": self.leaky_relu_slope,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
            }
        )
        return config

"""The pre-LayerNorm ReLU feed-forward block that follows every SRWM layer."""

import keras

from kerasrwm.layers.initializers import torch_linear_initializer
from kerasrwm.validation import check_integer
from kerasrwm.validation import rate


@keras.saving.register_keras_serializable(package="kerasrwm")
class FeedForward(keras.layers.Layer):
    """`x + Dropout(Dense_2(Dropout(ReLU(Dense_1(LayerNorm(x))))))`, as in the authors' feed-forward block.

    Args:
        ff_dim: width of the hidden layer.
        dropout: rate of both dropouts.
        layer_norm_epsilon: LayerNorm epsilon (1e-5 as in the reference).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[..., model_dim]`.
        training: enables dropout.

    Returns:
        A tensor shaped like `inputs`.
    """

    def __init__(self, ff_dim, dropout=0.0, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.ff_dim = check_integer("ff_dim", ff_dim)
        self.dropout = rate("dropout", dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.supports_masking = True  # per step: a mask passes through unchanged
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.hidden = keras.layers.Dense(
            self.ff_dim,
            activation="relu",
            kernel_initializer=torch_linear_initializer(),
            dtype=self.dtype_policy,
            name="hidden",
        )
        self.hidden_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.projection = None

    def build(self, input_shape):
        model_dim = input_shape[-1]
        self.projection = keras.layers.Dense(
            model_dim, kernel_initializer=torch_linear_initializer(), dtype=self.dtype_policy, name="projection"
        )
        self.layer_norm.build(input_shape)
        self.hidden.build(input_shape)
        self.projection.build(tuple(input_shape[:-1]) + (self.ff_dim,))

    def call(self, inputs, training=None):
        hidden = self.hidden_dropout(self.hidden(self.layer_norm(inputs)), training=training)
        return inputs + self.output_dropout(self.projection(hidden), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"ff_dim": self.ff_dim, "dropout": self.dropout, "layer_norm_epsilon": self.layer_norm_epsilon})
        return config

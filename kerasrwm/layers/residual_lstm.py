"""`ResidualLSTM`: a Keras LSTM in the pre-LayerNorm residual wiring of the fast-weight layers."""

import math

import keras
import tensorflow as tf

from kerasrwm.layers.state import check_initial_state
from kerasrwm.validation import rate


@keras.saving.register_keras_serializable(package="kerasrwm")
class ResidualLSTM(keras.layers.Layer):
    """`output = x + Dropout(LSTM(LayerNorm(x)))`, an LSTM with as many units as input features.

    The LSTM baseline of the SRWM papers feeds its input straight into a plain LSTM; this layer
    gives it the wiring of `kerasrwm.layers.DeltaNet` instead (pre-LayerNorm, residual, then a
    feed-forward block in `kerasrwm.layers.SequenceBlock`), so that the three sequence layers
    are compared inside one architecture. The LSTM itself is the standard Keras cell (gates
    i, f, g, o; no projection), initialised as PyTorch's: every weight and the bias uniform in
    `±1/sqrt(units)`, no forget-gate bias of 1. Its state is Keras's `(h, c)`, zeros at the
    start of an episode.

    Args:
        dropout: dropout rate on the LSTM output before the residual sum.
        return_state: also return the final `(h, c)`.
        layer_norm_epsilon: LayerNorm epsilon (1e-5 as in the reference).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, units]`.
        initial_state: optional tuple `(h, c)`, each `[batch, units]`; defaults to zeros.
        training: enables dropout.

    Returns:
        `[batch, length, units]`, or `(outputs, (h, c))` with `return_state=True`.
    """

    def __init__(self, dropout=0.0, return_state=False, layer_norm_epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dropout = rate("dropout", dropout)
        self.return_state = bool(return_state)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.lstm = None
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    @property
    def units(self):
        return self.lstm.units

    @property
    def state_specs(self):
        return tuple((name, [None, self.units], "[batch, units]") for name in ("h", "c"))

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"`inputs` of {self.name} must have rank 3 [batch, length, features] with a known "
                f"feature size; received shape {tuple(input_shape)}."
            )
        units = input_shape[-1]
        limit = 1.0 / math.sqrt(units)
        self.lstm = keras.layers.LSTM(
            units,
            return_sequences=True,
            return_state=True,
            unit_forget_bias=False,
            kernel_initializer=keras.initializers.RandomUniform(-limit, limit),
            recurrent_initializer=keras.initializers.RandomUniform(-limit, limit),
            bias_initializer=keras.initializers.RandomUniform(-limit, limit),
            dtype=self.dtype_policy,
            name="lstm",
        )
        self.layer_norm.build(input_shape)
        self.lstm.build(input_shape)

    def get_initial_state(self, batch_size):
        """Zero `(h, c)` for `batch_size` episodes."""
        return tuple(tf.zeros([batch_size, self.units], self.compute_dtype) for _ in range(2))

    def call(self, inputs, initial_state=None, training=None):
        if not inputs.dtype.is_floating:
            raise ValueError(f"`inputs` of {self.name} must have a floating dtype; received dtype {inputs.dtype.name}.")
        if initial_state is None:
            state = self.get_initial_state(tf.shape(inputs)[0])
        else:
            state = check_initial_state(self, initial_state, self.state_specs, inputs.shape[0])
        hidden, h, c = self.lstm(self.layer_norm(inputs), initial_state=list(state), training=training)
        outputs = inputs + self.output_dropout(hidden, training=training)
        if self.return_state:
            return outputs, (h, c)
        return outputs

    def compute_output_shape(self, input_shape):
        if not self.return_state:
            return tuple(input_shape)
        state_shape = (input_shape[0], input_shape[-1])
        return tuple(input_shape), (state_shape, state_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"dropout": self.dropout, "return_state": self.return_state, "layer_norm_epsilon": self.layer_norm_epsilon}
        )
        return config

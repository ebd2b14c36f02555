"""`ResidualLSTM`: a Keras LSTM in the pre-LayerNorm residual wiring of the fast-weight layers."""

import math

import keras
import tensorflow as tf

from kerasrwm.layers.recurrent_layer import RecurrentLayer
from kerasrwm.validation import rate


@keras.saving.register_keras_serializable(package="kerasrwm")
class ResidualLSTM(RecurrentLayer):
    """`output = x + Dropout(LSTM(LayerNorm(x)))`, an LSTM with as many units as input features.

    The LSTM baseline of the SRWM papers feeds its input straight into a plain LSTM; this layer
    gives it the wiring of `kerasrwm.layers.DeltaNet` instead (pre-LayerNorm, residual, then a
    feed-forward block in `kerasrwm.layers.SequenceBlock`), so that the three sequence layers
    are compared inside one architecture. The LSTM itself is the standard Keras cell (gates
    i, f, g, o; no projection), initialised as PyTorch's: every weight and the bias uniform in
    `±1/sqrt(units)`, no forget-gate bias of 1. Its state is Keras's `(h, c)`, zeros at the
    start of an episode. The layer follows Keras's RNN conventions (see
    `kerasrwm.layers.RecurrentLayer`); the mask goes to the Keras LSTM, which keeps its state at
    masked steps.

    Args:
        dropout: dropout rate on the LSTM output before the residual sum.
        return_sequences: return every step's output (default) or the last unmasked step's.
        return_state: also return the final state: `(outputs, h, c)`.
        go_backwards, stateful, zero_output_for_mask: as in `kerasrwm.layers.RecurrentLayer`.
        layer_norm_epsilon: LayerNorm epsilon (1e-5 as in the reference).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, units]`.
        initial_state: optional flat list `[h, c]`, each `[batch, units]`; defaults to zeros.
        mask: optional `[batch, length]` booleans; a masked step leaves the state unchanged.
        training: enables dropout.

    Returns:
        `[batch, length, units]` (`[batch, units]` without `return_sequences`), followed by
        `h, c` with `return_state=True`.
    """

    def __init__(
        self,
        dropout=0.0,
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        super().__init__(
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.dropout = rate("dropout", dropout)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="layer_norm"
        )
        self.lstm = None
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)

    @property
    def units(self):
        """The input width, known once the layer is built (None before)."""
        return None if self.lstm is None else self.lstm.units

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
        super().build(input_shape)

    def get_initial_state(self, batch_size):
        """Zero `[h, c]` for `batch_size` episodes."""
        return [tf.zeros([batch_size, self.units], self.compute_dtype) for _ in range(2)]

    def read_sequence(self, inputs, state, mask, training):
        hidden, h, c = self.lstm(self.layer_norm(inputs), initial_state=list(state), mask=mask, training=training)
        return inputs + self.output_dropout(hidden, training=training), [h, c]

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "layer_norm_epsilon": self.layer_norm_epsilon})
        return config

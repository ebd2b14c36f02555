"""`SequenceBlock`: any stateful sequence layer followed by the feed-forward block."""

import keras
import tensorflow as tf

from kerasrwm.layers.feed_forward import FeedForward
from kerasrwm.layers.recurrent_layer import RecurrentLayer


class _FeedForwardBlock(RecurrentLayer):
    """The wiring of `SequenceBlock` and `kerasrwm.SRWMBlock`: `FeedForward(sequence_layer(h))`, state passed through.

    The block follows Keras's RNN conventions itself (`kerasrwm.layers.RecurrentLayer`: mask, direction,
    returned outputs, carried state); its sequence layer reads forwards, returns every step and its state, and
    carries nothing between calls. A subclass passes that layer and also keeps it under a public attribute:
    `.keras` files store the layer's weights under that attribute's name (`sequence_layer`, `srwm`), which the
    private `_sequence_layer` does not change.

    Args:
        sequence_layer: a `RecurrentLayer` with `return_state=True`, `return_sequences=True`,
            `go_backwards=False` and `stateful=False`.
        ff_dim, dropout, layer_norm_epsilon: of the feed-forward block, as in `SequenceBlock`.
        **kwargs: `RecurrentLayer` and base `keras.layers.Layer` arguments.
    """

    def __init__(self, sequence_layer, ff_dim, dropout, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self._sequence_layer = sequence_layer
        self.feed_forward = FeedForward(
            ff_dim, dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="feed_forward"
        )
        self.ff_dim = self.feed_forward.ff_dim
        self.dropout = self.feed_forward.dropout
        self.layer_norm_epsilon = self.feed_forward.layer_norm_epsilon

    @property
    def state_specs(self):
        return self._sequence_layer.state_specs

    def build(self, input_shape):
        if not self._sequence_layer.built:  # a deserialized sequence layer arrives built
            self._sequence_layer.build((None, *input_shape[1:]))
        self.feed_forward.build(input_shape)
        super().build(input_shape)

    def get_initial_state(self, batch_size):
        return self._sequence_layer.get_initial_state(batch_size)

    def read_sequence(self, inputs, state, mask, training):
        hidden, *state = self._sequence_layer(inputs, initial_state=state, mask=mask, training=training)
        # A sequence layer given with its own dtype policy computes in it; the block returns its own dtype.
        return self.feed_forward(hidden, training=training), [tf.cast(tensor, self.compute_dtype) for tensor in state]

    def get_config(self):
        config = super().get_config()
        config.update({"ff_dim": self.ff_dim, "dropout": self.dropout, "layer_norm_epsilon": self.layer_norm_epsilon})
        return config


@keras.saving.register_keras_serializable(package="kerasrwm")
class SequenceBlock(_FeedForwardBlock):
    """One layer of a few-shot sequence model: `FeedForward(sequence_layer(h))`, state passed through.

    The wiring of `kerasrwm.SRWMBlock` for the baselines: `sequence_layer` is a
    `kerasrwm.layers.RecurrentLayer` that returns its state, such as
    `kerasrwm.layers.DeltaNet(..., return_state=True)` or
    `kerasrwm.layers.ResidualLSTM(return_state=True)`. The block follows Keras's RNN conventions
    (masks, `return_sequences`, `go_backwards` and so `keras.layers.Bidirectional`, `stateful`, the
    state as a flat list): they are the block's arguments, not the sequence layer's.

    Args:
        sequence_layer: the sequence layer, constructed with `return_state=True` and otherwise
            the defaults `return_sequences=True`, `go_backwards=False`, `stateful=False`.
        ff_dim: hidden width of the feed-forward block.
        dropout: rate of both feed-forward dropouts.
        return_sequences: return every step's output (default) or the last unmasked step's.
        return_state: also return the sequence layer's final state: `(outputs, *state)`.
        go_backwards, stateful, zero_output_for_mask: as in `kerasrwm.layers.RecurrentLayer`.
        layer_norm_epsilon: LayerNorm epsilon of the feed-forward block.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, features]`.
        initial_state: optional flat state list of `sequence_layer`.
        mask: optional `[batch, length]` booleans; a masked step leaves the state unchanged.
        training: enables dropout.

    Returns:
        `[batch, length, features]` (`[batch, features]` without `return_sequences`), followed by
        the state tensors with `return_state=True`.
    """

    def __init__(
        self,
        sequence_layer,
        ff_dim,
        dropout=0.0,
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        layer_norm_epsilon=1e-5,
        **kwargs,
    ):
        if isinstance(sequence_layer, dict):
            sequence_layer = keras.saving.deserialize_keras_object(sequence_layer)
        required = {"return_state": True, "return_sequences": True, "go_backwards": False, "stateful": False}
        if not isinstance(sequence_layer, RecurrentLayer) or any(
            getattr(sequence_layer, name) != value for name, value in required.items()
        ):
            raise ValueError(
                "`sequence_layer` must be a kerasrwm RecurrentLayer constructed with return_state=True, "
                "return_sequences=True, go_backwards=False and stateful=False (give the others to the block); "
                f"received: {sequence_layer!r}"
                + (
                    f" with {', '.join(f'{name}={getattr(sequence_layer, name)}' for name in required)}."
                    if isinstance(sequence_layer, RecurrentLayer)
                    else "."
                )
            )
        super().__init__(
            sequence_layer,
            ff_dim,
            dropout,
            layer_norm_epsilon,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            zero_output_for_mask=zero_output_for_mask,
            **kwargs,
        )
        self.sequence_layer = sequence_layer

    def get_config(self):
        config = super().get_config()
        config["sequence_layer"] = keras.saving.serialize_keras_object(self.sequence_layer)
        return config

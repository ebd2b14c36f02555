"""`SequenceBlock`: any stateful sequence layer followed by the feed-forward block."""

import keras

from kerasrwm.layers.feed_forward import FeedForward


class _FeedForwardBlock(keras.layers.Layer):
    """The wiring of `SequenceBlock` and `kerasrwm.SRWMBlock`: `FeedForward(sequence_layer(h))`, state passed through.

    A subclass passes its sequence layer, constructed with `return_state=True`, and also keeps it under a
    public attribute: `.keras` files store the layer's weights under that attribute's name (`sequence_layer`,
    `srwm`), which the private `_sequence_layer` does not change.

    Args:
        sequence_layer: a layer with Keras-RNN state conventions that returns `(outputs, state)`.
        ff_dim, dropout, return_state, layer_norm_epsilon, **kwargs: as in `SequenceBlock`.
    """

    def __init__(self, sequence_layer, ff_dim, dropout, return_state, layer_norm_epsilon, **kwargs):
        super().__init__(**kwargs)
        self._sequence_layer = sequence_layer
        self.feed_forward = FeedForward(
            ff_dim, dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name="feed_forward"
        )
        self.ff_dim = self.feed_forward.ff_dim
        self.dropout = self.feed_forward.dropout
        self.return_state = bool(return_state)
        self.layer_norm_epsilon = self.feed_forward.layer_norm_epsilon

    def build(self, input_shape):
        if not self._sequence_layer.built:  # a deserialized sequence layer arrives built
            self._sequence_layer.build(input_shape)
        self.feed_forward.build(input_shape)

    def get_initial_state(self, batch_size):
        return self._sequence_layer.get_initial_state(batch_size)

    def call(self, inputs, initial_state=None, training=None):
        hidden, state = self._sequence_layer(inputs, initial_state=initial_state, training=training)
        outputs = self.feed_forward(hidden, training=training)
        if self.return_state:
            return outputs, state
        return outputs

    def compute_output_shape(self, input_shape):
        output_shape, state_shape = self._sequence_layer.compute_output_shape(input_shape)
        return (output_shape, state_shape) if self.return_state else output_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "ff_dim": self.ff_dim,
                "dropout": self.dropout,
                "return_state": self.return_state,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kerasrwm")
class SequenceBlock(_FeedForwardBlock):
    """One layer of a few-shot sequence model: `FeedForward(sequence_layer(h))`, state passed through.

    The wiring of `kerasrwm.SRWMBlock` for the baselines: `sequence_layer` is a layer with
    Keras-RNN state conventions that returns `(outputs, state)`, such as
    `kerasrwm.layers.DeltaNet(..., return_state=True)` or
    `kerasrwm.layers.ResidualLSTM(return_state=True)`.

    Args:
        sequence_layer: the stateful layer; it must be constructed with `return_state=True`.
        ff_dim: hidden width of the feed-forward block.
        dropout: rate of both feed-forward dropouts.
        return_state: also return the sequence layer's final state.
        layer_norm_epsilon: LayerNorm epsilon of the feed-forward block.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, features]`.
        initial_state: optional state of `sequence_layer`.
        training: enables dropout.

    Returns:
        `[batch, length, features]`, or `(outputs, state)` with `return_state=True`.
    """

    def __init__(self, sequence_layer, ff_dim, dropout=0.0, return_state=False, layer_norm_epsilon=1e-5, **kwargs):
        if isinstance(sequence_layer, dict):
            sequence_layer = keras.saving.deserialize_keras_object(sequence_layer)
        if not getattr(sequence_layer, "return_state", False):
            raise ValueError(
                f"`sequence_layer` must be a layer constructed with return_state=True; received: {sequence_layer!r}."
            )
        super().__init__(sequence_layer, ff_dim, dropout, return_state, layer_norm_epsilon, **kwargs)
        self.sequence_layer = sequence_layer

    def get_config(self):
        config = super().get_config()
        config["sequence_layer"] = keras.saving.serialize_keras_object(self.sequence_layer)
        return config

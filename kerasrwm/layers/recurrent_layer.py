"""`RecurrentLayer`: the Keras RNN conventions shared by the package's sequence layers and blocks."""

import keras
import tensorflow as tf

from kerasrwm.layers.state import check_initial_state


class CarriedState:
    """What a `stateful=True` layer carries from one call to the next.

    Held outside the layer's tracked weights, as `keras.layers.RNN` holds its `states`: not saved
    with the model and not among `layer.weights`. `fresh` is True until a call has stored a state
    and again after `reset_states()`; a fresh layer starts from `get_initial_state` (for the SRWM
    its trainable initial weights, so gradients reach them).

    Args:
        shapes: the state tensors' shapes, batch first.
        dtype: the variables' dtype (the layer's variable dtype).
    """

    def __init__(self, shapes, dtype):
        with tf.init_scope():
            self.values = [tf.Variable(tf.zeros(shape, dtype), trainable=False) for shape in shapes]
            self.fresh = tf.Variable(True, trainable=False)


class RecurrentLayer(keras.layers.Layer):
    """Base of the package's sequence layers: Keras RNN conventions around one recurrence.

    A subclass implements `read_sequence(inputs, state, mask, training)`, the recurrence over a
    whole sequence in reading order, returning `(outputs [batch, length, features], final_state)`;
    there a step whose mask is False must leave the state exactly unchanged. It also provides
    `state_specs` (see `kerasrwm.layers.state.check_initial_state`) and `get_initial_state`, and
    keeps the feature width (`outputs` has the width of `inputs`). This class does the rest as
    `keras.layers.LSTM` does: the mask, the reading direction, which outputs are returned, the
    state as a flat list of tensors, and the state carried between calls.

    Args:
        return_sequences: return the output of every step (True) or of the last unmasked one.
        return_state: also return the final state, flat: `(outputs, *state)`.
        go_backwards: read the sequence from its end; the outputs are then in reading order
            (reversed), as in `keras.layers.LSTM`, and so is the output mask (Keras's RNNs pass the
            input's mask on unreversed).
        stateful: each call without `initial_state` starts from the state the previous call ended
            in (the batch size is fixed when the layer is built); after `reset_states()` it starts
            from `get_initial_state` again (zeros for Keras's RNNs; the SRWM's trainable initial
            weights).
        zero_output_for_mask: with `return_sequences`, the outputs of masked steps are zeros
            (`keras.layers.Bidirectional` sets it to `return_sequences`, as for Keras's RNNs).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[batch, length, features]`.
        initial_state: optional flat list of state tensors (`state_specs`); defaults to
            `get_initial_state`, or for a stateful layer to the state its previous call ended in.
        mask: optional `[batch, length]` booleans (from `keras.layers.Masking` or passed
            explicitly); a masked step leaves the state unchanged and its output is masked.
        training: enables dropout.

    Returns:
        `[batch, length, features]` (or `[batch, features]` without `return_sequences`), and
        after it the final state tensors with `return_state=True`.
    """

    def __init__(
        self,
        return_sequences=True,
        return_state=False,
        go_backwards=False,
        stateful=False,
        zero_output_for_mask=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self._carried = None

    def read_sequence(self, inputs, state, mask, training):
        """The recurrence in reading order: `(outputs [batch, length, features], final state list)`.

        `mask` is None or `[batch, length]` booleans; a False step must leave the state exactly unchanged.
        """
        raise NotImplementedError

    def build(self, input_shape):
        """Creates the carried state of a stateful layer; subclasses call it after building their weights."""
        if not self.stateful or self._carried is not None:
            return
        if input_shape[0] is None:
            raise ValueError(
                f"{self.name} was constructed with stateful=True, which needs a fixed batch size; received "
                f"inputs of shape {tuple(input_shape)}. Give it, e.g. `keras.Input(batch_shape=(batch, length, "
                "features))`."
            )
        shapes = [self._state_shape(spec, input_shape[0]) for spec in self.state_specs]
        self._carried = CarriedState(shapes, self.variable_dtype)

    @staticmethod
    def _state_shape(spec, batch_size):
        _, shape, _ = spec
        return (batch_size, *shape[1:])

    @property
    def states(self):
        """The carried state variables of a stateful layer, else None (as `keras.layers.RNN.states`)."""
        return None if self._carried is None else list(self._carried.values)

    def reset_states(self):
        """The next call of a stateful layer starts from `get_initial_state` (no effect otherwise, as in Keras)."""
        if self._carried is not None:
            self._carried.fresh.assign(True)

    def reset_state(self):
        self.reset_states()

    def call(self, inputs, initial_state=None, mask=None, training=None):
        if not inputs.dtype.is_floating:
            raise ValueError(f"`inputs` of {self.name} must have a floating dtype; received dtype {inputs.dtype.name}.")
        mask = self._checked_mask(mask, inputs)
        if self.go_backwards:
            inputs = tf.reverse(inputs, [1])
            mask = None if mask is None else tf.reverse(mask, [1])
        state = self._starting_state(inputs, initial_state)
        outputs, state = self.read_sequence(inputs, state, mask, training)
        state = list(state)
        if self._carried is not None:
            for variable, value in zip(self._carried.values, state, strict=True):
                variable.assign(tf.cast(value, variable.dtype))
            self._carried.fresh.assign(False)
        if not self.return_sequences:
            outputs = last_unmasked_step(outputs, mask)
        elif self.zero_output_for_mask and mask is not None:
            outputs = tf.where(mask[:, :, None], outputs, tf.zeros_like(outputs))
        return (outputs, *state) if self.return_state else outputs

    def _checked_mask(self, mask, inputs):
        if mask is None:
            return None
        mask = tf.convert_to_tensor(mask)
        if mask.shape.rank != 2 or not mask.shape[:2].is_compatible_with(inputs.shape[:2]):
            raise ValueError(
                f"`mask` of {self.name} must have shape [batch, length] = {inputs.shape[:2]}; received shape "
                f"{mask.shape}."
            )
        return tf.cast(mask, tf.bool)

    def _starting_state(self, inputs, initial_state):
        if initial_state is not None:
            return check_initial_state(self, initial_state, self.state_specs, inputs.shape[0])
        initial = self.get_initial_state(tf.shape(inputs)[0])
        if self._carried is None:
            return initial
        batch_size = self._carried.values[0].shape[0]
        if inputs.shape[0] is not None and inputs.shape[0] != batch_size:
            raise ValueError(
                f"{self.name} is stateful with a batch size of {batch_size}; received inputs of shape {inputs.shape}."
            )
        return [
            tf.where(self._carried.fresh, start, tf.cast(carried, start.dtype))
            for start, carried in zip(initial, self._carried.values, strict=True)
        ]

    def compute_output_shape(self, input_shape):
        output_shape = tuple(input_shape) if self.return_sequences else (input_shape[0], input_shape[-1])
        if not self.return_state:
            return output_shape
        return (output_shape, *(self._state_shape(spec, input_shape[0]) for spec in self.state_specs))

    def compute_mask(self, inputs, mask=None):
        output_mask = None
        if mask is not None and self.return_sequences:
            output_mask = keras.ops.flip(mask, axis=1) if self.go_backwards else mask
        if self.return_state:
            return [output_mask] + [None] * len(self.state_specs)
        return output_mask

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config


def last_unmasked_step(outputs, mask):
    """`[batch, features]`: each row's output at its last step whose mask is True (zeros if there is none).

    Args:
        outputs: `[batch, length, features]`.
        mask: `[batch, length]` booleans, or None (every step counts).
    """
    if mask is None:
        return outputs[:, -1]
    positions = tf.range(tf.shape(mask)[1])
    last = tf.reduce_max(tf.where(mask, positions[None, :], -1), axis=1)
    selected = tf.gather(outputs, tf.maximum(last, 0), axis=1, batch_dims=1)
    return tf.where((last >= 0)[:, None], selected, tf.zeros_like(selected))

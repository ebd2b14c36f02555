"""The state contract shared by the stateful sequence layers: two calls with state == one call."""

import numpy as np
import tensorflow as tf


def assert_two_parts_equal_one_pass(layer, inputs, split=5):
    """Outputs, final state and weight gradients agree whether `inputs` is read whole or in two parts.

    Args:
        layer: a built layer with `return_state=True`.
        inputs: `[batch, length, features]` float32 tensor, `length > split`.
        split: the length of the first part.
    """

    def whole():
        return layer(inputs)

    def in_two_parts():
        first, *state = layer(inputs[:, :split])
        second, *state = layer(inputs[:, split:], initial_state=state)
        return (tf.concat([first, second], axis=1), *state)

    results = []
    for run in (whole, in_two_parts):
        with tf.GradientTape() as tape:
            outputs, *state = run()
            loss = tf.reduce_sum(outputs**2) + tf.add_n([tf.reduce_sum(tf.sin(s)) for s in state])
        results.append((outputs, state, tape.gradient(loss, layer.trainable_weights)))
    for a, b in zip(tf.nest.flatten(results[0]), tf.nest.flatten(results[1]), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)

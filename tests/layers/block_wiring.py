"""The wiring shared by `SequenceBlock` and `SRWMBlock`: the feed-forward block over the sequence layer."""

import numpy as np
import tensorflow as tf


def assert_feed_forward_of_sequence_layer(block, sequence_layer):
    """`block` returns `feed_forward(sequence_layer(h))` with the sequence layer's state, and continues from a state.

    Args:
        block: a block constructed with `return_state=True` on an input width of 8.
        sequence_layer: the block's sequence layer.
    """
    inputs = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 8)).astype(np.float32))
    outputs, *state = block(inputs)
    hidden, *expected_state = sequence_layer(inputs)
    np.testing.assert_allclose(outputs.numpy(), block.feed_forward(hidden).numpy(), rtol=1e-6)
    for a, b in zip(state, expected_state, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    continued, *_ = block(inputs[:, 3:], initial_state=sequence_layer(inputs[:, :3])[1:])
    np.testing.assert_allclose(continued.numpy(), outputs.numpy()[:, 3:], rtol=1e-4, atol=1e-5)

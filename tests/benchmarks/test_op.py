"""`kerasrwm bench op`: the timed forward+backward computes the loss it documents."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.benchmarks.op import forward_backward_step
from kerasrwm.benchmarks.op import random_problem
from kerasrwm.ops import srwm


def _reference_loss_and_gradients(x, weights):
    """Sum of squares of y plus the sums of the final weights, written out plainly."""
    with tf.GradientTape() as tape:
        tape.watch([x, weights])
        y, finals = srwm(x, *weights, implementation="loop")
        loss = tf.reduce_sum(y * y) + tf.add_n([tf.reduce_sum(w) for w in finals])
    return loss, tape.gradient(loss, [x, weights])


@pytest.mark.parametrize("steps", [1, 3])
def test_timed_step_matches_the_documented_loss(steps):
    x, weights = random_problem(batch=2, heads=2, head_dim=4, length=5, dtype=np.float64)
    loss, (grad_x, grad_weights) = forward_backward_step("loop", jit_compile=False, steps=steps)(x, weights)
    moved = weights
    for _ in range(steps - 1):  # each pass runs on the weights moved by the previous pass's gradient
        _, (_, previous) = _reference_loss_and_gradients(x, moved)
        moved = [w - 1e-3 * g for w, g in zip(weights, previous)]
    expected_loss, (expected_x, expected_weights) = _reference_loss_and_gradients(x, moved)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-12)
    for gradient, expected in zip([grad_x, *grad_weights], [expected_x, *expected_weights]):
        np.testing.assert_allclose(gradient, expected, rtol=1e-10, atol=1e-12)

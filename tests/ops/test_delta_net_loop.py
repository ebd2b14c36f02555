"""`delta_net_loop` against the NumPy delta rule: outputs, final state, gradients, XLA."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops.delta_net_loop import delta_net_loop
from reference import delta_net_numpy
from reference.finite_differences import numerical_gradient

NAMES = ("queries", "keys", "values", "rates", "fast_weights")


def random_delta_problem(batch, length, heads, head_dim, seed):
    """Feature-mapped q, k (positive, summing to one), values, rates in (0, 1), a random W_0."""
    rng = np.random.default_rng(seed)
    shape = (batch, length, heads, head_dim)
    return [
        delta_net_numpy.feature_map(rng.normal(size=shape)),
        delta_net_numpy.feature_map(rng.normal(size=shape)),
        rng.normal(size=shape),
        rng.uniform(0.05, 0.95, size=(batch, length, heads, 1)),
        rng.normal(scale=0.5, size=(batch, heads, head_dim, head_dim)),
    ]


@pytest.mark.parametrize("length", [1, 2, 37])
def test_outputs_and_final_state_match_numpy(length):
    arrays = random_delta_problem(2, length, 3, 8, seed=length)
    expected_outputs, expected_final = delta_net_numpy.delta_rule(*arrays)
    outputs, final = delta_net_loop(*[a.astype(np.float32) for a in arrays])
    np.testing.assert_allclose(outputs.numpy(), expected_outputs, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(final.numpy(), expected_final, rtol=1e-4, atol=2e-5)


def test_output_reads_the_matrix_after_its_own_write():
    """One step from W_0 = 0 with beta = 1: the key's row now holds v, so o = (q . k) v."""
    q = np.array([[[[0.25, 0.75]]]])
    k = np.array([[[[1.0, 0.0]]]])
    v = np.array([[[[3.0, -2.0]]]])
    outputs, final = delta_net_loop(q, k, v, np.ones((1, 1, 1, 1)), np.zeros((1, 1, 2, 2)))
    np.testing.assert_allclose(outputs.numpy()[0, 0, 0], [0.75, -0.5])
    np.testing.assert_allclose(final.numpy()[0, 0], [[3.0, -2.0], [0.0, 0.0]])


def test_gradients_match_finite_differences():
    arrays = random_delta_problem(2, 6, 2, 3, seed=11)
    rng = np.random.default_rng(3)
    output_coefficients = rng.normal(size=arrays[2].shape)
    final_coefficients = rng.normal(size=arrays[4].shape)

    def reference_loss(values):
        outputs, final = delta_net_numpy.delta_rule(*values)
        return float(np.sum(outputs * output_coefficients) + np.sum(final * final_coefficients))

    expected = numerical_gradient(reference_loss, arrays)
    variables = [tf.constant(a) for a in arrays]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        outputs, final = delta_net_loop(*variables)
        loss = tf.reduce_sum(outputs * output_coefficients) + tf.reduce_sum(final * final_coefficients)
    for name, gradient, reference in zip(NAMES, tape.gradient(loss, variables), expected):
        np.testing.assert_allclose(gradient.numpy(), reference, rtol=1e-6, atol=1e-8, err_msg=name)


def test_xla_matches_graph_mode_for_outputs_and_gradients():
    arrays = [tf.constant(a.astype(np.float32)) for a in random_delta_problem(2, 15, 2, 8, seed=4)]

    def forward_backward(*variables):
        with tf.GradientTape() as tape:
            tape.watch(variables)
            outputs, final = delta_net_loop(*variables)
            loss = tf.reduce_sum(tf.sin(outputs)) + tf.reduce_sum(final**2)
        return outputs, final, tape.gradient(loss, variables)

    graph = tf.function(forward_backward)(*arrays)
    compiled = tf.function(forward_backward, jit_compile=True)(*arrays)
    for a, b in zip(tf.nest.flatten(graph), tf.nest.flatten(compiled)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)

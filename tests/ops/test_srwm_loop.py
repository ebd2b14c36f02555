"""The loop implementation of `kerasrwm.ops.srwm` against the independent NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops import srwm
from reference import srwm_numpy
from tests.ops.problems import loss_coefficients
from tests.ops.problems import random_problem


@pytest.mark.parametrize("head_dim", [4, 8, 16, 32])
@pytest.mark.parametrize("length", [1, 2, 76, 300])
def test_loop_matches_numpy_reference(head_dim, length):
    batch, heads = (2, 3) if length < 300 else (1, 2)
    x, weights = random_problem(batch, length, heads, head_dim, seed=head_dim + length)
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
    y, finals = srwm(x.astype(np.float32), *[w.astype(np.float32) for w in weights])
    np.testing.assert_allclose(y.numpy(), expected_y, rtol=1e-4, atol=2e-5)
    for final, expected in zip(finals, expected_finals):
        np.testing.assert_allclose(final.numpy(), expected, rtol=1e-4, atol=2e-5)


def test_input_softmax_matches_reference():
    x, weights = random_problem(2, 9, 2, 8, seed=3)
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights, input_softmax=True)
    y, finals = srwm(x, *weights, input_softmax=True)
    np.testing.assert_allclose(y.numpy(), expected_y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(finals[3].numpy(), expected_finals[3], rtol=1e-10, atol=1e-12)
    unsoftmaxed, _ = srwm(x, *weights)
    assert not np.allclose(unsoftmaxed.numpy(), y.numpy())


def test_xla_matches_graph_mode_for_outputs_and_gradients():
    x, weights = random_problem(2, 20, 3, 8, seed=4, dtype=np.float32)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)

    def forward_backward(*arrays):
        with tf.GradientTape() as tape:
            tape.watch(arrays)
            y, finals = srwm(*arrays)
            loss = tf.reduce_sum(y * y_coefficients) + tf.add_n(
                [tf.reduce_sum(f * c) for f, c in zip(finals, final_coefficients)]
            )
        return y, finals, tape.gradient(loss, arrays)

    inputs = [tf.constant(a) for a in [x, *weights]]
    graph = tf.function(forward_backward, jit_compile=False)(*inputs)
    xla_function = tf.function(forward_backward, jit_compile=True)
    xla = xla_function(*inputs)
    for graph_value, xla_value in zip(tf.nest.flatten(graph), tf.nest.flatten(xla)):
        np.testing.assert_allclose(xla_value.numpy(), graph_value.numpy(), rtol=2e-4, atol=2e-5)


def test_float64_is_preserved():
    x, weights = random_problem(1, 3, 1, 4)
    y, finals = srwm(x, *weights)
    assert y.dtype == tf.float64 and all(f.dtype == tf.float64 for f in finals)


class TestBadInput:
    def setup_method(self):
        self.x, self.weights = random_problem(2, 5, 3, 8, dtype=np.float32)

    def call(self, x=None, weights=None, **kwargs):
        weights = list(self.weights if weights is None else weights)
        return srwm(self.x if x is None else x, *weights, **kwargs)

    def test_wrong_rank_of_x(self):
        with pytest.raises(ValueError, match=r"`x` must have rank 4"):
            self.call(x=self.x[0])

    def test_head_dim_too_small(self):
        x, weights = random_problem(1, 3, 2, 3, dtype=np.float32)
        with pytest.raises(ValueError, match=r"head_dim must be at least 4; received x with head_dim 3"):
            srwm(x, *weights)

    def test_weight_shape_mismatch_names_the_weight(self):
        weights = list(self.weights)
        weights[1] = weights[1][:, :2]
        with pytest.raises(ValueError, match=r"`w_q` must have shape"):
            self.call(weights=weights)

    def test_w_b_needs_four_columns(self):
        weights = list(self.weights)
        weights[3] = np.zeros((2, 3, 8, 3), np.float32)
        with pytest.raises(ValueError, match=r"`w_b` must have shape .*received shape \(2, 3, 8, 3\)"):
            self.call(weights=weights)

    def test_integer_dtype(self):
        with pytest.raises(ValueError, match=r"`x` must have a floating dtype; received dtype int32"):
            self.call(x=self.x.astype(np.int32))

    def test_mixed_dtypes(self):
        with pytest.raises(ValueError, match=r"`w_y` must have the dtype of `x` \(float32\); received float64"):
            self.call(weights=[self.weights[0].astype(np.float64), *self.weights[1:]])

    def test_empty_sequence(self):
        with pytest.raises(ValueError, match=r"at least one time step"):
            self.call(x=self.x[:, :0])

    def test_unknown_implementation(self):
        with pytest.raises(ValueError, match=r"`implementation` must be one of .*received implementation='cuda'"):
            self.call(implementation="cuda")

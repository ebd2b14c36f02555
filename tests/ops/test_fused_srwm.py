"""The fused SRWM op against the float64 NumPy reference and the loop implementation."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops import fused_srwm
from kerasrwm.ops import srwm
from reference import srwm_numpy
from tests.ops.problems import loss_and_gradients
from tests.ops.problems import loss_coefficients
from tests.ops.problems import random_problem

WEIGHT_NAMES = ("w_y", "w_q", "w_k", "w_b")


pytestmark = pytest.mark.requires_fused


def sizes_for(length, head_dim):
    """(batch, heads): more than one pack of sequences at short lengths, small at long ones."""
    if length >= 1000:
        return 1, 2
    return (3, 7) if head_dim <= 16 else (2, 3)


def fused(*arrays, **kwargs):
    return srwm(*arrays, implementation="fused", **kwargs)


@tf.function
def loop_graph(*arrays):
    return srwm(*arrays, implementation="loop")


def assert_close(actual, expected, rtol, name):
    """Max error relative to the largest reference value (robust to entries near zero)."""
    scale = max(np.max(np.abs(expected)), 1e-12)
    error = np.max(np.abs(np.asarray(actual) - expected)) / scale
    assert error <= rtol, f"{name}: relative error {error:.3g} > {rtol:.3g}"


@pytest.mark.parametrize("head_dim", [4, 8, 16, 32, 64])
@pytest.mark.parametrize("length", [1, 2, 76, 1000])
def test_forward_and_gradients_match_numpy_and_loop(head_dim, length):
    batch, heads = sizes_for(length, head_dim)
    x, weights = random_problem(batch, length, heads, head_dim, seed=head_dim * 1000 + length)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights)

    y, finals, gradients = loss_and_gradients(fused, x, weights, y_coefficients, final_coefficients)
    assert_close(y, expected_y, 1e-10, "y")
    for name, final, expected in zip(WEIGHT_NAMES, finals, expected_finals):
        assert_close(final, expected, 1e-10, f"final {name}")

    _, _, loop_gradients = loss_and_gradients(loop_graph, x, weights, y_coefficients, final_coefficients)
    for name, gradient, expected in zip(("x", *WEIGHT_NAMES), gradients, loop_gradients):
        assert_close(gradient, expected, 1e-9, f"grad {name}")

    y32, finals32 = fused(x.astype(np.float32), *[w.astype(np.float32) for w in weights])
    assert y32.dtype == tf.float32
    assert_close(y32, expected_y, 1e-4, "float32 y")
    for name, final, expected in zip(WEIGHT_NAMES, finals32, expected_finals):
        assert_close(final, expected, 1e-4, f"float32 final {name}")


def test_output_only_loss_gives_same_gradients_as_loop():
    """The final weights unused: their upstream gradient is None and must count as zero."""
    x, weights = random_problem(2, 30, 3, 8, seed=8)
    gradients = {}
    for implementation in ("fused", "loop"):
        variables = [tf.constant(a) for a in [x, *weights]]
        with tf.GradientTape() as tape:
            tape.watch(variables)
            y, _ = srwm(*variables, implementation=implementation)
            loss = tf.reduce_sum(tf.sin(y))
        gradients[implementation] = tape.gradient(loss, variables)
    for fused_gradient, loop_gradient in zip(gradients["fused"], gradients["loop"]):
        np.testing.assert_allclose(fused_gradient.numpy(), loop_gradient.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("checkpoint_interval", [1, 7, 64, 10_000])
def test_any_checkpoint_interval_gives_exact_gradients(checkpoint_interval):
    """Lengths beyond, equal to and not divisible by the checkpoint interval."""
    x, weights = random_problem(1, 300, 3, 8, seed=17)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)

    def fused_with_interval(*arrays):
        return fused_srwm.srwm_fused(*arrays, checkpoint_interval=checkpoint_interval)

    _, _, gradients = loss_and_gradients(fused_with_interval, x, weights, y_coefficients, final_coefficients)
    _, _, expected = loss_and_gradients(loop_graph, x, weights, y_coefficients, final_coefficients)
    for name, gradient, reference in zip(("x", *WEIGHT_NAMES), gradients, expected):
        assert_close(gradient, reference, 1e-9, f"grad {name}")


def test_compute_gradient_error_float64():
    x, weights = random_problem(1, 6, 2, 4, seed=21)

    def scalar_outputs(*arrays):
        y, finals = fused(*arrays)
        return tf.concat([tf.reshape(y, [-1])] + [tf.reshape(f, [-1]) for f in finals], 0)

    theoretical, numerical = tf.test.compute_gradient(scalar_outputs, [tf.constant(a) for a in [x, *weights]])
    for name, analytic, numeric in zip(("x", *WEIGHT_NAMES), theoretical, numerical):
        # compute_gradient's central differences (step 1e-3) carry an O(1e-6) truncation error.
        assert np.max(np.abs(analytic - numeric)) < 1e-5 * np.max(np.abs(numeric)), name


@pytest.mark.parametrize("length", [76, 1000])
def test_float32_gradients_are_close_to_float64(length):
    x, weights = random_problem(2, length, 4, 16, seed=length, dtype=np.float64)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)
    _, _, expected = loss_and_gradients(fused, x, weights, y_coefficients, final_coefficients)
    _, _, gradients = loss_and_gradients(
        fused,
        x.astype(np.float32),
        [w.astype(np.float32) for w in weights],
        y_coefficients.astype(np.float32),
        [c.astype(np.float32) for c in final_coefficients],
    )
    for name, gradient, reference in zip(("x", *WEIGHT_NAMES), gradients, expected):
        assert_close(gradient, reference, 1e-4, f"float32 grad {name}")


def test_inside_tf_function_with_unknown_batch():
    x, weights = random_problem(3, 9, 2, 8, seed=3, dtype=np.float32)
    signature = [tf.TensorSpec([None, None, 2, 8], tf.float32)] + [
        tf.TensorSpec([None, 2, 8, size], tf.float32) for size in (8, 8, 8, 4)
    ]

    @tf.function(input_signature=signature)
    def run(*arrays):
        y, finals = fused(*arrays)
        assert y.shape.as_list() == [None, None, 2, 8]
        assert [f.shape.as_list() for f in finals] == [[None, 2, 8, s] for s in (8, 8, 8, 4)]
        return y

    expected_y, _ = srwm_numpy.srwm(x, *weights)
    np.testing.assert_allclose(run(x, *weights).numpy(), expected_y, rtol=1e-4, atol=1e-5)


class TestOpShapeErrors:
    """The op itself rejects bad shapes (without the Python validation in front of it)."""

    def forward(self, x, weights):
        return fused_srwm._LIBRARY.get().keras_rwm_srwm_forward(x, *weights, checkpoint_interval=8)

    def test_weight_shape_mismatch_in_eager(self):
        x, weights = random_problem(2, 5, 3, 8, dtype=np.float32)
        weights[3] = np.zeros((2, 3, 8, 3), np.float32)
        with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=r"w_b|Dimension"):
            self.forward(x, weights)

    def test_shape_function_rejects_mismatch_in_graph(self):
        x, weights = random_problem(2, 5, 3, 8, dtype=np.float32)
        weights[0] = np.zeros((2, 3, 8, 7), np.float32)
        with pytest.raises(ValueError, match=r"Dimension"):
            tf.function(lambda: self.forward(tf.constant(x), [tf.constant(w) for w in weights])).get_concrete_function()

    def test_kernel_names_the_weight(self):
        x, weights = random_problem(2, 5, 3, 8, dtype=np.float32)
        weights[1] = np.zeros((2, 3, 8, 7), np.float32)
        unknown = [tf.TensorSpec(None, tf.float32)] * 5

        @tf.function(input_signature=unknown)
        def run(*arrays):
            return self.forward(arrays[0], arrays[1:])

        with pytest.raises(tf.errors.InvalidArgumentError, match=r"`w_q` must have shape"):
            run(x, *weights)


def test_backward_refuses_a_trace_laid_out_for_the_gpu():
    """Trace and checkpoints are device-specific; a CPU backward given the GPU's shapes says so."""
    x, weights = random_problem(batch=2, heads=1, head_dim=4, length=5, seed=3)
    library = fused_srwm._LIBRARY.get()
    interval = fused_srwm.DEFAULT_CHECKPOINT_INTERVAL
    _, *finals, trace, checkpoints = library.keras_rwm_srwm_forward(x, *weights, checkpoint_interval=interval)
    packs, length, fields, lanes = trace.shape
    gpu_trace = tf.zeros([packs, lanes, length, fields], trace.dtype)
    with pytest.raises(tf.errors.InvalidArgumentError, match="same device type"):
        library.keras_rwm_srwm_backward(
            x,
            gpu_trace,
            checkpoints,
            tf.zeros_like(x),
            *[tf.zeros_like(w) for w in finals],
            checkpoint_interval=interval,
        )

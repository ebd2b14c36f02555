"""`kerasrwm.ops.srwm` in half precision: the fused op computes it in float32; the loop in the dtype itself."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm import ops
from kerasrwm.layers import SRWM
from reference import srwm_numpy
from tests.ops.problems import loss_and_gradients
from tests.ops.problems import loss_coefficients
from tests.ops.problems import random_problem

HALF_DTYPES = [tf.float16, tf.bfloat16]


@pytest.mark.requires_fused
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", tf.float16])
def test_auto_keeps_the_fused_op_for_half_precision(dtype):
    assert ops.resolve_implementation("auto", dtype) == "fused"
    assert ops.resolve_implementation("fused", dtype) == "fused"


@pytest.mark.parametrize("implementation", ["auto", "fused"])
def test_non_floating_dtype_is_refused_by_fused_and_left_to_the_loop_by_auto(implementation):
    if implementation == "auto":
        assert ops.resolve_implementation("auto", "int32") == "loop"
        return
    with pytest.raises(ValueError, match=r"implementation='fused' computes in .*; received dtype int32"):
        ops.resolve_implementation("fused", "int32")


def test_float16_loop_follows_the_reference():
    x, weights = random_problem(2, 5, 2, 4, seed=3)
    y, finals = ops.srwm(*(tf.constant(a, tf.float16) for a in (x, *weights)), implementation="loop")
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), expected_y, rtol=2e-2, atol=2e-2)
    for final, expected in zip(finals, expected_finals, strict=True):
        np.testing.assert_allclose(final.numpy().astype(np.float64), expected, rtol=2e-2, atol=2e-2)


def _rounded(arrays, dtype):
    """`arrays` as `dtype` tensors, and the float64 values they hold."""
    tensors = [tf.constant(a, tf.float32) for a in arrays]
    tensors = [tf.cast(t, dtype) for t in tensors]
    return tensors, [tf.cast(t, tf.float64).numpy() for t in tensors]


@pytest.mark.requires_fused
@pytest.mark.parametrize("dtype", HALF_DTYPES)
def test_fused_half_precision_outputs_and_gradients(dtype):
    """Outputs in the input dtype, close to the float64 reference of the rounded inputs; gradients
    exactly the float32 op's gradients rounded to the dtype (the casts), and close to the reference."""
    x, weights = random_problem(2, 9, 3, 8, seed=5)
    (x_half, *weights_half), (x_held, *weights_held) = _rounded([x, *weights], dtype)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)
    (y_c, *final_c), _ = _rounded([y_coefficients, *final_coefficients], dtype)

    def fused(*arrays):
        return ops.srwm(*arrays, implementation="fused")

    def gradients_of(arrays, coefficients_dtype):
        cast = [tf.cast(c, coefficients_dtype) for c in (y_c, *final_c)]
        variables = [tf.identity(a) for a in arrays]
        with tf.GradientTape() as tape:
            tape.watch(variables)
            y, finals = fused(*variables)
            loss = tf.reduce_sum(tf.cast(y * cast[0], tf.float32)) + tf.add_n(
                [tf.reduce_sum(tf.cast(f * c, tf.float32)) for f, c in zip(finals, cast[1:])]
            )
        return y, finals, tape.gradient(loss, variables)

    y, finals, gradients = gradients_of([x_half, *weights_half], dtype)
    assert y.dtype == dtype and all(f.dtype == dtype for f in finals)
    assert all(g.dtype == dtype for g in gradients)
    tolerance = 2e-2 if dtype == tf.float16 else 6e-2
    expected_y, expected_finals = srwm_numpy.srwm(x_held, *weights_held)
    for actual, expected in zip([y, *finals], [expected_y, *expected_finals]):
        np.testing.assert_allclose(tf.cast(actual, tf.float64).numpy(), expected, rtol=tolerance, atol=tolerance)

    _, _, gradients32 = gradients_of([tf.cast(a, tf.float32) for a in (x_half, *weights_half)], tf.float32)
    for gradient, gradient32 in zip(gradients, gradients32):
        np.testing.assert_array_equal(gradient.numpy(), tf.cast(gradient32, dtype).numpy())

    _, _, reference = loss_and_gradients(
        fused_float64,
        x_held,
        weights_held,
        tf.cast(y_c, tf.float64).numpy(),
        [tf.cast(c, tf.float64).numpy() for c in final_c],
    )
    for gradient, expected in zip(gradients, reference):
        scale = np.max(np.abs(expected))
        assert np.max(np.abs(tf.cast(gradient, tf.float64).numpy() - expected)) <= 2 * tolerance * scale


def fused_float64(*arrays):
    """The fused op in float64, whose gradients test_fused_srwm.py checks against finite differences."""
    return ops.srwm(*arrays, implementation="fused")


@pytest.mark.requires_fused
def test_srwm_layer_under_mixed_float16_keeps_the_fused_op():
    layer = SRWM(num_heads=2, head_dim=4, dtype="mixed_float16")
    assert layer.resolved_implementation == "fused"
    outputs = layer(keras.random.normal((2, 3, 8), seed=0))
    assert outputs.dtype == "float16" and bool(tf.reduce_all(tf.math.is_finite(outputs)))

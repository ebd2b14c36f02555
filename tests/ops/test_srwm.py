"""`kerasrwm.ops.srwm` in float16: "auto" runs the loop, "fused" refuses, results follow the reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm import ops
from kerasrwm.layers import SRWM
from reference import srwm_numpy
from tests.ops.problems import random_problem


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", tf.float16])
def test_auto_resolves_to_the_loop_for_half_precision(dtype):
    assert ops.resolve_implementation("auto", dtype) == "loop"


def test_fused_refuses_half_precision_naming_the_dtype():
    with pytest.raises(
        ValueError, match=r"implementation='fused' computes in \('float32', 'float64'\); received dtype float16"
    ):
        ops.resolve_implementation("fused", "float16")


def test_float16_auto_follows_the_reference():
    x, weights = random_problem(2, 5, 2, 4, seed=3)
    y, finals = ops.srwm(*(tf.constant(a, tf.float16) for a in (x, *weights)), implementation="auto")
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
    assert y.dtype == tf.float16
    np.testing.assert_allclose(y.numpy().astype(np.float64), expected_y, rtol=2e-2, atol=2e-2)
    for final, expected in zip(finals, expected_finals, strict=True):
        np.testing.assert_allclose(final.numpy().astype(np.float64), expected, rtol=2e-2, atol=2e-2)


def test_srwm_layer_under_mixed_float16_runs_the_loop():
    layer = SRWM(num_heads=2, head_dim=4, dtype="mixed_float16")
    assert layer.resolved_implementation == "loop"
    outputs = layer(keras.random.normal((2, 3, 8), seed=0))
    assert outputs.dtype == "float16" and bool(tf.reduce_all(tf.math.is_finite(outputs)))

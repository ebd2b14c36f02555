"""Gradients of both implementations against central finite differences of the NumPy reference."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops import srwm
from reference import srwm_numpy
from reference.finite_differences import numerical_gradient
from tests.ops.problems import loss_and_gradients
from tests.ops.problems import loss_coefficients
from tests.ops.problems import random_problem

NAMES = ("x", "w_y", "w_q", "w_k", "w_b")


def reference_loss_function(y_coefficients, final_coefficients):
    def reference_loss(arrays):
        y, finals = srwm_numpy.srwm(*arrays)
        y_term = 0.0 if y_coefficients is None else np.sum(y * y_coefficients)
        return float(y_term + sum(np.sum(f * c) for f, c in zip(finals, final_coefficients)))

    return reference_loss


@pytest.mark.parametrize("implementation", ["loop", pytest.param("fused", marks=pytest.mark.requires_fused)])
def test_gradients_through_outputs_and_final_weights(implementation):
    x, weights = random_problem(2, 7, 3, 4, seed=11)
    y_coefficients, final_coefficients = loss_coefficients(x, weights)
    expected = numerical_gradient(reference_loss_function(y_coefficients, final_coefficients), [x, *weights])
    function = lambda *arrays: srwm(*arrays, implementation=implementation)  # noqa: E731
    _, _, gradients = loss_and_gradients(function, x, weights, y_coefficients, final_coefficients)
    for name, gradient, reference in zip(NAMES, gradients, expected):
        np.testing.assert_allclose(gradient, reference, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("implementation", ["loop", pytest.param("fused", marks=pytest.mark.requires_fused)])
def test_gradient_of_final_weights_flows_exactly_once(implementation):
    """A loss on the final weights only (the authors' op returns U + dL/dW0 here)."""
    x, weights = random_problem(1, 5, 2, 4, seed=5)
    _, final_coefficients = loss_coefficients(x, weights, seed=2)
    expected = numerical_gradient(reference_loss_function(None, final_coefficients), [x, *weights])
    variables = [tf.constant(a) for a in [x, *weights]]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        _, finals = srwm(*variables, implementation=implementation)
        loss = tf.add_n([tf.reduce_sum(f * c) for f, c in zip(finals, final_coefficients)])
    for name, gradient, reference in zip(NAMES, tape.gradient(loss, variables), expected):
        np.testing.assert_allclose(gradient.numpy(), reference, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("implementation", ["loop", pytest.param("fused", marks=pytest.mark.requires_fused)])
def test_reference_hand_off_adds_the_returned_state_gradient_to_the_initial_state(implementation):
    """Bug B2 reproduced: dL/dW_0 (finite differences of the NumPy reference) + U, U = dL/dW_final."""
    x, weights = random_problem(2, 6, 2, 4, seed=13)
    y_coefficients, final_coefficients = loss_coefficients(x, weights, seed=3)
    exact = numerical_gradient(reference_loss_function(y_coefficients, final_coefficients), [x, *weights])
    expected = [exact[0]] + [gradient + upstream for gradient, upstream in zip(exact[1:], final_coefficients)]
    function = lambda *arrays: srwm(*arrays, implementation=implementation, hand_off_gradient="reference")  # noqa: E731
    y, finals, gradients = loss_and_gradients(function, x, weights, y_coefficients, final_coefficients)
    exact_y, exact_finals = srwm(x, *weights, implementation=implementation)
    np.testing.assert_array_equal(y.numpy(), exact_y.numpy())
    for final, exact_final in zip(finals, exact_finals):
        np.testing.assert_array_equal(final.numpy(), exact_final.numpy())
    for name, gradient, reference in zip(NAMES, gradients, expected):
        np.testing.assert_allclose(gradient, reference, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("implementation", ["loop", pytest.param("fused", marks=pytest.mark.requires_fused)])
def test_reference_hand_off_equals_exact_when_the_returned_state_is_unused(implementation):
    x, weights = random_problem(2, 5, 2, 4, seed=17)
    y_coefficients, _ = loss_coefficients(x, weights, seed=4)
    variables = [tf.constant(a) for a in [x, *weights]]
    gradients = {}
    for mode in ("exact", "reference"):
        with tf.GradientTape() as tape:
            tape.watch(variables)
            y, _ = srwm(*variables, implementation=implementation, hand_off_gradient=mode)
            loss = tf.reduce_sum(y * y_coefficients)
        gradients[mode] = tape.gradient(loss, variables)
    for name, reference, exact in zip(NAMES, gradients["reference"], gradients["exact"]):
        np.testing.assert_array_equal(reference.numpy(), exact.numpy(), err_msg=name)


def test_unknown_hand_off_gradient_is_refused_by_name():
    x, weights = random_problem(1, 2, 1, 4)
    with pytest.raises(ValueError, match="hand_off_gradient.*'buggy'"):
        srwm(x, *weights, hand_off_gradient="buggy")

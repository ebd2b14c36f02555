"""`kerasrwm.layers.ResidualLSTM`: against a NumPy LSTM, gradients, state contract, serialization."""

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.layers import ResidualLSTM
from reference import lstm_numpy
from reference.finite_differences import numerical_gradient
from reference.normalization import layer_norm
from tests.layer_testing import residual_lstm_parameters
from tests.layer_testing import run_layer_test
from tests.layer_testing import stacked_pair_round_trip
from tests.layers.state_continuation import assert_two_parts_equal_one_pass


def numpy_residual_lstm(layer, inputs, h, c, kernel=None):
    """`x + LSTM(LayerNorm(x))` from the layer's weights (`kernel` overrides the input kernel)."""
    norm, cell = layer.layer_norm, layer.lstm.cell
    normalised = layer_norm(inputs, norm.gamma.numpy(), norm.beta.numpy(), norm.epsilon)
    kernel = cell.kernel.numpy() if kernel is None else kernel
    hidden, state = lstm_numpy.lstm(normalised, kernel, cell.recurrent_kernel.numpy(), cell.bias.numpy(), h, c)
    return inputs + hidden, state


def test_outputs_and_final_state_match_numpy():
    layer = ResidualLSTM(return_state=True)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 7, 6))
    h, c = rng.normal(size=(2, 6)), rng.normal(size=(2, 6))
    layer.build(inputs.shape)
    layer.layer_norm.gamma.assign(np.linspace(0.5, 1.5, 6))
    outputs, *state = layer(inputs.astype(np.float32), initial_state=[h.astype(np.float32), c.astype(np.float32)])
    expected_outputs, expected_state = numpy_residual_lstm(layer, inputs, h, c)
    np.testing.assert_allclose(outputs.numpy(), expected_outputs, rtol=1e-4, atol=1e-5)
    for actual, expected in zip(state, expected_state, strict=True):
        np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-4, atol=1e-5)
    default_outputs, *_ = layer(inputs.astype(np.float32))
    zero_outputs, _ = numpy_residual_lstm(layer, inputs, np.zeros((2, 6)), np.zeros((2, 6)))
    np.testing.assert_allclose(default_outputs.numpy(), zero_outputs, rtol=1e-4, atol=1e-5)


def test_pytorch_initialisation():
    layer = ResidualLSTM()
    layer.build((None, None, 64))
    for weight in (layer.lstm.cell.kernel, layer.lstm.cell.recurrent_kernel, layer.lstm.cell.bias):
        values = weight.numpy()
        assert np.abs(values).max() <= 1 / 8 and np.abs(values).max() > 0.12
    assert abs(float(layer.lstm.cell.bias.numpy()[64:128].mean())) < 0.03  # no forget-gate bias of 1


def test_gradients_match_finite_differences_in_float64():
    layer = ResidualLSTM(return_state=True, dtype="float64")
    layer.build((None, None, 3))
    rng = np.random.default_rng(1)
    inputs, h, c = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    coefficients = [rng.normal(size=shape) for shape in (inputs.shape, h.shape, c.shape)]

    def reference_loss(arrays):
        outputs, state = numpy_residual_lstm(layer, *arrays)
        return float(sum(np.sum(a * w) for a, w in zip((outputs, *state), coefficients, strict=True)))

    kernel = layer.lstm.cell.kernel.numpy()
    expected = numerical_gradient(reference_loss, [inputs, h, c, kernel])
    variables = [tf.constant(a) for a in (inputs, h, c)]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        outputs, *state = layer(variables[0], initial_state=variables[1:])
        loss = tf.add_n([tf.reduce_sum(a * w) for a, w in zip((outputs, *state), coefficients, strict=True)])
    gradients = tape.gradient(loss, [*variables, layer.lstm.cell.kernel])
    for name, gradient, reference in zip(("inputs", "h", "c", "kernel"), gradients, expected, strict=True):
        np.testing.assert_allclose(np.asarray(gradient), reference, rtol=1e-6, atol=1e-8, err_msg=name)


def test_state_continuation_equals_one_pass_for_outputs_and_gradients():
    layer = ResidualLSTM(return_state=True)
    inputs = tf.constant(np.random.default_rng(2).normal(size=(2, 11, 8)).astype(np.float32))
    layer.build(inputs.shape)
    assert_two_parts_equal_one_pass(layer, inputs, split=4)


def test_layer_harness_with_state(tmp_path):
    layer = ResidualLSTM(dropout=0.1, return_state=True)
    inputs = tf.constant(np.random.default_rng(3).normal(size=(3, 7, 6)).astype(np.float32))
    run_layer_test(layer, inputs, tmp_path, (3, 7, 6), residual_lstm_parameters(6), [(3, 6), (3, 6)])


def test_serialization_round_trip(tmp_path):
    restored = stacked_pair_round_trip(ResidualLSTM(dropout=0.2, return_state=True), ResidualLSTM(), 8, tmp_path)
    assert restored.get_config()["dropout"] == 0.2


class TestBadInput:
    def test_rank(self):
        with pytest.raises(ValueError, match=r"`inputs` of .* must have rank 3"):
            ResidualLSTM()(np.zeros((2, 8), np.float32))

    def test_state_of_wrong_shape(self):
        with pytest.raises(ValueError, match=r"entry c .* = \[1, 8\]; received shape \(1, 7\)"):
            ResidualLSTM()(np.zeros((1, 3, 8), np.float32), initial_state=(tf.zeros([1, 8]), tf.zeros([1, 7])))

    def test_dropout(self):
        with pytest.raises(ValueError, match=r"`dropout` must be a float in \[0, 1\); received dropout=2"):
            ResidualLSTM(dropout=2)

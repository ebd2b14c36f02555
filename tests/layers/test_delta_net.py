"""`kerasrwm.layers.DeltaNet`: wiring against NumPy, gradients, state contract, serialization, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.layers import DeltaNet
from reference import delta_net_numpy
from reference.finite_differences import numerical_gradient
from tests.layer_testing import delta_net_parameters
from tests.layer_testing import run_layer_test
from tests.layer_testing import stacked_pair_round_trip
from tests.layers.state_continuation import assert_two_parts_equal_one_pass


def built_layer(num_heads, head_dim, width, seed=0, **kwargs):
    """A built layer with non-trivial LayerNorm parameters (so their wiring is checked too)."""
    layer = DeltaNet(num_heads=num_heads, head_dim=head_dim, **kwargs)
    layer.build((None, None, width))
    keras.utils.set_random_seed(seed)
    layer.layer_norm.gamma.assign(np.linspace(0.5, 1.5, width))
    layer.layer_norm.beta.assign(np.linspace(-0.2, 0.2, width))
    return layer


def numpy_layer(layer, inputs, fast_weights=None):
    return delta_net_numpy.delta_net_layer(
        inputs,
        layer.layer_norm.gamma.numpy(),
        layer.layer_norm.beta.numpy(),
        layer.slow_projection.kernel.numpy(),
        layer.output_projection.kernel.numpy(),
        layer.num_heads,
        w=fast_weights,
        epsilon=layer.layer_norm_epsilon,
    )


def test_outputs_and_final_state_match_numpy():
    layer = built_layer(3, 4, 10, return_state=True)
    inputs = np.random.default_rng(0).normal(size=(2, 9, 10)).astype(np.float32)
    outputs, fast_weights = layer(inputs)
    expected_outputs, expected_final = numpy_layer(layer, inputs.astype(np.float64))
    np.testing.assert_allclose(outputs.numpy(), expected_outputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast_weights.numpy(), expected_final, rtol=1e-4, atol=1e-5)
    assert np.abs(expected_final).max() > 1e-2  # the memory was written


def test_given_initial_state_matches_numpy():
    layer = built_layer(2, 4, 8, return_state=True)
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(2, 5, 8))
    initial = rng.normal(size=(2, 2, 4, 4))
    outputs, final = layer(inputs.astype(np.float32), initial_state=[initial.astype(np.float32)])
    expected_outputs, expected_final = numpy_layer(layer, inputs, initial)
    np.testing.assert_allclose(outputs.numpy(), expected_outputs, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(final.numpy(), expected_final, rtol=1e-4, atol=1e-5)


def test_gradients_match_finite_differences_in_float64():
    layer = DeltaNet(num_heads=2, head_dim=3, return_state=True, dtype="float64")
    layer.build((None, None, 5))
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(2, 4, 5))
    initial = rng.normal(scale=0.5, size=(2, 2, 3, 3))
    output_coefficients, final_coefficients = rng.normal(size=inputs.shape), rng.normal(size=initial.shape)
    slow, projection = layer.slow_projection.kernel.numpy(), layer.output_projection.kernel.numpy()
    gamma, beta = layer.layer_norm.gamma.numpy(), layer.layer_norm.beta.numpy()

    def reference_loss(arrays):
        x, w, slow_kernel, output_kernel = arrays
        outputs, final = delta_net_numpy.delta_net_layer(x, gamma, beta, slow_kernel, output_kernel, 2, w=w)
        return float(np.sum(outputs * output_coefficients) + np.sum(final * final_coefficients))

    expected = numerical_gradient(reference_loss, [inputs, initial, slow, projection])
    x, w = tf.constant(inputs), tf.constant(initial)
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        outputs, final = layer(x, initial_state=[w])
        loss = tf.reduce_sum(outputs * output_coefficients) + tf.reduce_sum(final * final_coefficients)
    gradients = tape.gradient(loss, [x, w, layer.slow_projection.kernel, layer.output_projection.kernel])
    for name, gradient, reference in zip(("inputs", "state", "slow", "output"), gradients, expected, strict=True):
        np.testing.assert_allclose(gradient.numpy(), reference, rtol=1e-6, atol=1e-8, err_msg=name)


def test_state_continuation_equals_one_pass_for_outputs_and_gradients():
    layer = built_layer(2, 4, 8, return_state=True)
    inputs = tf.constant(np.random.default_rng(3).normal(size=(2, 13, 8)).astype(np.float32))
    assert_two_parts_equal_one_pass(layer, inputs)


def test_parameter_count_matches_reference():
    layer = DeltaNet(num_heads=16, head_dim=16)
    layer.build((None, None, 256))
    assert layer.count_params() == 266_752 == delta_net_parameters(16, 16, 256)


def test_layer_harness_with_state(tmp_path):
    layer = DeltaNet(num_heads=2, head_dim=3, dropout=0.1, return_state=True)
    inputs = tf.constant(np.random.default_rng(5).normal(size=(3, 7, 10)).astype(np.float32))
    run_layer_test(layer, inputs, tmp_path, (3, 7, 10), delta_net_parameters(2, 3, 10), [(3, 2, 3, 3)])


def test_dropout_only_in_training():
    layer = DeltaNet(num_heads=2, head_dim=4, dropout=0.5)
    inputs = np.random.default_rng(4).normal(size=(3, 6, 8)).astype(np.float32)
    np.testing.assert_array_equal(layer(inputs).numpy(), layer(inputs, training=False).numpy())
    assert not np.allclose(layer(inputs, training=True).numpy(), layer(inputs).numpy())


def test_serialization_round_trip(tmp_path):
    first = DeltaNet(num_heads=2, head_dim=4, dropout=0.1, return_state=True)
    config = stacked_pair_round_trip(first, DeltaNet(num_heads=2, head_dim=4), 12, tmp_path).get_config()
    assert (config["num_heads"], config["head_dim"], config["dropout"], config["return_state"]) == (2, 4, 0.1, True)
    assert keras.saving.get_registered_name(DeltaNet) == "kerasrwm>DeltaNet"


def test_xla_compiled_call_matches_eager():
    layer = built_layer(2, 4, 8)
    inputs = tf.constant(np.random.default_rng(6).normal(size=(2, 10, 8)).astype(np.float32))
    compiled = tf.function(lambda x: layer(x), jit_compile=True)(inputs)
    np.testing.assert_allclose(compiled.numpy(), layer(inputs).numpy(), rtol=1e-5, atol=1e-6)


class TestBadInput:
    def test_rank(self):
        with pytest.raises(ValueError, match=r"`inputs` of .* must have rank 3"):
            DeltaNet(num_heads=2, head_dim=4)(np.zeros((2, 8), np.float32))

    def test_integer_inputs(self):
        with pytest.raises(ValueError, match=r"must have a floating dtype; received dtype int32"):
            DeltaNet(num_heads=2, head_dim=4)(np.zeros((1, 3, 8), np.int32))

    @pytest.mark.parametrize("name, value", [("num_heads", 0), ("head_dim", 2.5), ("dropout", 1.0)])
    def test_constructor_arguments(self, name, value):
        arguments = {"num_heads": 2, "head_dim": 4, name: value}
        with pytest.raises(ValueError, match=rf"`{name}` must be"):
            DeltaNet(**arguments)

    def test_state_of_wrong_length(self):
        with pytest.raises(ValueError, match=r"`initial_state` of .* must be a tuple of 1 tensors \('fast_weights',\)"):
            DeltaNet(num_heads=2, head_dim=4)(np.zeros((1, 3, 8), np.float32), initial_state=())

    def test_state_of_wrong_shape(self):
        with pytest.raises(ValueError, match=r"entry fast_weights .* = \[1, 2, 4, 4\]; received shape \(1, 2, 4, 3\)"):
            DeltaNet(num_heads=2, head_dim=4)(np.zeros((1, 3, 8), np.float32), initial_state=(tf.zeros([1, 2, 4, 3]),))

"""`kerasrwm.SRWM`: wiring against NumPy, state contract, serialization, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrwm
from reference import srwm_numpy
from reference.normalization import layer_norm
from tests.layer_testing import IMPLEMENTATIONS
from tests.layer_testing import run_layer_test
from tests.layer_testing import srwm_parameters
from tests.layers.state_continuation import assert_two_parts_equal_one_pass


def numpy_srwm_layer(layer, inputs, state=None):
    """The layer's output from its weights, per the reference: LayerNorm(h) + y W_out."""
    batch, length, width = inputs.shape
    heads, head_dim = layer.num_heads, layer.head_dim
    if state is None:
        state = [
            np.broadcast_to(w.numpy(), (batch,) + tuple(w.shape)) for w in (layer.w_y, layer.w_q, layer.w_k, layer.w_b)
        ]
    y, finals = srwm_numpy.srwm(inputs.reshape(batch, length, heads, head_dim), *state)
    projected = y.reshape(batch, length, width) @ layer.output_projection.kernel.numpy()
    norm = layer.layer_norm
    residual = layer_norm(inputs, norm.gamma.numpy(), norm.beta.numpy(), norm.epsilon)
    return residual + projected, finals


def test_output_matches_numpy_wiring():
    layer = kerasrwm.SRWM(num_heads=2, head_dim=8, implementation="loop")
    inputs = np.random.default_rng(0).normal(size=(3, 11, 16)).astype(np.float32)
    layer.build(inputs.shape)
    layer.layer_norm.gamma.assign(np.linspace(0.5, 1.5, 16))
    layer.layer_norm.beta.assign(np.linspace(-0.2, 0.2, 16))
    expected, _ = numpy_srwm_layer(layer, inputs.astype(np.float64))
    np.testing.assert_allclose(layer(inputs).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_without_layer_norm_the_residual_is_the_raw_input():
    layer = kerasrwm.SRWM(num_heads=2, head_dim=4, use_layer_norm=False, implementation="loop")
    inputs = np.random.default_rng(1).normal(size=(2, 5, 8)).astype(np.float32)
    layer.build(inputs.shape)
    layer.output_projection.kernel.assign(np.zeros((8, 8)))
    np.testing.assert_allclose(layer(inputs).numpy(), inputs, atol=0)


def test_parameter_count_matches_reference():
    layer = kerasrwm.SRWM(num_heads=16, head_dim=16)
    layer.build((None, None, 256))
    assert layer.count_params() == 79_360


def test_initialisation_statistics():
    layer = kerasrwm.SRWM(num_heads=16, head_dim=16, beta_init=-1.0)
    layer.build((None, None, 256))
    for weight in (layer.w_y, layer.w_q, layer.w_k):
        assert abs(float(np.mean(weight.numpy()))) < 0.02
        assert abs(float(np.std(weight.numpy())) - 0.25) < 0.01
    assert abs(float(np.mean(layer.w_b.numpy())) + 1.0) < 0.05
    assert abs(float(np.std(layer.w_b.numpy())) - 0.25) < 0.02


def test_dropout_only_in_training():
    layer = kerasrwm.SRWM(num_heads=2, head_dim=4, dropout=0.5, implementation="loop")
    inputs = np.random.default_rng(2).normal(size=(4, 6, 8)).astype(np.float32)
    inference = [layer(inputs, training=False).numpy() for _ in range(2)]
    np.testing.assert_array_equal(inference[0], inference[1])
    training = layer(inputs, training=True).numpy()
    assert not np.allclose(training, inference[0])


def test_state_continuation_equals_one_pass_for_outputs_and_gradients():
    layer = kerasrwm.SRWM(num_heads=2, head_dim=8, implementation="loop", return_state=True)
    inputs = tf.constant(np.random.default_rng(3).normal(size=(2, 13, 16)).astype(np.float32))
    layer.build(inputs.shape)
    assert_two_parts_equal_one_pass(layer, inputs)


def test_returned_state_matches_reference_final_weights():
    layer = kerasrwm.SRWM(num_heads=2, head_dim=4, implementation="loop", return_state=True)
    inputs = np.random.default_rng(4).normal(size=(2, 7, 8)).astype(np.float32)
    _, *state = layer(inputs)
    _, expected = numpy_srwm_layer(layer, inputs.astype(np.float64))
    for actual, reference in zip(state, expected, strict=True):
        np.testing.assert_allclose(actual.numpy(), reference, rtol=1e-4, atol=1e-5)


def harness_layer(implementation):
    # head_dim 8 tells the square matrices [8, 8] from w_b, whose last axis holds the 4 rates.
    layer = kerasrwm.SRWM(
        num_heads=2, head_dim=8, dropout=0.1, beta_init=0.5, implementation=implementation, return_state=True
    )
    return layer, tf.constant(np.random.default_rng(5).normal(size=(3, 9, 16)).astype(np.float32))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_harness_with_state(tmp_path, implementation):
    layer, inputs = harness_layer(implementation)
    state_shapes = [(3, 2, 8, 8)] * 3 + [(3, 2, 8, 4)]
    run_layer_test(layer, inputs, tmp_path, (3, 9, 16), srwm_parameters(2, 8), state_shapes)
    assert srwm_parameters(16, 16) == 79_360  # one SRWM layer of the reference
    assert keras.saving.get_registered_name(kerasrwm.SRWM) == "kerasrwm>SRWM"


def test_implementation_is_resolved_on_first_use_not_at_construction(monkeypatch):
    """Constructing a layer runs no compiler; `implementation="fused"` without the op fails at first call."""
    from kerasrwm.ops import fused_srwm

    monkeypatch.setenv(fused_srwm.DISABLE_ENV, "1")
    layer = kerasrwm.SRWM(num_heads=2, head_dim=4, implementation="fused")
    with pytest.raises(RuntimeError, match=fused_srwm.DISABLE_ENV):
        layer(np.zeros((1, 3, 8), np.float32))
    assert kerasrwm.SRWM(num_heads=2, head_dim=4).resolved_implementation == "loop"


def test_reference_hand_off_gradient_adds_the_state_gradient_to_the_initial_weights():
    """With `initial_state=None` every episode starts from the parameters, so each one gets the
    exact gradient plus the state's incoming gradient summed over episodes; `x` is unchanged."""
    rng = np.random.default_rng(8)
    inputs = tf.constant(rng.normal(size=(3, 5, 8)))
    state_coefficients = [tf.constant(rng.normal(size=shape)) for shape in [(3, 2, 4, 4)] * 3 + [(3, 2, 4, 4)]]
    gradients = {}
    for mode in ("exact", "reference"):
        keras.utils.set_random_seed(1)
        layer = kerasrwm.SRWM(2, 4, implementation="loop", return_state=True, hand_off_gradient=mode, dtype="float64")
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs, *state = layer(inputs)
            loss = tf.reduce_sum(outputs**2) + tf.add_n(
                [tf.reduce_sum(s * c) for s, c in zip(state, state_coefficients)]
            )
        weights = [layer.w_y, layer.w_q, layer.w_k, layer.w_b]
        gradients[mode] = tape.gradient(loss, [inputs, *weights])
    np.testing.assert_allclose(gradients["reference"][0].numpy(), gradients["exact"][0].numpy(), rtol=1e-12)
    for reference, exact, upstream in zip(gradients["reference"][1:], gradients["exact"][1:], state_coefficients):
        np.testing.assert_allclose(reference.numpy(), exact.numpy() + upstream.numpy().sum(0), rtol=1e-10, atol=1e-12)
    assert kerasrwm.SRWM.from_config(layer.get_config()).hand_off_gradient == "reference"


class TestBadInput:
    def test_width_must_equal_heads_times_head_dim(self):
        with pytest.raises(
            ValueError, match=r"must equal num_heads \* head_dim = 4 \* 4 = 16; received inputs of shape \(2, 3, 15\)"
        ):
            kerasrwm.SRWM(num_heads=4, head_dim=4)(np.zeros((2, 3, 15), np.float32))

    def test_rank(self):
        with pytest.raises(ValueError, match=r"must have rank 3"):
            kerasrwm.SRWM(num_heads=4, head_dim=4)(np.zeros((2, 16), np.float32))

    def test_head_dim_at_least_four(self):
        with pytest.raises(ValueError, match=r"`head_dim` must be an integer >= 4; received head_dim=2"):
            kerasrwm.SRWM(num_heads=4, head_dim=2)

    @pytest.mark.parametrize("name, value", [("num_heads", 0), ("num_heads", 2.0), ("dropout", 1.5)])
    def test_constructor_arguments(self, name, value):
        arguments = {"num_heads": 2, "head_dim": 4, name: value}
        with pytest.raises(ValueError, match=rf"`{name}` must be"):
            kerasrwm.SRWM(**arguments)

    def test_unknown_implementation(self):
        with pytest.raises(ValueError, match=r"`implementation` must be one of"):
            kerasrwm.SRWM(num_heads=2, head_dim=4, implementation="gpu")

    def test_integer_inputs(self):
        with pytest.raises(ValueError, match=r"`inputs` of .* must have a floating dtype; received dtype int32"):
            kerasrwm.SRWM(num_heads=2, head_dim=4)(np.zeros((1, 3, 8), np.int32))

    def test_state_of_wrong_length(self):
        layer = kerasrwm.SRWM(num_heads=2, head_dim=4, return_state=True)
        _, *state = layer(np.zeros((1, 3, 8), np.float32))
        with pytest.raises(ValueError, match=r"`initial_state` of .* must be a tuple of 4 tensors"):
            layer(np.zeros((1, 3, 8), np.float32), initial_state=state[:3])

    def test_state_of_wrong_shape(self):
        layer = kerasrwm.SRWM(num_heads=2, head_dim=4, return_state=True)
        _, *state = layer(np.zeros((1, 3, 8), np.float32))
        bad = (state[0], state[1], state[2], tf.zeros([1, 2, 4, 3]))
        with pytest.raises(ValueError, match=r"`initial_state` entry w_b .* received shape \(1, 2, 4, 3\)"):
            layer(np.zeros((1, 3, 8), np.float32), initial_state=bad)

    def test_state_batch_must_match_inputs(self):
        layer = kerasrwm.SRWM(num_heads=2, head_dim=4, return_state=True)
        _, *state = layer(np.zeros((2, 3, 8), np.float32))
        with pytest.raises(ValueError, match=r"`initial_state` entry w_y"):
            layer(np.zeros((1, 3, 8), np.float32), initial_state=state)

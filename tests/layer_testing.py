"""`run_layer_test`: the checks every kerasrwm layer and model must pass, in one place.

Modelled on `keras.src.testing.TestCase.run_layer_test`: config round trip, output (and state)
shapes, parameter count, `.keras` save and load, and, for layers with an `implementation`,
agreement of that implementation with the loop.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

IMPLEMENTATIONS = ["loop", pytest.param("fused", marks=pytest.mark.requires_fused)]
"""Parametrize `implementation` with these: the fused case needs the op library."""


def srwm_parameters(heads, head_dim):
    """`SRWM`: per head the initial W_y, W_q, W_k (E x E) and w_b (E x 4); the bias-free output
    projection; LayerNorm."""
    width = heads * head_dim
    return heads * (3 * head_dim * head_dim + 4 * head_dim) + width * width + 2 * width


def feed_forward_parameters(width, ff_dim):
    """`FeedForward`: LayerNorm, then Dense(width -> ff_dim) and Dense(ff_dim -> width), both with bias."""
    return 2 * width + (width + 1) * ff_dim + (ff_dim + 1) * width


def trainable_count(layer):
    """Number of trainable scalars of `layer`."""
    return sum(int(np.prod(weight.shape)) for weight in layer.trainable_weights)


def _flat_shapes(structure):
    return [tuple(tensor.shape) for tensor in tf.nest.flatten(structure)]


def _copy_with(layer, inputs, **overrides):
    """A layer built from `layer`'s config with `overrides`, called on `inputs`, with `layer`'s weights."""
    clone = layer.__class__.from_config({**layer.get_config(), **overrides})
    clone(inputs, training=False)
    clone.set_weights(layer.get_weights())
    return clone


def _saved_and_loaded(layer, inputs, path):
    """`layer` saved to and loaded from a `.keras` file (a layer is wrapped in a functional model)."""
    if isinstance(layer, keras.Model):
        model = layer
    else:
        symbolic = keras.Input(batch_shape=(None, *inputs.shape[1:]), dtype=inputs.dtype)
        model = keras.Model(symbolic, layer(symbolic))
    model.save(path)
    return keras.models.load_model(path)


def stacked_pair_round_trip(first, second, width, tmp_path):
    """`first` feeding its outputs and final state to `second` survives a `.keras` save and load.

    Args:
        first: an unbuilt layer constructed with `return_state=True`.
        second: an unbuilt layer of the same state structure.
        width: the input feature width.
        tmp_path: a directory for the `.keras` file.

    Returns:
        The loaded copy of `first`, for checks of its config.
    """
    inputs = keras.Input((None, width))
    hidden, state = first(inputs)
    model = keras.Model(inputs, second(hidden, initial_state=state))
    data = np.random.default_rng(1).normal(size=(3, 5, width)).astype(np.float32)
    restored = _saved_and_loaded(model, data, str(tmp_path / "stack.keras"))
    np.testing.assert_array_equal(restored(data).numpy(), model(data).numpy())
    return restored.layers[1]


def run_layer_test(layer, inputs, tmp_path, expected_output_shape, expected_trainable, expected_state_shapes=None):
    """Runs the shared checks on `layer` and returns its inference outputs on `inputs`.

    Args:
        layer: an unbuilt kerasrwm layer or model (registered for serialization).
        inputs: a batch it accepts (a tensor, or a dict of tensors for a model).
        tmp_path: a directory for the `.keras` file.
        expected_output_shape: the output shape on `inputs`.
        expected_trainable: the trainable parameter count, computed by the caller from the
            architecture.
        expected_state_shapes: for a layer returning `(outputs, state)`, the state's shapes in
            order; None for a layer returning its outputs only.

    Checks, in order: `from_config(get_config())` reproduces the config; the outputs (and
    state) have the expected shapes; the trainable count; a `.keras` save and load gives the
    same outputs; a copy rebuilt from the config gives the same outputs; and, if the layer has
    an `implementation` other than `"loop"`, a loop copy with the same weights agrees with it.
    """
    config = layer.get_config()
    assert layer.__class__.from_config(config).get_config() == config

    result = layer(inputs, training=False)
    outputs, state = result if expected_state_shapes is not None else (result, None)
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    if expected_state_shapes is not None:
        assert _flat_shapes(state) == [tuple(shape) for shape in expected_state_shapes]
    assert trainable_count(layer) == expected_trainable

    restored = _saved_and_loaded(layer, inputs, str(tmp_path / f"{layer.name}.keras"))
    for actual, expected in zip(tf.nest.flatten(restored(inputs, training=False)), tf.nest.flatten(result)):
        np.testing.assert_array_equal(actual, expected)

    for actual, expected in zip(
        tf.nest.flatten(_copy_with(layer, inputs)(inputs, training=False)), tf.nest.flatten(result)
    ):
        np.testing.assert_array_equal(actual, expected)

    if config.get("implementation", "loop") != "loop":
        loop = _copy_with(layer, inputs, implementation="loop")
        for actual, expected in zip(tf.nest.flatten(result), tf.nest.flatten(loop(inputs, training=False))):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    return result

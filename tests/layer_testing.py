"""`run_layer_test`: the checks every kerasrwm layer and model must pass, in one place.

Modelled on `keras.src.testing.TestCase.run_layer_test`: config round trip, output (and state)
shapes, symbolic shapes, parameter count, `.keras` save and load, agreement of an
`implementation` with the loop, and by default the two checks Keras runs too: one training step
through `model.fit` (with `jit_compile="auto"`, so XLA wherever the layer allows it) and the layer
rebuilt under the `mixed_float16` policy. Every `zip` here is strict: a missing output or weight
fails instead of shortening the comparison.
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


def delta_net_parameters(heads, head_dim, width):
    """`DeltaNet`: LayerNorm, the slow projection to q, k, v and beta per head, the output projection (no biases)."""
    return 2 * width + width * heads * (3 * head_dim + 1) + heads * head_dim * width


def residual_lstm_parameters(width):
    """`ResidualLSTM`: LayerNorm, then an LSTM with `width` units (kernel, recurrent kernel, bias of 4 gates)."""
    return 2 * width + 4 * (2 * width * width + width)


CONV4_BIASES_BEFORE_BATCH_NORM = tuple(f"conv_{index}/bias" for index in range(4))
"""Conv-4's convolution biases: each feeds a BatchNorm, so in training mode their gradient is zero."""


def trainable_count(layer):
    """Number of trainable scalars of `layer`."""
    return sum(int(np.prod(weight.shape)) for weight in layer.trainable_weights)


def _flat(structure):
    return tf.nest.flatten(structure)


def _flat_shapes(structure):
    return [tuple(tensor.shape) for tensor in _flat(structure)]


def _assert_all_equal(actual, expected):
    for a, b in zip(_flat(actual), _flat(expected), strict=True):
        np.testing.assert_array_equal(a, b)


def _copy_with(layer, inputs, **overrides):
    """A layer built from `layer`'s config with `overrides`, called on `inputs`, with `layer`'s weights."""
    clone = layer.__class__.from_config({**layer.get_config(), **overrides})
    clone(inputs, training=False)
    clone.set_weights(layer.get_weights())
    return clone


def _symbolic_inputs(inputs):
    return keras.Input(batch_shape=(None, *inputs.shape[1:]), dtype=inputs.dtype)


def _saved_and_loaded(layer, inputs, path):
    """`layer` saved to and loaded from a `.keras` file (a layer is wrapped in a functional model)."""
    if isinstance(layer, keras.Model):
        model = layer
    else:
        symbolic = _symbolic_inputs(inputs)
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
    hidden, *state = first(inputs)
    model = keras.Model(inputs, second(hidden, initial_state=state))
    data = np.random.default_rng(1).normal(size=(3, 5, width)).astype(np.float32)
    restored = _saved_and_loaded(model, data, str(tmp_path / "stack.keras"))
    np.testing.assert_array_equal(restored(data).numpy(), model(data).numpy())
    return restored.layers[1]


class ProjectedOutputs(keras.Model):
    """`sum_i sum(outputs_i * coefficients_i)` of a layer: a loss whose gradient reaches every weight.

    A plain `sum(outputs)` (Keras's check) has zero gradient for some weights, e.g. a BatchNorm's
    scale in training mode; fixed random coefficients do not.
    """

    def __init__(self, layer, coefficients):
        super().__init__()
        self.layer = layer
        self.coefficients = coefficients

    def call(self, inputs, training=False):
        outputs = _flat(self.layer(inputs, training=training))
        terms = [
            tf.reduce_sum(tf.cast(output, "float32") * coefficient)
            for output, coefficient in zip(outputs, self.coefficients, strict=True)
        ]
        return tf.reshape(tf.add_n(terms), [1])


def check_training_step(layer, inputs, weights_without_gradient=()):
    """One `model.fit` step (SGD, `jit_compile="auto"`) moves every trainable weight and keeps it finite.

    Args:
        layer: a built layer or model, called on `inputs` before.
        inputs: a batch it accepts.
        weights_without_gradient: endings of the paths of weights whose gradient is zero by
            construction (a bias followed by a BatchNorm in training mode), which need not move.
    """
    rng = np.random.default_rng(7)
    outputs = _flat(layer(inputs, training=False))
    coefficients = [tf.constant(rng.normal(size=output.shape), tf.float32) for output in outputs]
    model = ProjectedOutputs(layer, coefficients)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=lambda _, objective: objective, jit_compile="auto")
    before = [weight.numpy() for weight in layer.trainable_weights]
    dataset = tf.data.Dataset.from_tensors((inputs, tf.zeros([1]))).repeat()
    model.fit(dataset, steps_per_epoch=1, epochs=1, shuffle=False, verbose=0)
    for weight, old in zip(layer.trainable_weights, before, strict=True):
        new = weight.numpy()
        assert np.isfinite(new).all(), f"{weight.path} is not finite after one training step"
        if not weight.path.endswith(tuple(weights_without_gradient)):
            assert not np.array_equal(new, old), f"{weight.path} did not move in one training step"


def check_mixed_precision(layer, inputs, rtol=3e-2, atol=3e-2):
    """The layer rebuilt under `mixed_float16` computes in float16, keeps float32 weights, and agrees with float32.

    As Keras's check: every output has the dtype its `compute_output_spec` announces (float16 for
    floating outputs) and every floating weight is float32. Beyond it: with the float32 layer's
    weights, the outputs agree with the float32 outputs to float16 accuracy.

    Args:
        layer: a built float32 layer or model, called on `inputs` before.
        inputs: a batch it accepts (float32; the layer casts).
        rtol, atol: the agreement tolerance, relative to the float32 outputs' largest magnitude for `atol`.
    """
    mixed = layer.__class__.from_config({**layer.get_config(), "dtype": "mixed_float16"})
    assert mixed.compute_dtype == "float16" and mixed.variable_dtype == "float32"
    mixed(inputs, training=False)
    mixed.set_weights(layer.get_weights())
    outputs = mixed(inputs, training=False)
    if not isinstance(mixed, keras.Model):
        specs = mixed.compute_output_spec(keras.KerasTensor(inputs.shape, dtype="float16"))
        for output, spec in zip(_flat(outputs), _flat(specs), strict=True):
            assert keras.backend.standardize_dtype(output.dtype) == spec.dtype
    for output in _flat(outputs):
        if output.dtype.is_floating:
            assert output.dtype == tf.float16, f"an output of the mixed_float16 layer is {output.dtype.name}"
    for weight in mixed.weights:
        if keras.backend.is_float_dtype(weight.dtype):
            assert keras.backend.standardize_dtype(weight.dtype) == "float32", weight.path
    reference = _flat(layer(inputs, training=False))
    for output, expected in zip(_flat(outputs), reference, strict=True):
        expected = expected.numpy()
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(output.numpy().astype(np.float32), expected, rtol=rtol, atol=atol * scale)


def run_layer_test(
    layer,
    inputs,
    tmp_path,
    expected_output_shape,
    expected_trainable,
    expected_state_shapes=None,
    run_training_check=True,
    run_mixed_precision_check=True,
    weights_without_gradient=(),
):
    """Runs the shared checks on `layer` and returns its inference outputs on `inputs`.

    Args:
        layer: an unbuilt kerasrwm layer or model (registered for serialization).
        inputs: a batch it accepts (a tensor, or a dict of tensors for a model).
        tmp_path: a directory for the `.keras` file.
        expected_output_shape: the output shape on `inputs`.
        expected_trainable: the trainable parameter count, computed by the caller from the
            architecture.
        expected_state_shapes: for a layer returning `(outputs, *state)`, the state's shapes in
            order; None for a layer returning its outputs only.
        run_training_check: run `check_training_step` (on a copy, so that the other checks see
            the layer's own weights).
        run_mixed_precision_check: run `check_mixed_precision`.
        weights_without_gradient: as in `check_training_step`.

    Checks, in order: `from_config(get_config())` reproduces the config; the outputs (and
    state) have the expected shapes, also when the layer is called on a `keras.Input` (a layer,
    not a model); the trainable count; a `.keras` save and load gives the same outputs; a copy
    rebuilt from the config gives the same outputs; if the layer has an `implementation` other
    than `"loop"`, a loop copy with the same weights agrees with it; then the training and the
    mixed-precision checks.
    """
    config = layer.get_config()
    assert layer.__class__.from_config(config).get_config() == config

    result = layer(inputs, training=False)
    if expected_state_shapes is None:
        outputs = result
    else:
        outputs, *state = result
        assert _flat_shapes(state) == [tuple(shape) for shape in expected_state_shapes]
    assert tuple(outputs.shape) == tuple(expected_output_shape)
    if not isinstance(layer, keras.Model):
        symbolic = layer(_symbolic_inputs(inputs))
        expected_shapes = [(None, *tuple(tensor.shape)[1:]) for tensor in _flat(result)]
        assert _flat_shapes(symbolic) == expected_shapes
    assert trainable_count(layer) == expected_trainable

    _assert_all_equal(_saved_and_loaded(layer, inputs, str(tmp_path / f"{layer.name}.keras"))(inputs), result)
    _assert_all_equal(_copy_with(layer, inputs)(inputs, training=False), result)

    if config.get("implementation", "loop") != "loop":
        loop = _copy_with(layer, inputs, implementation="loop")
        for actual, expected in zip(_flat(result), _flat(loop(inputs, training=False)), strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)

    if run_training_check:
        check_training_step(_copy_with(layer, inputs), inputs, weights_without_gradient)
    if run_mixed_precision_check:
        check_mixed_precision(layer, inputs)
    return result

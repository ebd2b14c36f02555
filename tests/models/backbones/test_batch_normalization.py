"""`BatchNormalization` (fused kernels) against `keras.layers.BatchNormalization`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.models.backbones import BatchNormalization
from tests.layer_testing import run_layer_test


def paired_layers(channels, momentum=0.9, epsilon=1e-5):
    """A Keras layer and a kerasrwm layer with the same (non-trivial) weights."""
    rng = np.random.default_rng(0)
    layers = (
        keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon),
        BatchNormalization(momentum=momentum, epsilon=epsilon),
    )
    gamma, beta = rng.normal(size=channels), rng.normal(size=channels)
    mean, variance = rng.normal(size=channels), rng.uniform(0.5, 2.0, size=channels)
    for layer in layers:
        layer.build((None, 5, 6, channels))
        layer.set_weights([gamma, beta, mean, variance])
    return layers


def forward_backward(layer, inputs, upstream, training):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, training=training)
        loss = tf.reduce_sum(outputs * upstream)
    return outputs, tape.gradient(loss, [inputs, layer.gamma, layer.beta])


@pytest.mark.parametrize("training", [True, False])
def test_matches_keras_layer(training):
    keras_layer, fused_layer = paired_layers(3)
    rng = np.random.default_rng(1)
    inputs = tf.constant(rng.normal(2.0, 3.0, size=(4, 5, 6, 3)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(4, 5, 6, 3)).astype(np.float32))
    expected, expected_gradients = forward_backward(keras_layer, inputs, upstream, training)
    outputs, gradients = forward_backward(fused_layer, inputs, upstream, training)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    for gradient, expected_gradient in zip(gradients, expected_gradients):
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=1e-4)
    # The moving statistics move the same way (Keras: biased batch variance).
    np.testing.assert_allclose(fused_layer.moving_mean, keras_layer.moving_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused_layer.moving_variance, keras_layer.moving_variance, rtol=1e-5, atol=1e-6)


def test_moving_statistics_use_the_biased_variance():
    layer = BatchNormalization(momentum=0.5)
    inputs = np.random.default_rng(2).normal(size=(3, 2, 2, 2)).astype(np.float32)
    layer(inputs, training=True)
    biased = inputs.reshape(-1, 2).var(axis=0)
    np.testing.assert_allclose(layer.moving_variance, 0.5 * 1.0 + 0.5 * biased, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_mean, 0.5 * inputs.reshape(-1, 2).mean(axis=0), rtol=1e-5, atol=1e-7)


def test_other_shapes_use_the_keras_layer():
    keras_layer = keras.layers.BatchNormalization()
    layer = BatchNormalization()
    inputs = np.random.default_rng(3).normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(inputs, training=True), keras_layer(inputs, training=True), rtol=1e-5, atol=1e-6)


def fused_ops(layer, shape):
    """The op types of `layer(inputs, training=True)` traced on `shape` that are fused batch norms."""
    function = tf.function(lambda inputs: layer(inputs, training=True))
    graph = function.get_concrete_function(tf.TensorSpec(shape, tf.float32)).graph
    return [op.type for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")]


def test_synchronized_layer_runs_the_keras_layer_not_the_per_replica_fused_op():
    assert fused_ops(BatchNormalization(), (2, 5, 6, 3)) == ["FusedBatchNormV3"]
    assert fused_ops(BatchNormalization(synchronized=True), (2, 5, 6, 3)) == []


def test_frozen_layer_uses_moving_statistics():
    _, layer = paired_layers(2)
    layer.trainable = False
    inputs = np.random.default_rng(4).normal(size=(2, 5, 6, 2)).astype(np.float32)
    mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    expected = (inputs - mean) / np.sqrt(variance + 1e-5) * layer.gamma.numpy() + layer.beta.numpy()
    np.testing.assert_allclose(layer(inputs, training=True), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean, mean)


def test_layer_harness_after_training_moved_the_batch_statistics(tmp_path):
    layer = BatchNormalization(momentum=0.5, name="norm")
    inputs = tf.constant(np.random.default_rng(2).normal(1.0, 2.0, size=(3, 5, 6, 4)).astype(np.float32))
    layer(inputs, training=True)  # move the moving statistics away from their initial values
    run_layer_test(layer, inputs, tmp_path, (3, 5, 6, 4), 2 * 4)


def test_config_round_trip():
    layer = BatchNormalization(momentum=0.8, epsilon=1e-4, name="norm")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is BatchNormalization
    assert restored.get_config() == layer.get_config()

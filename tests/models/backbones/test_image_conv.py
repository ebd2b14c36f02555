"""The first block's convolution + batch-statistics BatchNorm as one matmul over image patches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.models.backbones import BatchNormalization
from kerasrwm.models.backbones import Conv4Backbone
from kerasrwm.models.backbones import conv4
from kerasrwm.models.backbones.image_conv import can_normalize_on_patches
from kerasrwm.models.backbones.image_conv import normalized_image_conv
from reference.finite_differences import numerical_gradient

EPSILON = 1e-5


def conv_batch_norm_numpy(images, kernel, bias, gamma, beta):
    """3x3 "same" convolution then batch normalisation with batch statistics, written out in NumPy."""
    batch, height, width, _ = images.shape
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)])
    outputs = np.zeros((batch, height, width, kernel.shape[-1]))
    for row in range(3):
        for column in range(3):
            window = padded[:, row : row + height, column : column + width, :]
            outputs += np.einsum("nhwc,co->nhwo", window, kernel[row, column])
    outputs += bias
    mean = outputs.mean(axis=(0, 1, 2))
    variance = outputs.var(axis=(0, 1, 2))
    return (outputs - mean) / np.sqrt(variance + EPSILON) * gamma + beta, mean, variance


def layers(channels, filters, dtype):
    rng = np.random.default_rng(0)
    conv = keras.layers.Conv2D(filters, 3, padding="same", dtype=dtype)
    norm = BatchNormalization(momentum=0.9, epsilon=EPSILON, dtype=dtype)
    conv.build((None, 6, 5, channels))
    norm.build((None, 6, 5, filters))
    conv.set_weights([rng.normal(size=(3, 3, channels, filters)), rng.normal(size=filters)])
    norm.set_weights([rng.normal(size=filters), rng.normal(size=filters), np.zeros(filters), np.ones(filters)])
    return conv, norm


@pytest.mark.parametrize("channels", [1, 3])
def test_matches_numpy_reference_in_float64(channels):
    conv, norm = layers(channels, 4, "float64")
    images = np.random.default_rng(1).uniform(size=(3, 6, 5, channels))
    outputs = normalized_image_conv(tf.constant(images), conv, norm)
    expected, mean, variance = conv_batch_norm_numpy(
        images, *[w.numpy() for w in (conv.kernel, conv.bias, norm.gamma, norm.beta)]
    )
    np.testing.assert_allclose(outputs, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.moving_mean, 0.1 * mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(norm.moving_variance, 0.9 + 0.1 * variance, rtol=1e-10)


def test_a_variance_rounded_below_zero_is_clamped_at_zero():
    """Constant images through the centre tap alone: the output is constant, its variance 0, which the
    float32 Gram matrix rounds below zero at this value (-0.31 with oneDNN on AVX-512, -0.56 on AVX2;
    rsqrt of that plus epsilon is NaN). The rounding depends on the matmul kernel, so the checks are
    the invariants: finite outputs and a batch variance >= 0 in the moving average."""
    conv, norm = layers(1, 1, "float32")
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[1, 1] = 1.0
    conv.set_weights([kernel, np.zeros(1, np.float32)])
    outputs = normalized_image_conv(tf.fill([4, 8, 8, 1], 999.7), conv, norm)
    assert np.isfinite(outputs.numpy()).all()
    assert float(norm.moving_variance[0]) >= 0.9 - 1e-6  # 0.9 * 1 + 0.1 * variance


def test_gradients_match_finite_differences():
    conv, norm = layers(1, 2, "float64")
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(2, 6, 5, 1))
    upstream = rng.normal(size=(2, 6, 5, 2))
    weights = [conv.kernel, conv.bias, norm.gamma, norm.beta]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(normalized_image_conv(tf.constant(images), conv, norm) * upstream)
    gradients = tape.gradient(loss, weights)

    def reference_loss(arrays):
        return float(np.sum(conv_batch_norm_numpy(images, *arrays)[0] * upstream))

    expected = numerical_gradient(reference_loss, [w.numpy() for w in weights])
    for gradient, expected_gradient in zip(gradients, expected):
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-6, atol=1e-6)


def conv4_forward_backward(backbone, images):
    with tf.GradientTape() as tape:
        features = backbone(images, training=True)
        loss = tf.reduce_sum(features * tf.sin(tf.range(features.shape[-1], dtype=features.dtype)))
    return loss, tape.gradient(loss, backbone.trainable_variables)


def test_conv4_training_step_is_unchanged(monkeypatch):
    images = tf.constant(np.random.default_rng(3).uniform(size=(12, 16, 16, 1)).astype(np.float32))
    backbone = Conv4Backbone(channels=4)
    backbone.build(images.shape)
    assert can_normalize_on_patches(backbone.convs[0], backbone.norms[0], images, training=True)
    loss, gradients = conv4_forward_backward(backbone, images)
    moving = [norm.moving_variance.numpy() for norm in backbone.norms]
    for norm in backbone.norms:
        norm.moving_mean.assign(tf.zeros_like(norm.moving_mean))
        norm.moving_variance.assign(tf.ones_like(norm.moving_variance))
    monkeypatch.setattr(conv4, "can_normalize_on_patches", lambda *args: False)
    expected_loss, expected_gradients = conv4_forward_backward(backbone, images)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    for gradient, expected_gradient in zip(gradients, expected_gradients):
        if gradient is None:  # the first conv's bias: its gradient is exactly zero on patches
            continue
        np.testing.assert_allclose(gradient, expected_gradient, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(moving[0], backbone.norms[0].moving_variance, rtol=1e-5)


@pytest.mark.parametrize(
    "change",
    [
        {"training": False},
        {"frozen": True},
        {"kernel_size": 5},
        {"strides": 2},
        {"channels": 8},
        {"dtype": "float64"},
        {"synchronized": True},  # statistics over every replica's batch: the Keras layer all-reduces them
    ],
)
def test_other_cases_use_the_layers(change):
    conv = keras.layers.Conv2D(
        4, change.get("kernel_size", 3), strides=change.get("strides", 1), padding="same", dtype=change.get("dtype")
    )
    norm = BatchNormalization(dtype=change.get("dtype"), synchronized=change.get("synchronized", False))
    norm.trainable = not change.get("frozen", False)
    images = tf.zeros([2, 8, 8, change.get("channels", 1)], dtype=change.get("dtype", "float32"))
    conv.build(images.shape)
    assert not can_normalize_on_patches(conv, norm, images, training=change.get("training", True))

"""`ResNet12Backbone` and `ResidualBlock`: shapes, parameter counts, dropout variants, saving, input checks."""

import keras
import numpy as np
import pytest

from kerasrwm.models.backbones import ResNet12Backbone
from kerasrwm.models.backbones.residual_block import ResidualBlock
from tests.layer_testing import run_layer_test


def images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def block_params(c_in, c_out):
    """Three 3x3 convs and a 1x1 shortcut (no bias), four BatchNorms of 4 weights per channel."""
    return 9 * c_in * c_out + 2 * 9 * c_out * c_out + c_in * c_out + 4 * 4 * c_out


@pytest.mark.parametrize("channels", [(64, 96, 128, 256), (64, 128, 256, 512)])
def test_parameter_count(channels):
    backbone = ResNet12Backbone(channels=channels)
    backbone.build((None, 84, 84, 3))
    widths = (3,) + channels
    expected = sum(block_params(c_in, c_out) for c_in, c_out in zip(widths, widths[1:]))
    assert backbone.count_params() == expected
    assert channels != (64, 96, 128, 256) or expected == 2_236_800
    non_trainable = sum(int(np.prod(weight.shape)) for weight in backbone.non_trainable_weights)
    assert non_trainable == 4 * 2 * sum(channels)  # moving mean and variance of four BatchNorms


@pytest.mark.parametrize("size, spatial", [(84, 5), (32, 2)])
def test_spatial_size_before_pooling(size, spatial):
    channels = (2, 3, 4, 5)
    backbone = ResNet12Backbone(channels=channels)
    shape = (None, size, size, 3)
    for block in backbone.blocks:
        shape = block.compute_output_shape(shape)
    assert shape == (None, spatial, spatial, 5)
    assert backbone(images((2, size, size, 3))).shape == (2, 5)
    assert backbone.compute_output_shape((None, size, size, 3)) == (None, 5)


def manual_block(block, inputs, slope, masks=(1.0, 1.0)):
    """NumPy forward pass of `block` in inference mode, `masks` standing in for the in-block dropouts."""

    def norm(layer, x):
        scale = layer.gamma.numpy() / np.sqrt(layer.moving_variance.numpy() + 1e-5)
        return (x - layer.moving_mean.numpy()) * scale + layer.beta.numpy()

    def leaky(x):
        return np.where(x > 0, x, slope * x)

    def conv(layer, x):
        return keras.ops.convert_to_numpy(layer(x))

    conv_1, conv_2, conv_3, shortcut = block.convs
    norm_1, norm_2, norm_3, shortcut_norm = block.norms
    hidden = leaky(norm(norm_1, conv(conv_1, inputs))) * masks[0]
    hidden = leaky(norm(norm_2, conv(conv_2, hidden))) * masks[1]
    hidden = norm(norm_3, conv(conv_3, hidden))
    # The 1x1 shortcut is a per-pixel matrix product.
    residual = norm(shortcut_norm, inputs @ shortcut.kernel.numpy()[0, 0])
    hidden = leaky(hidden + residual)
    batch, height, width, channels = hidden.shape
    return hidden.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


def test_block_matches_manual_computation():
    block = ResidualBlock(3, leaky_relu_slope=0.2)
    inputs = images((2, 4, 6, 2))
    outputs = block(inputs, training=False).numpy()
    np.testing.assert_allclose(outputs, manual_block(block, inputs, 0.2), rtol=1e-5, atol=1e-5)
    assert all(not layer.use_bias for layer in block.convs)


def test_in_block_dropout_follows_first_two_activations():
    block = ResidualBlock(3, dropout=0.5, in_block_dropout=True)
    inputs = images((2, 4, 4, 2))
    block.build(inputs.shape)
    rng = np.random.default_rng(1)
    masks = [rng.integers(0, 2, size=(2, 4, 4, 3)).astype(np.float32) * 2.0 for _ in range(2)]
    # Fixed masks in place of the in-block dropouts, so that inference mode still applies them.
    block.dropouts[1] = keras.layers.Lambda(lambda x: x * masks[0])
    block.dropouts[2] = keras.layers.Lambda(lambda x: x * masks[1])
    outputs = block(inputs, training=False).numpy()
    np.testing.assert_allclose(outputs, manual_block(block, inputs, 0.1, masks), rtol=1e-5, atol=1e-5)
    assert not np.allclose(outputs, manual_block(block, inputs, 0.1))


def test_kernel_initializer_is_kaiming_fan_out():
    block = ResidualBlock(64)
    block.build((None, 8, 8, 64))
    kernel = block.convs[1].kernel.numpy()
    expected_std = np.sqrt(2.0 / (1.0 + 0.1**2) / (3 * 3 * 64))
    np.testing.assert_allclose(kernel.std(), expected_std, rtol=0.03)


@pytest.mark.parametrize(
    "dropout_type, num_dropouts, spatial",
    [("base", 1, False), ("inblock", 3, False), ("2d", 1, True), ("2d_inblock", 3, True)],
)
def test_dropout_variants(dropout_type, num_dropouts, spatial):
    backbone = ResNet12Backbone(channels=(4, 4), dropout=0.3, dropout_type=dropout_type)
    for block in backbone.blocks:
        assert len(block.dropouts) == num_dropouts
        expected = keras.layers.SpatialDropout2D if spatial else keras.layers.Dropout
        assert all(type(layer) is expected and layer.rate == 0.3 for layer in block.dropouts)
    inputs = images((4, 8, 8, 3))
    np.testing.assert_allclose(backbone(inputs), backbone(inputs, training=False))
    assert not np.allclose(backbone(inputs, training=True), backbone(inputs, training=True))


def test_batch_norm_training_and_inference():
    backbone = ResNet12Backbone(channels=(4, 4))
    inputs = images((6, 8, 8, 3)) + 3.0
    inference = backbone(inputs, training=False).numpy()
    training = backbone(inputs, training=True).numpy()
    assert not np.allclose(training, inference)
    norm = backbone.blocks[0].norms[3]  # the shortcut's BatchNorm, fed directly by the input
    shortcut = keras.ops.convert_to_numpy(backbone.blocks[0].convs[3](inputs))
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.1 * shortcut.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_layer_harness_after_training_moved_the_batch_statistics(tmp_path):
    backbone = ResNet12Backbone(channels=(3, 5), dropout=0.1, dropout_type="2d_inblock", name="resnet12")
    data = images((3, 8, 8, 3))
    backbone(data, training=True)
    moving_statistics = 4 * 2 * (3 + 5)  # moving mean and variance of four BatchNorms per block
    run_layer_test(backbone, data, tmp_path, (3, 5), block_params(3, 3) + block_params(3, 5) - moving_statistics)
    assert backbone.channels == (3, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": ()}, r"`channels`.*\(\)"),
        ({"channels": 64}, "`channels`.*64"),
        ({"channels": (64, 0)}, "`channels`.*0"),
        ({"dropout": -0.1}, "`dropout`.*-0.1"),
        ({"dropout_type": "spatial"}, "`dropout_type`.*'spatial'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet12Backbone(**kwargs)


@pytest.mark.parametrize(
    "inputs, match",
    [
        (np.zeros((2, 8, 8, 3, 1), np.float32), r"`inputs`.*rank 4.*\(2, 8, 8, 3, 1\)"),
        (np.zeros((2, 8, 8, 3), np.int32), "`inputs`.*floating.*int32"),
        (np.zeros((2, 8, 3, 3), np.float32), r"`inputs`.*4x4.*\(2, 8, 3, 3\)"),
    ],
)
def test_bad_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        ResNet12Backbone(channels=(2, 2))(inputs)

"""`Conv4Backbone`: sizes and parameter counts of the reference, BatchNorm modes, saving, input checks."""

import keras
import numpy as np
import pytest

from kerasrwm.models.backbones import Conv4Backbone
from kerasrwm.models.backbones import ResNet12Backbone
from kerasrwm.models.backbones import get_backbone
from tests.layer_testing import CONV4_BIASES_BEFORE_BATCH_NORM
from tests.layer_testing import run_layer_test
from tests.layer_testing import trainable_count


def images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_parameter_count_matches_reference():
    backbone = Conv4Backbone(channels=32)
    backbone.build((None, 84, 84, 3))
    # Per block: 3x3 kernel + bias, BatchNorm gamma + beta (trainable), moving mean + variance.
    first = 3 * 3 * 3 * 32 + 32 + 2 * 32
    other = 3 * 3 * 32 * 32 + 32 + 2 * 32
    assert trainable_count(backbone) == first + 3 * other == 28_896
    assert backbone.count_params() == 28_896 + 4 * 2 * 32


@pytest.mark.parametrize(
    "input_shape, channels, features",
    [((84, 84, 3), 32, 800), ((28, 28, 1), 64, 64), ((32, 32, 3), 32, 128), ((16, 20, 2), 4, 4)],
)
def test_feature_size(input_shape, channels, features):
    backbone = Conv4Backbone(channels=channels)
    assert backbone.compute_output_shape((None,) + input_shape) == (None, features)
    assert backbone(images((2,) + input_shape)).shape == (2, features)


def test_matches_manual_block_composition():
    backbone = Conv4Backbone(channels=3)
    inputs = images((2, 16, 16, 2))
    hidden = inputs
    outputs = backbone(inputs, training=False)
    for conv, norm in zip(backbone.convs, backbone.norms):
        hidden = keras.ops.convert_to_numpy(conv(hidden))
        hidden = (hidden - norm.moving_mean.numpy()) / np.sqrt(norm.moving_variance.numpy() + 1e-5)
        hidden = hidden * norm.gamma.numpy() + norm.beta.numpy()
        hidden = hidden.reshape(2, hidden.shape[1] // 2, 2, hidden.shape[2] // 2, 2, 3).max(axis=(2, 4))
        hidden = np.maximum(hidden, 0.0)
    np.testing.assert_allclose(outputs, hidden.reshape(2, -1), rtol=1e-5, atol=1e-5)


def test_kernel_initializer_is_torch_default():
    backbone = Conv4Backbone(channels=64)
    backbone.build((None, 16, 16, 64))
    kernel = backbone.convs[1].kernel.numpy()
    bound = 1.0 / np.sqrt(3 * 3 * 64)
    assert np.abs(kernel).max() <= bound
    assert np.abs(kernel).max() > 0.95 * bound
    np.testing.assert_allclose(kernel.std(), bound / np.sqrt(3.0), rtol=0.05)


def test_batch_norm_training_and_inference():
    backbone = Conv4Backbone(channels=4)
    inputs = images((8, 16, 16, 3)) * 3.0 + 2.0
    norm = backbone.norms[0]
    inference = backbone(inputs, training=False).numpy()
    assert np.allclose(norm.moving_mean.numpy(), 0.0)
    conv_out = backbone.convs[0](inputs).numpy()
    training = backbone(inputs, training=True).numpy()
    assert not np.allclose(training, inference)
    # One update with Keras momentum 0.9 (PyTorch 0.1): moving_mean = 0.1 * batch mean.
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.1 * conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(backbone(inputs, training=False).numpy(), backbone(inputs).numpy())


@pytest.mark.parametrize("dropout_type, zero_maps", [("base", False), ("2d", True)])
def test_dropout_types(dropout_type, zero_maps):
    backbone = Conv4Backbone(channels=32, dropout=0.5, dropout_type=dropout_type)
    inputs = images((4, 16, 16, 3))
    # Features are 1x1 spatially, so element-wise and spatial dropout look alike here; check block 0.
    backbone(inputs, training=False)
    hidden = backbone.pool(backbone.norms[0](backbone.convs[0](inputs), training=False))
    dropped = backbone.dropouts[0](hidden, training=True).numpy()
    per_map = (dropped == 0).all(axis=(1, 2))
    assert per_map.any() == zero_maps
    assert 0.3 < (dropped == 0).mean() < 0.7
    np.testing.assert_allclose(backbone(inputs, training=False), backbone(inputs, training=False))


def test_layer_harness_after_training_moved_the_batch_statistics(tmp_path):
    backbone = Conv4Backbone(channels=4, dropout=0.2, dropout_type="2d", name="conv4")
    data = images((3, 16, 20, 3))
    backbone(data, training=True)  # move the BatchNorm statistics away from their initial values
    first, other = 3 * 3 * 3 * 4 + 4 + 2 * 4, 3 * 3 * 4 * 4 + 4 + 2 * 4
    expected_shape = (3, (16 // 16) * (20 // 16) * 4)
    run_layer_test(
        backbone,
        data,
        tmp_path,
        expected_shape,
        first + 3 * other,
        weights_without_gradient=CONV4_BIASES_BEFORE_BATCH_NORM,
    )


def test_config_round_trip():
    backbone = Conv4Backbone(channels=8, dropout=0.1, batch_norm_momentum=0.5, batch_norm_epsilon=1e-3)
    config = backbone.get_config()
    assert {key: config[key] for key in ("channels", "dropout", "dropout_type")} == {
        "channels": 8,
        "dropout": 0.1,
        "dropout_type": "base",
    }
    clone = Conv4Backbone.from_config(config)
    assert clone.norms[0].momentum == 0.5 and clone.norms[0].epsilon == 1e-3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"channels": 0}, "`channels`.*0"),
        ({"dropout": 1.0}, "`dropout`.*1.0"),
        ({"dropout_type": "inblock"}, "`dropout_type`.*'inblock'"),
        ({"batch_norm_momentum": 1.5}, "`batch_norm_momentum`.*1.5"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv4Backbone(**kwargs)


@pytest.mark.parametrize(
    "inputs, match",
    [
        (np.zeros((2, 16, 16), np.float32), r"`inputs`.*rank 4.*\(2, 16, 16\)"),
        (np.zeros((2, 16, 16, 3), np.uint8), "`inputs`.*floating.*uint8"),
        (np.zeros((2, 15, 32, 3), np.float32), r"`inputs`.*16x16.*\(2, 15, 32, 3\)"),
    ],
)
def test_bad_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        Conv4Backbone(channels=4)(inputs)


def test_get_backbone():
    conv4 = get_backbone("conv4", channels=64, dropout=0.1)
    assert isinstance(conv4, Conv4Backbone) and conv4.channels == 64 and conv4.dropout == 0.1
    assert isinstance(get_backbone("resnet12"), ResNet12Backbone)
    layer = keras.layers.Dense(3)
    assert get_backbone(layer) is layer
    with pytest.raises(ValueError, match=r"`backbone`.*'conv4', 'resnet12'.*'vgg'"):
        get_backbone("vgg")
    with pytest.raises(ValueError, match=r"`backbone`.*'conv4', 'resnet12'.*None"):
        get_backbone(None)
    with pytest.raises(ValueError, match="`backbone`.*channels"):
        get_backbone(layer, channels=4)

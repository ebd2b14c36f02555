"""`kerasrwm.layers.FeedForward` against a NumPy computation of the reference block."""

import numpy as np
import tensorflow as tf

from kerasrwm.layers import FeedForward
from reference.normalization import layer_norm
from tests.layer_testing import feed_forward_parameters
from tests.layer_testing import run_layer_test


def test_matches_numpy_pre_layer_norm_block():
    block = FeedForward(ff_dim=12)
    inputs = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    block.build(inputs.shape)
    block.layer_norm.gamma.assign(np.linspace(0.5, 1.5, 8))
    hidden = np.maximum(
        layer_norm(inputs, block.layer_norm.gamma.numpy(), 0.0, 1e-5) @ block.hidden.kernel.numpy()
        + block.hidden.bias.numpy(),
        0.0,
    )
    expected = inputs + hidden @ block.projection.kernel.numpy() + block.projection.bias.numpy()
    np.testing.assert_allclose(block(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_parameter_count_matches_reference():
    block = FeedForward(ff_dim=2048)
    block.build((None, None, 256))
    assert block.count_params() == 1_051_392 == feed_forward_parameters(256, 2048)


def test_layer_harness(tmp_path):
    block = FeedForward(ff_dim=12, dropout=0.1)
    inputs = tf.constant(np.random.default_rng(1).normal(size=(3, 5, 8)).astype(np.float32))
    run_layer_test(block, inputs, tmp_path, (3, 5, 8), feed_forward_parameters(8, 12))


def test_mask_passes_through_unchanged():
    mask = tf.constant([[True, True, False], [True, False, False]])
    assert FeedForward(ff_dim=4).compute_mask(tf.zeros([2, 3, 8]), mask) is mask

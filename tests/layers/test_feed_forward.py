"""`kerasrwm.layers.FeedForward` against a NumPy computation of the reference block."""

import numpy as np

from kerasrwm.layers import FeedForward
from reference.normalization import layer_norm


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
    assert block.count_params() == 1_051_392

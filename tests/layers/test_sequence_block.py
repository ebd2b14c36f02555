"""`kerasrwm.layers.SequenceBlock`: composition, state pass-through, serialization, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.layers import DeltaNet
from kerasrwm.layers import ResidualLSTM
from kerasrwm.layers import SequenceBlock

SEQUENCE_LAYERS = {
    "deltanet": lambda: DeltaNet(num_heads=2, head_dim=4, return_state=True),
    "lstm": lambda: ResidualLSTM(return_state=True),
}


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_block_is_feed_forward_of_the_sequence_layer_and_passes_state(name):
    block = SequenceBlock(SEQUENCE_LAYERS[name](), ff_dim=16, return_state=True)
    inputs = tf.constant(np.random.default_rng(0).normal(size=(2, 6, 8)).astype(np.float32))
    outputs, state = block(inputs)
    hidden, expected_state = block.sequence_layer(inputs)
    np.testing.assert_allclose(outputs.numpy(), block.feed_forward(hidden).numpy(), rtol=1e-6)
    for a, b in zip(state, expected_state):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    continued, _ = block(inputs[:, 3:], initial_state=block.sequence_layer(inputs[:, :3])[1])
    np.testing.assert_allclose(continued.numpy(), outputs.numpy()[:, 3:], rtol=1e-4, atol=1e-5)


def test_parameter_count_is_delta_net_plus_feed_forward():
    block = SequenceBlock(DeltaNet(num_heads=16, head_dim=16, return_state=True), ff_dim=2048)
    block.build((None, None, 256))
    assert block.count_params() == 266_752 + 1_051_392


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_serialization_round_trip(tmp_path, name):
    inputs = keras.Input((None, 8))
    hidden, state = SequenceBlock(SEQUENCE_LAYERS[name](), 16, dropout=0.2, return_state=True)(inputs)
    outputs = SequenceBlock(SEQUENCE_LAYERS[name](), 16)(hidden, initial_state=state)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "block.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    data = np.random.default_rng(1).normal(size=(3, 5, 8)).astype(np.float32)
    np.testing.assert_array_equal(restored(data).numpy(), model(data).numpy())
    config = restored.layers[1].get_config()
    assert config["ff_dim"] == 16 and config["dropout"] == 0.2
    assert type(restored.layers[1].sequence_layer) is type(SEQUENCE_LAYERS[name]())


def test_sequence_layer_must_return_state():
    with pytest.raises(ValueError, match=r"`sequence_layer` must be a layer constructed with return_state=True"):
        SequenceBlock(DeltaNet(num_heads=2, head_dim=4), ff_dim=8)

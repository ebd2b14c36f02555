"""`kerasrwm.layers.SequenceBlock`: composition, state pass-through, serialization, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.layers import DeltaNet
from kerasrwm.layers import ResidualLSTM
from kerasrwm.layers import SequenceBlock
from tests.layer_testing import delta_net_parameters
from tests.layer_testing import feed_forward_parameters
from tests.layer_testing import residual_lstm_parameters
from tests.layer_testing import run_layer_test
from tests.layer_testing import stacked_pair_round_trip
from tests.layers.block_wiring import assert_feed_forward_of_sequence_layer

SEQUENCE_LAYERS = {
    "deltanet": lambda: DeltaNet(num_heads=2, head_dim=4, return_state=True),
    "lstm": lambda: ResidualLSTM(return_state=True),
}


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_block_is_feed_forward_of_the_sequence_layer_and_passes_state(name):
    block = SequenceBlock(SEQUENCE_LAYERS[name](), ff_dim=16, return_state=True)
    assert_feed_forward_of_sequence_layer(block, block.sequence_layer)


def test_parameter_count_is_delta_net_plus_feed_forward():
    block = SequenceBlock(DeltaNet(num_heads=16, head_dim=16, return_state=True), ff_dim=2048)
    block.build((None, None, 256))
    assert block.count_params() == 266_752 + 1_051_392


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_layer_harness_with_state(tmp_path, name):
    block = SequenceBlock(SEQUENCE_LAYERS[name](), 12, dropout=0.1, return_state=True)
    inputs = tf.constant(np.random.default_rng(4).normal(size=(3, 6, 8)).astype(np.float32))
    sequence_layer = {"deltanet": delta_net_parameters(2, 4, 8), "lstm": residual_lstm_parameters(8)}[name]
    state_shapes = {"deltanet": [(3, 2, 4, 4)], "lstm": [(3, 8), (3, 8)]}[name]
    expected = sequence_layer + feed_forward_parameters(8, 12)
    run_layer_test(block, inputs, tmp_path, (3, 6, 8), expected, state_shapes)


@pytest.mark.parametrize("name", sorted(SEQUENCE_LAYERS))
def test_serialization_round_trip(tmp_path, name):
    first = SequenceBlock(SEQUENCE_LAYERS[name](), 16, dropout=0.2, return_state=True)
    restored = stacked_pair_round_trip(first, SequenceBlock(SEQUENCE_LAYERS[name](), 16), 8, tmp_path)
    config = restored.get_config()
    assert config["ff_dim"] == 16 and config["dropout"] == 0.2
    assert type(restored.sequence_layer) is type(SEQUENCE_LAYERS[name]())


@pytest.mark.parametrize(
    "sequence_layer",
    [
        DeltaNet(num_heads=2, head_dim=4),
        DeltaNet(num_heads=2, head_dim=4, return_state=True, go_backwards=True),
        ResidualLSTM(return_state=True, return_sequences=False),
        ResidualLSTM(return_state=True, stateful=True),
    ],
)
def test_sequence_layer_must_return_state_and_leave_the_conventions_to_the_block(sequence_layer):
    with pytest.raises(ValueError, match=r"`sequence_layer` must be a kerasrwm RecurrentLayer constructed with"):
        SequenceBlock(sequence_layer, ff_dim=8)


def test_sequence_layer_must_be_a_recurrent_layer():
    with pytest.raises(ValueError, match=r"`sequence_layer` must be a kerasrwm RecurrentLayer .* received: <LSTM"):
        SequenceBlock(keras.layers.LSTM(8, return_state=True, return_sequences=True), ff_dim=8)

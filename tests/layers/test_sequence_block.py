"""`kerasrwm.layers.SequenceBlock`: composition, state pass-through, serialization, bad input."""

import pytest

from kerasrwm.layers import DeltaNet
from kerasrwm.layers import ResidualLSTM
from kerasrwm.layers import SequenceBlock
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
def test_serialization_round_trip(tmp_path, name):
    first = SequenceBlock(SEQUENCE_LAYERS[name](), 16, dropout=0.2, return_state=True)
    restored = stacked_pair_round_trip(first, SequenceBlock(SEQUENCE_LAYERS[name](), 16), 8, tmp_path)
    config = restored.get_config()
    assert config["ff_dim"] == 16 and config["dropout"] == 0.2
    assert type(restored.sequence_layer) is type(SEQUENCE_LAYERS[name]())


def test_sequence_layer_must_return_state():
    with pytest.raises(ValueError, match=r"`sequence_layer` must be a layer constructed with return_state=True"):
        SequenceBlock(DeltaNet(num_heads=2, head_dim=4), ff_dim=8)

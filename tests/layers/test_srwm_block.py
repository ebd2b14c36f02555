"""`kerasrwm.SRWMBlock`: composition, state pass-through and serialization."""

import io
import zipfile

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrwm
from kerasrwm.layers.srwm import STATE_NAMES
from tests.layer_testing import IMPLEMENTATIONS
from tests.layer_testing import feed_forward_parameters
from tests.layer_testing import run_layer_test
from tests.layer_testing import srwm_parameters
from tests.layer_testing import stacked_pair_round_trip
from tests.layers.block_wiring import assert_feed_forward_of_sequence_layer


def test_block_is_feed_forward_of_srwm_and_passes_state():
    block = kerasrwm.SRWMBlock(num_heads=2, head_dim=4, ff_dim=16, implementation="loop", return_state=True)
    assert_feed_forward_of_sequence_layer(block, block.srwm)


def test_parameter_count_is_srwm_plus_feed_forward():
    block = kerasrwm.SRWMBlock(num_heads=16, head_dim=16, ff_dim=2048)
    block.build((None, None, 256))
    assert block.count_params() == 79_360 + 1_051_392


def test_serialization_round_trip_of_a_stack(tmp_path):
    first = kerasrwm.SRWMBlock(2, 4, 16, dropout=0.2, return_state=True, implementation="loop")
    restored = stacked_pair_round_trip(first, kerasrwm.SRWMBlock(2, 4, 16, implementation="loop"), 8, tmp_path)
    assert restored.get_config()["ff_dim"] == 16


def test_hand_off_gradient_reaches_the_srwm_and_round_trips():
    block = kerasrwm.SRWMBlock(2, 4, 16, hand_off_gradient="reference")
    assert block.srwm.hand_off_gradient == "reference"
    restored = kerasrwm.SRWMBlock.from_config(block.get_config())
    assert restored.srwm.hand_off_gradient == restored.hand_off_gradient == "reference"


def harness_block(implementation):
    block = kerasrwm.SRWMBlock(2, 8, 12, dropout=0.1, implementation=implementation, return_state=True)
    return block, tf.constant(np.random.default_rng(2).normal(size=(3, 6, 16)).astype(np.float32))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_layer_harness_with_state(tmp_path, implementation):
    block, inputs = harness_block(implementation)
    expected = srwm_parameters(2, 8) + feed_forward_parameters(16, 12)
    state_shapes = [(3, 2, 8, 8)] * 3 + [(3, 2, 8, 4)]
    run_layer_test(block, inputs, tmp_path, (3, 6, 16), expected, state_shapes)
    assert srwm_parameters(16, 16) + feed_forward_parameters(256, 2048) == 79_360 + 1_051_392


def test_weights_keep_their_names_and_their_place_in_keras_files(tmp_path):
    """Models saved before `SRWMBlock` shared `SequenceBlock`'s wiring store the SRWM under `srwm`."""
    inputs = keras.Input((None, 8))
    model = keras.Model(inputs, kerasrwm.SRWMBlock(2, 4, 16, implementation="loop", name="srwm_block_0")(inputs))
    assert [weight.path for weight in model.weights[:4]] == [f"srwm_block_0/srwm/{name}" for name in STATE_NAMES]
    path = tmp_path / "block.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        assert weights["layers/srwm_block/srwm/vars"].keys() == {"0", "1", "2", "3"}

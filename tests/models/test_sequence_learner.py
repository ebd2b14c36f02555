"""`SequenceLearner`: the reference architecture's parameter count, the hand-off gradient mode."""

import json
from pathlib import Path

import numpy as np
import pytest

from kerasrwm.models import BootstrappedLearner
from kerasrwm.models.sequence_learner import SequenceLearner
from kerasrwm.training.experiment import LEARNER_KEYS
from kerasrwm.training.experiment import make_config

REFERENCE_CONFIG = Path(__file__).parents[2] / "examples" / "image_folder" / "config.json"


def test_reference_example_builds_the_authors_parameter_count():
    """The authors' mini-ImageNet bootstrapping model (D=256, 16 heads, 3 layers, ff 2048, Conv-4 with
    32 channels on 84x84x3, 5-way) has conv 28,896 + input projection 206,336
    + 3 x (SRWM 79,360 + feed-forward 1,051,392) + classifier 1,285 = 3,628,773 trainable weights."""
    config = make_config(json.loads(REFERENCE_CONFIG.read_text()))
    model = BootstrappedLearner(**{key: config[key] for key in LEARNER_KEYS})
    model.learner.build((None, None, 84, 84, 3))
    trainable = sum(int(np.prod(weight.shape)) for weight in model.learner.trainable_weights)
    assert trainable == 3_628_773


def test_hand_off_gradient_reaches_every_srwm_block_and_round_trips():
    learner = SequenceLearner(3, hidden_size=8, num_layers=2, num_heads=2, ff_dim=8, hand_off_gradient="reference")
    assert [block.srwm.hand_off_gradient for block in learner.blocks] == ["reference", "reference"]
    assert SequenceLearner.from_config(learner.get_config()).blocks[1].srwm.hand_off_gradient == "reference"


def test_reference_hand_off_gradient_needs_the_srwm():
    with pytest.raises(ValueError, match="hand_off_gradient.*sequence_layer='deltanet'"):
        SequenceLearner(3, hidden_size=8, num_heads=2, sequence_layer="deltanet", hand_off_gradient="reference")

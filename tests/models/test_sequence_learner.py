"""`SequenceLearner`: the reference architecture's parameter count, the hand-off gradient mode."""

import json
from pathlib import Path

import numpy as np
import pytest

from kerasrwm.models import SequenceLearner
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS
from kerasrwm.training.configuration import make_config
from kerasrwm.training.tasks import get_task

REFERENCE_CONFIG = Path(__file__).parents[2] / "examples" / "image_folder" / "config.json"


def test_reference_example_builds_the_authors_parameter_count():
    """The authors' mini-ImageNet bootstrapping model (D=256, 16 heads, 3 layers, ff 2048, Conv-4 with
    32 channels on 84x84x3, 5-way) has conv 28,896 + input projection 206,336
    + 3 x (SRWM 79,360 + feed-forward 1,051,392) + classifier 1,285 = 3,628,773 trainable weights."""
    config = make_config(json.loads(REFERENCE_CONFIG.read_text()))
    model = get_task("bootstrap").learner(config)
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


@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_the_dtype_policy_reaches_the_backbone_and_every_block(sequence_layer):
    learner = SequenceLearner(
        3,
        backbone_channels=4,
        hidden_size=8,
        num_layers=2,
        num_heads=2,
        ff_dim=8,
        sequence_layer=sequence_layer,
        implementation="loop",
        dtype="mixed_bfloat16",
    )
    learner.build((None, None, 16, 16, 1))
    # Checked on the layers, not by running them: oneDNN has no bfloat16 convolution on AVX2 CPUs.
    sublayers = list(learner._flatten_layers(include_self=False))
    policies = {layer.path: (layer.dtype_policy.name, layer.compute_dtype) for layer in sublayers}
    assert len(policies) > 10 and set(policies.values()) == {("mixed_bfloat16", "bfloat16")}, policies
    assert all(weight.dtype == "float32" for weight in learner.weights)

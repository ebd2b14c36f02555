"""`SequenceLearner`: the reference architecture's parameter count."""

import json
from pathlib import Path

import numpy as np

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

"""The shared layer harness on the learners, through `model(inputs)` and `.keras` files only.

Kept apart from the learners' own tests (`test_bootstrapped_learner.py`, `test_delayed_label_learner.py`),
which follow the learners' training interface; this file needs only a call and a save and load.
"""

import keras
import pytest

from kerasrwm.models import DelayedLabelLearner
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS
from tests.layer_testing import CONV4_BIASES_BEFORE_BATCH_NORM
from tests.layer_testing import IMPLEMENTATIONS
from tests.layer_testing import check_mixed_precision
from tests.layer_testing import feed_forward_parameters
from tests.layer_testing import run_layer_test
from tests.layer_testing import srwm_parameters
from tests.models.episodes import random_episode_batch
from tests.models.learners import tiny_learner

CONV4_PARAMETERS = 516
"""Conv-4 with 4 channels on one input channel: 48 + 3 x 156 weights; 4 features on 16x16 images."""


def learner_parameters(features, n_way, hidden_size, num_layers, num_heads, ff_dim):
    """Input projection (features + one-hot labels -> D, bias), the SRWM blocks, the classifier (bias)."""
    block = srwm_parameters(num_heads, hidden_size // num_heads) + feed_forward_parameters(hidden_size, ff_dim)
    return (features + n_way + 1) * hidden_size + num_layers * block + (hidden_size + 1) * n_way


def bootstrapped(implementation):
    model = tiny_learner(beta2=5.0, hidden_size=16, num_layers=1, implementation=implementation)
    return model, random_episode_batch(image_shape=(16, 16, 1), seed=6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_bootstrapped_learner(tmp_path, implementation):
    model, batch = bootstrapped(implementation)
    expected = CONV4_PARAMETERS + learner_parameters(4, 3, 16, 1, 2, 8)
    run_layer_test(
        model,
        batch,
        tmp_path,
        (2, 2, 3),
        expected,
        run_mixed_precision_check=False,  # below, per implementation
        weights_without_gradient=CONV4_BIASES_BEFORE_BATCH_NORM,
    )
    assert learner_parameters(800, 5, 256, 3, 16, 2048) + 28_896 == 3_628_773  # the reference model


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_bootstrapped_learner_mixed_precision(implementation):
    model, batch = bootstrapped(implementation)
    model(batch)
    check_mixed_precision(model, batch)


def delayed_label(sequence_layer):
    model = DelayedLabelLearner(
        n_way=3,
        num_occurrences=2,
        backbone="conv4",
        backbone_channels=4,
        hidden_size=16,
        num_layers=1,
        num_heads=2,
        ff_dim=8,
        implementation="loop",
        sequence_layer=sequence_layer,
    )
    rng = keras.random.SeedGenerator(3)
    batch = {
        "images": keras.random.normal((2, 6, 16, 16, 1), seed=rng),
        "labels": keras.ops.convert_to_tensor([[0, 1, 2, 0, 1, 2], [2, 2, 1, 0, 1, 0]], "int32"),
    }
    return model, batch


@pytest.mark.parametrize(
    "sequence_layer",
    [name if name == "srwm" else pytest.param(name, marks=pytest.mark.slow) for name in SEQUENCE_LAYERS],
)
def test_delayed_label_learner(tmp_path, sequence_layer):
    model, batch = delayed_label(sequence_layer)
    sequence_layers = {
        "srwm": srwm_parameters(2, 8),
        "deltanet": 2 * 16 + 16 * 2 * (3 * 8 + 1) + 2 * 8 * 16,
        "lstm": 2 * 16 + 8 * 16 * 16 + 4 * 16,
    }
    expected = (
        CONV4_PARAMETERS
        + (4 + 3 + 1) * 16
        + sequence_layers[sequence_layer]
        + feed_forward_parameters(16, 8)
        + (16 + 1) * 3
    )
    run_layer_test(
        model,
        batch,
        tmp_path,
        (2, 6, 3),
        expected,
        run_mixed_precision_check=False,  # below
        weights_without_gradient=CONV4_BIASES_BEFORE_BATCH_NORM,
    )


def test_delayed_label_learner_mixed_precision():
    model, batch = delayed_label("srwm")
    model(batch)
    check_mixed_precision(model, batch)

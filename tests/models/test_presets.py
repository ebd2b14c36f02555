"""The mini-ImageNet bootstrapping preset against the reference script (`srwm_reference.md` §8.1)."""

import numpy as np
import pytest

from kerasrwm.models import BootstrappedLearner
from kerasrwm.models.presets import LEARNER_ARGUMENTS
from kerasrwm.models.presets import MINI_IMAGENET_BOOTSTRAP
from kerasrwm.models.presets import get_preset


def test_mini_imagenet_bootstrap_matches_reference_script():
    assert get_preset("mini_imagenet_bootstrap") == {
        "n_way": 5,
        "hidden_size": 256,
        "num_layers": 3,
        "num_heads": 16,
        "ff_dim": 8 * 256,
        "dropout": 0.1,
        "backbone": "conv4",
        "backbone_channels": 32,
        "vision_dropout": 0.1,
        "beta1": 1.0,
        "beta2": 10.0,
        "beta3": 1.0,
        "distill": "kl",
        "temperature": 1.0,
        "unknown_label": "class0",
        "k_shot": 10,
        "k_extra": 5,
        "n_queries": 1,
        "batch_size": 16,
        "image_size": (84, 84, 3),
        "warmup_steps": 5000,
        "steps": 600_000,
        "validate_every": 1000,
    }


def test_get_preset_returns_a_copy():
    preset = get_preset("mini_imagenet_bootstrap")
    preset["k_shot"] = 1
    assert MINI_IMAGENET_BOOTSTRAP["k_shot"] == 10


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"`name`.*'mini_imagenet_bootstrap'.*'omniglot'"):
        get_preset("omniglot")


def test_learner_arguments_build_the_reference_model():
    preset = get_preset("mini_imagenet_bootstrap")
    model = BootstrappedLearner(**{key: preset[key] for key in LEARNER_ARGUMENTS})
    model.learner.build((None, None) + preset["image_size"])
    # The reference's parameter count (srwm_reference.md §3.3), trainable weights only.
    trainable = sum(int(np.prod(weight.shape)) for weight in model.learner.trainable_weights)
    assert trainable == 3_628_773

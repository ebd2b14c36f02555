"""`tiny_learner`: the small `BootstrappedLearner` of the tests, with per-test overrides."""

import kerasrwm

TINY_ARGUMENTS = {
    "n_way": 3,
    "backbone": "conv4",
    "backbone_channels": 4,
    "hidden_size": 8,
    "num_layers": 2,
    "num_heads": 2,
    "ff_dim": 8,
}
"""3-way episodes, Conv-4 with 4 channels, two SRWM blocks of width 8 with 2 heads and ff_dim 8."""


def tiny_learner(**overrides):
    """An unbuilt `BootstrappedLearner` of `TINY_ARGUMENTS` updated with `overrides`.

    Args:
        **overrides: `BootstrappedLearner` arguments that replace or add to `TINY_ARGUMENTS` (pass a new
            `keras.layers.Flatten()` as `backbone` for a learner on flattened pixels).
    """
    return kerasrwm.BootstrappedLearner(**{**TINY_ARGUMENTS, **overrides})

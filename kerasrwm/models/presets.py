"""Hyper-parameter presets reproducing the reference training scripts.

Each preset is a flat dict: the `kerasrwm.BootstrappedLearner` constructor arguments listed in
`LEARNER_ARGUMENTS`, then the data and training settings (`k_shot` ... `validate_every`).
"""

MINI_IMAGENET_BOOTSTRAP = {
    "n_way": 5,
    "hidden_size": 256,
    "num_layers": 3,
    "num_heads": 16,
    "ff_dim": 2048,
    "dropout": 0.1,
    "backbone": "conv4",
    "backbone_channels": 32,
    "vision_dropout": 0.1,
    "beta1": 1.0,
    "beta2": 10.0,
    "beta3": 1.0,
    "distill": "kl",
    "temperature": 1.0,
    # The authors' code feeds the one-hot of class 0 at query steps (`srwm_reference.md` §9.2).
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
"""mini-ImageNet 5-way 10-shot with 5 bootstrap shots, Conv-4 SRWM (`srwm_reference.md` §8.1).

Train with `kerasrwm.training.reference_adam(NoamSchedule(hidden_size, warmup_steps))`.
"""

LEARNER_ARGUMENTS = (
    "n_way",
    "hidden_size",
    "num_layers",
    "num_heads",
    "ff_dim",
    "dropout",
    "backbone",
    "backbone_channels",
    "vision_dropout",
    "beta1",
    "beta2",
    "beta3",
    "distill",
    "temperature",
    "unknown_label",
)
"""Preset keys that are `kerasrwm.BootstrappedLearner` constructor arguments; the rest configure data and training."""

PRESETS = {"mini_imagenet_bootstrap": MINI_IMAGENET_BOOTSTRAP}


def get_preset(name):
    """Returns a copy of the preset called `name` (one of `PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"`name` must be one of {tuple(PRESETS)}; received: {name!r}.")
    return dict(PRESETS[name])

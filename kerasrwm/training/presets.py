"""Named configurations: the one table from which the demo, the benchmarks and the examples derive.

A preset is a set of configuration overrides (`kerasrwm.training.configuration`), so
`make_config({"preset": "omniglot", "data": "npz:omniglot_28.npz", "steps": 2000})` is the
Omniglot preset with its data and a longer run; a configuration file (`kerasrwm train --config`)
may name one the same way. A preset leaves out where the data lives unless the data is built in.
"""

from kerasrwm.validation import check_choice

# The small model of the demo and the Omniglot runs: 5-way, K = K' = 5, 4 queries, Conv-4 with 16
# channels and 2 SRWM blocks of width 64, Adam at a constant 1e-3.
_SMALL = {
    "n_way": 5,
    "k_shot": 5,
    "k_extra": 5,
    "n_queries": 4,
    "backbone": "conv4",
    "backbone_channels": 16,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "ff_dim": 128,
    "batch_size": 16,
    "learning_rate": 1e-3,
    "validation_episodes": 128,
}

PRESETS = {
    # `kerasrwm demo`: the built-in synthetic characters at 28x28.
    "demo": {"data": "synthetic", "data_options": {"num_classes": 400, "image_size": 28}, **_SMALL},
    # Omniglot 28x28 with the Vinyals split and rotation classes (a .npz, see the README's "Data sources").
    "omniglot": {
        "data_options": {"split_scheme": "vinyals", "rotations": True},
        **_SMALL,
        "steps": 1000,
        "steps_per_epoch": 100,
    },
    # The authors' mini-ImageNet bootstrapping recipe: 84x84 RGB, Conv-4 with 32 channels, 3 SRWM
    # blocks of width 256 with 16 heads, dropout 0.1, beta2 = 10, the Noam schedule.
    "mini_imagenet": {
        "data_options": {"image_size": 84},
        "n_way": 5,
        "k_shot": 5,
        "k_extra": 5,
        "n_queries": 1,
        "beta1": 1.0,
        "beta2": 10.0,
        "beta3": 1.0,
        "backbone": "conv4",
        "backbone_channels": 32,
        "vision_dropout": 0.1,
        "hidden_size": 256,
        "num_layers": 3,
        "num_heads": 16,
        "ff_dim": 2048,
        "dropout": 0.1,
        "batch_size": 16,
        "learning_rate": None,
        "warmup_steps": 5000,
        "steps": 600000,
        "steps_per_epoch": 1000,
        "validation_episodes": 1632,
    },
}


def resolve_preset(overrides):
    """`overrides` with its `"preset"` entry, if any, replaced by that preset's settings (overridden by the rest)."""
    overrides = dict(overrides)
    if "preset" not in overrides:
        return overrides
    preset = PRESETS[check_choice("preset", overrides.pop("preset"), tuple(PRESETS))]
    data_options = {**preset.get("data_options", {}), **overrides.pop("data_options", {})}
    return {**preset, **overrides, "data_options": data_options}

"""The configuration of a training run: its keys with their defaults, help and checks.

A configuration is a flat JSON-able dict. `COMMON_KEYS` are read whatever the protocol; each
protocol's own keys (`Task.config_keys`, e.g. the loss weights of `"bootstrap"`) follow them in
`DEFAULT_CONFIG`. `make_config` fills the defaults, or a named preset's settings
(`kerasrwm.training.presets`), and checks every key, so that a run refuses a bad value before it
reads data or claims its directory: unknown keys and bad values raise a `ValueError` naming the key.
"""

import functools

from kerasrwm.data.load_source import check_source_spec
from kerasrwm.models.backbones import BACKBONES
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS
from kerasrwm.models.sequence_learner import UNKNOWN_LABELS
from kerasrwm.models.sequence_learner import check_compatible_arguments
from kerasrwm.ops.srwm import HAND_OFF_GRADIENTS
from kerasrwm.ops.srwm import IMPLEMENTATIONS
from kerasrwm.training.config_key import ConfigKey
from kerasrwm.training.config_key import check_jit_compile
from kerasrwm.training.config_key import check_object
from kerasrwm.training.config_key import check_profile_batch
from kerasrwm.training.config_key import optional
from kerasrwm.training.presets import resolve_preset
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import get_task
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_number
from kerasrwm.validation import rate

DEFAULT_STEPS_PER_EPOCH = 200


# The help says what the key is and its unit or format; the command line shows it with each flag.
COMMON_KEYS = {
    # data
    "data": ConfigKey(
        "synthetic",
        "episode source: synthetic (built in), npz:PATH (a .npz file), folder:PATH (images in "
        "PATH/{train,val,test}/CLASS/) or tfds:NAME (a TensorFlow Datasets name)",
        check_source_spec,
    ),
    "data_options": ConfigKey(
        {}, 'options of the data source, a JSON object (e.g. {"split_scheme": "vinyals"})', check_object
    ),
    "protocol": ConfigKey(
        "bootstrap",
        f"training protocol, one of {', '.join(TASKS)}",
        functools.partial(check_choice, choices=tuple(TASKS)),
    ),
    "n_way": ConfigKey(5, "classes per episode (N)", functools.partial(check_integer, minimum=2)),
    "k_shot": ConfigKey(5, "labelled examples per class read before the queries (K)", check_integer),
    "validation_k_shot": ConfigKey(None, "K of the validation episodes (default: k_shot)", optional(check_integer)),
    "validation_episodes": ConfigKey(
        256, "validation episodes scored at every epoch end, rounded down to whole batches", check_integer
    ),
    # learner
    "sequence_layer": ConfigKey(
        "srwm",
        "sequence layer of every block: srwm, deltanet or lstm",
        functools.partial(check_choice, choices=SEQUENCE_LAYERS),
    ),
    "backbone": ConfigKey(
        "conv4", "image encoder: conv4 or resnet12", functools.partial(check_choice, choices=tuple(BACKBONES))
    ),
    "backbone_channels": ConfigKey(32, "channels of every Conv-4 layer", check_integer),
    "vision_dropout": ConfigKey(0.0, "dropout rate inside the backbone, in [0, 1)", rate),
    "hidden_size": ConfigKey(128, "model width D (a multiple of num_heads)", check_integer),
    "num_layers": ConfigKey(2, "sequence blocks", check_integer),
    "num_heads": ConfigKey(8, "heads of every SRWM or DeltaNet layer", check_integer),
    "ff_dim": ConfigKey(512, "width of the feed-forward blocks", check_integer),
    "dropout": ConfigKey(0.0, "dropout rate of the sequence layers and feed-forward blocks, in [0, 1)", rate),
    "unknown_label": ConfigKey(
        "zeros",
        "label input of query steps: zeros (the paper) or class0 (the authors' code)",
        functools.partial(check_choice, choices=UNKNOWN_LABELS),
    ),
    "implementation": ConfigKey(
        "auto",
        "SRWM recurrence: auto (fused op when it builds), loop or fused",
        functools.partial(check_choice, choices=IMPLEMENTATIONS),
    ),
    "hand_off_gradient": ConfigKey(
        "exact",
        "gradient of the state an SRWM call hands on: exact, or reference (the authors' op, their bug B2: the "
        "initial state also gets the returned state's gradient; a reproduction, not a recommendation)",
        functools.partial(check_choice, choices=HAND_OFF_GRADIENTS),
    ),
    # optimisation
    "steps": ConfigKey(2000, "training steps (optimizer updates) in all; a multiple of steps_per_epoch", check_integer),
    "steps_per_epoch": ConfigKey(
        None,
        f"steps between validations and saves (default: min(steps, {DEFAULT_STEPS_PER_EPOCH}))",
        optional(check_integer),
    ),
    "batch_size": ConfigKey(16, "episodes per step, over all replicas", check_integer),
    "learning_rate": ConfigKey(
        None,
        "constant learning rate (default: the Noam schedule with warmup_steps)",
        optional(functools.partial(check_number, exclusive=True)),
    ),
    "warmup_steps": ConfigKey(500, "warm-up steps of the Noam learning-rate schedule", check_integer),
    "seed": ConfigKey(
        0,
        "seed of the weights and of the episode stream (an integer >= 0)",
        functools.partial(check_integer, minimum=0),
    ),
    "jit_compile": ConfigKey("auto", "XLA-compile the training step: auto, true or false", check_jit_compile),
    # monitoring
    "profile_batch": ConfigKey(
        0, "TensorBoard profiler: the batch, or START,STOP, to profile (0: off)", check_profile_batch
    ),
}

KEYS = {**COMMON_KEYS, **{key: spec for task in TASKS.values() for key, spec in task.config_keys.items()}}
DEFAULT_CONFIG = {key: spec.default for key, spec in KEYS.items()}
CONFIG_HELP = {key: spec.help for key, spec in KEYS.items()}


def make_config(overrides=None):
    """`DEFAULT_CONFIG` updated with `overrides`, every key checked; unknown keys and bad values raise `ValueError`.

    `overrides["preset"]` names a preset (`kerasrwm.training.presets.PRESETS`) whose settings come
    before the other overrides; the configuration returned holds them, not the preset's name.
    Values are checked alone (`ConfigKey.check`), then together (`hidden_size` and `num_heads`,
    `steps` and `steps_per_epoch`, the protocol's `Task.check_config`).
    """
    overrides = dict(overrides or {})
    if "data_options" in overrides:
        check_object("data_options", overrides["data_options"])
    overrides = resolve_preset(overrides)
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"Unknown configuration keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}.")
    config = {**DEFAULT_CONFIG, **overrides}
    for key, spec in KEYS.items():
        config[key] = spec.check(key, config[key])
    check_compatible_arguments(
        config["hidden_size"], config["num_heads"], config["sequence_layer"], config["hand_off_gradient"]
    )
    if config["steps_per_epoch"] is None:
        config["steps_per_epoch"] = min(config["steps"], DEFAULT_STEPS_PER_EPOCH)
    if config["steps"] % config["steps_per_epoch"]:
        raise ValueError(
            f"`steps` must be a multiple of `steps_per_epoch` ({config['steps_per_epoch']}); "
            f"received steps={config['steps']}."
        )
    get_task(config["protocol"]).check_config(config)
    return config

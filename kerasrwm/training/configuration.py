"""The configuration of a training run: its keys with their defaults and help, and their checks.

A configuration is a flat JSON-able dict. `COMMON_KEYS` are read whatever the protocol; each
protocol's own keys (`Task.config_keys`, e.g. the loss weights of `"bootstrap"`) follow them in
`DEFAULT_CONFIG`. `make_config` fills the defaults, or a named preset's settings
(`kerasrwm.training.presets`), and refuses unknown keys and bad values with a `ValueError` naming
the key.
"""

from kerasrwm.ops.srwm import check_hand_off_gradient
from kerasrwm.training.presets import resolve_preset
from kerasrwm.training.tasks import TASKS
from kerasrwm.training.tasks import get_task
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_number

DEFAULT_STEPS_PER_EPOCH = 200

# key: (default, help). The help says what the key is and its unit or format; the command line
# shows it with each flag.
COMMON_KEYS = {
    # data
    "data": (
        "synthetic",
        "episode source: synthetic (built in), npz:PATH (a .npz file), folder:PATH (images in "
        "PATH/{train,val,test}/CLASS/) or tfds:NAME (a TensorFlow Datasets name)",
    ),
    "data_options": ({}, 'options of the data source, a JSON object (e.g. {"split_scheme": "vinyals"})'),
    "protocol": ("bootstrap", f"training protocol, one of {', '.join(TASKS)}"),
    "n_way": (5, "classes per episode (N)"),
    "k_shot": (5, "labelled examples per class read before the queries (K)"),
    "validation_k_shot": (None, "K of the validation episodes (default: k_shot)"),
    "validation_episodes": (256, "validation episodes scored at every epoch end, rounded down to whole batches"),
    # learner
    "sequence_layer": ("srwm", "sequence layer of every block: srwm, deltanet or lstm"),
    "backbone": ("conv4", "image encoder: conv4 or resnet12"),
    "backbone_channels": (32, "channels of every Conv-4 layer"),
    "vision_dropout": (0.0, "dropout rate inside the backbone, in [0, 1)"),
    "hidden_size": (128, "model width D (a multiple of num_heads)"),
    "num_layers": (2, "sequence blocks"),
    "num_heads": (8, "heads of every SRWM or DeltaNet layer"),
    "ff_dim": (512, "width of the feed-forward blocks"),
    "dropout": (0.0, "dropout rate of the sequence layers and feed-forward blocks, in [0, 1)"),
    "unknown_label": ("zeros", "label input of query steps: zeros (the paper) or class0 (the authors' code)"),
    "implementation": ("auto", "SRWM recurrence: auto (fused op when it builds), loop or fused"),
    "hand_off_gradient": (
        "exact",
        "gradient of the state an SRWM call hands on: exact, or reference (the authors' op, their bug B2: the "
        "initial state also gets the returned state's gradient; a reproduction, not a recommendation)",
    ),
    # optimisation
    "steps": (2000, "training steps (optimizer updates) in all; a multiple of steps_per_epoch"),
    "steps_per_epoch": (None, f"steps between validations and saves (default: min(steps, {DEFAULT_STEPS_PER_EPOCH}))"),
    "batch_size": (16, "episodes per step, over all replicas"),
    "learning_rate": (None, "constant learning rate (default: the Noam schedule with warmup_steps)"),
    "warmup_steps": (500, "warm-up steps of the Noam learning-rate schedule"),
    "seed": (0, "seed of the weights and of the episode stream (an integer >= 0)"),
    "jit_compile": ("auto", "XLA-compile the training step: auto, true or false"),
    # monitoring
    "profile_batch": (0, "TensorBoard profiler: the batch, or START,STOP, to profile (0: off)"),
}

KEYS = {**COMMON_KEYS, **{key: spec for task in TASKS.values() for key, spec in task.config_keys.items()}}
DEFAULT_CONFIG = {key: default for key, (default, _) in KEYS.items()}
CONFIG_HELP = {key: help_text for key, (_, help_text) in KEYS.items()}


def make_config(overrides=None):
    """`DEFAULT_CONFIG` updated with `overrides`; unknown keys and bad values raise `ValueError`.

    `overrides["preset"]` names a preset (`kerasrwm.training.presets.PRESETS`) whose settings come
    before the other overrides; the configuration returned holds them, not the preset's name.
    """
    overrides = resolve_preset(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"Unknown configuration keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}.")
    config = {**DEFAULT_CONFIG, **overrides}
    _check_optimisation(config)
    get_task(config["protocol"]).check_config(config)
    if config["steps"] % config["steps_per_epoch"]:
        raise ValueError(
            f"`steps` must be a multiple of `steps_per_epoch` ({config['steps_per_epoch']}); "
            f"received steps={config['steps']}."
        )
    return config


def _check_optimisation(config):
    """Checks the optimisation and validation keys of `config` in place; fills `steps_per_epoch`."""
    for key in ("steps", "batch_size", "warmup_steps", "validation_episodes"):
        check_integer(key, config[key])
    check_integer("seed", config["seed"], minimum=0)
    check_hand_off_gradient(config["hand_off_gradient"])
    if config["steps_per_epoch"] is None:
        config["steps_per_epoch"] = min(config["steps"], DEFAULT_STEPS_PER_EPOCH)
    check_integer("steps_per_epoch", config["steps_per_epoch"])
    if config["learning_rate"] is not None:
        check_number("learning_rate", config["learning_rate"], exclusive=True)
    if config["jit_compile"] not in ("auto", True, False):
        raise ValueError(
            f"`jit_compile` must be 'auto', true or false; received jit_compile={config['jit_compile']!r}."
        )
    if not isinstance(config["data_options"], dict):
        raise ValueError(f"`data_options` must be a JSON object; received data_options={config['data_options']!r}.")

"""Command-line options shared by `kerasrwm train` and `kerasrwm tune`: one flag per config key."""

import json
import sys

from kerasrwm.argument_types import key_value
from kerasrwm.argument_types import number_list
from kerasrwm.training.config_key import check_object
from kerasrwm.training.configuration import CONFIG_HELP
from kerasrwm.training.configuration import DEFAULT_CONFIG
from kerasrwm.training.configuration import make_config
from kerasrwm.training.presets import PRESETS

# Keys whose default is None, with the type of their values.
OPTIONAL_TYPES = {"learning_rate": float, "validation_k_shot": int, "steps_per_epoch": int}


def _flag(key):
    return "--" + key.replace("_", "-")


def _parse_value(text):
    """A command-line value as JSON when it parses (numbers, booleans), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _jit_compile(text):
    return text if text == "auto" else _parse_value(text)


def _format_default(value):
    """`value` as it is typed on the command line: true, 1,5,10, synthetic."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


def add_config_arguments(parser, skip=()):
    """Adds `--config FILE`, `--data-option KEY=VALUE` and one flag per `DEFAULT_CONFIG` key."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON file of configuration overrides: an object whose keys are the flags below with _ for - "
        "(the flags take precedence)",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="named configuration (kerasrwm.training.presets) under the --config file and the flags",
    )
    parser.add_argument(
        "--data-option",
        action="append",
        type=key_value("--data-option"),
        default=[],
        metavar="KEY=VALUE",
        help="option of the data source, e.g. split_scheme=vinyals or rotations=true (repeatable)",
    )
    for key, default in DEFAULT_CONFIG.items():
        if key in skip or key == "data_options":
            continue
        if key == "jit_compile":
            value_type = _jit_compile
        elif isinstance(default, list):
            value_type = number_list(int)
        elif key == "profile_batch":
            value_type = _parse_value
        elif default is None:
            value_type = OPTIONAL_TYPES[key]
        else:
            value_type = type(default)
        shown = "" if default is None else f" (default: {_format_default(default)})"
        parser.add_argument(_flag(key), dest=key, type=value_type, default=None, help=CONFIG_HELP[key] + shown)


def _read_config_file(path):
    """The JSON object in `path`, or `ValueError` naming `--config` and what is wrong."""
    try:
        with open(path) as file:
            overrides = json.load(file)
    except OSError as error:
        raise ValueError(f"--config {path!r} cannot be read: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"--config {path!r} is not valid JSON: {error}.") from None
    except UnicodeDecodeError:
        raise ValueError(f"--config {path!r} is not a text file; it must hold a JSON object.") from None
    if not isinstance(overrides, dict):
        raise ValueError(
            f"--config {path!r} must hold a JSON object of configuration keys; it holds a {type(overrides).__name__}."
        )
    return overrides


def config_from_args(args):
    """The configuration: defaults, then the preset, then the `--config` file, then the flags given."""
    overrides = _read_config_file(args.config) if args.config else {}
    if args.preset:
        overrides["preset"] = args.preset
    data_options = dict(check_object("data_options", overrides.get("data_options", {})))
    data_options.update(dict(args.data_option))
    if data_options:
        overrides["data_options"] = data_options
    for key in DEFAULT_CONFIG:
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return make_config(overrides)


def add_model_argument(parser):
    """`--model {best,last}`: which saved model of a run `evaluate` and `export` load."""
    parser.add_argument(
        "--model",
        choices=("best", "last"),
        default="best",
        help="the epoch with the best validation score (best.keras, default) or the latest (model.keras)",
    )


def progress_verbosity():
    """Keras `verbose` for progress output: a live bar on a terminal, one line per epoch otherwise.

    The live bar redraws with backspaces and ANSI codes, which fill a redirected log.
    """
    return 1 if sys.stdout.isatty() else 2

"""The run directory: a damaged or incomplete `config.json` is refused in one line naming it, never run on defaults."""

import json

import pytest

from kerasrwm.training.configuration import DEFAULT_CONFIG
from kerasrwm.training.run_directory import load_config
from tests.commands.tiny_run import tiny_config

FIX = "write it with the settings the run was trained with"
# What a run learned: the data, N and K (`run_directory.load_config`).
REQUIRED_KEYS = ("data", "data_options", "n_way", "k_shot")


def without(config, *keys):
    return {key: value for key, value in config.items() if key not in keys}


DAMAGED_CONFIGS = [
    ("{}", "lacks data, data_options, n_way, k_shot, which define the run"),
    ("[]", "must hold a JSON object; it holds a list"),
    ('"synthetic"', "must hold a JSON object; it holds a str"),
    ("null", "must hold a JSON object; it holds a NoneType"),
    (json.dumps(without(tiny_config(), "data")), "lacks data, which define the run"),
    (json.dumps(without(tiny_config(), "data", "k_shot")), "lacks data, k_shot, which define the run"),
    (json.dumps({**tiny_config(), "batch_size": 0}), "bad configuration (`batch_size` must be an integer >= 1"),
    (json.dumps({**tiny_config(), "steps": "6"}), "bad configuration (`steps` must be an integer >= 1"),
    (json.dumps({**tiny_config(), "colour": "red"}), "bad configuration (Unknown configuration keys ['colour']"),
    (json.dumps(tiny_config())[:100], "cannot be read (JSONDecodeError: "),
    ("\udcff", "cannot be read (UnicodeDecodeError: "),
]


@pytest.mark.parametrize("text, message", DAMAGED_CONFIGS, ids=[row[1][:40] for row in DAMAGED_CONFIGS])
def test_a_damaged_or_incomplete_config_is_refused_naming_the_file_and_the_fix(tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ValueError) as caught:
        load_config(str(tmp_path))
    error = str(caught.value)
    assert error.startswith(f"{path} ") and message in error and FIX in error and "\n" not in error, error


def test_keys_added_later_are_filled_from_their_defaults(tmp_path):
    """A run written before a key existed (here every key but the required ones) loads, with the defaults."""
    config = tiny_config()
    (tmp_path / "config.json").write_text(json.dumps({key: config[key] for key in REQUIRED_KEYS}))
    loaded = load_config(str(tmp_path))
    expected = {**DEFAULT_CONFIG, **{key: config[key] for key in REQUIRED_KEYS}}
    expected["steps_per_epoch"] = min(expected["steps"], 200)
    assert loaded == expected


def test_a_whole_config_loads_as_written(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    assert load_config(str(tmp_path)) == tiny_config()

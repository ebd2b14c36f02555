"""Presets: one table from which the demo, the benchmarks and the examples' configurations derive."""

import json
import pathlib

import pytest

from kerasrwm.benchmarks import train as bench_train
from kerasrwm.cli import build_parser
from kerasrwm.commands import demo
from kerasrwm.commands.common import config_from_args
from kerasrwm.training.configuration import DEFAULT_CONFIG
from kerasrwm.training.configuration import make_config
from kerasrwm.training.presets import PRESETS

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_configuration_of_known_keys(name):
    assert set(PRESETS[name]) <= set(DEFAULT_CONFIG)
    config = make_config({"preset": name})
    assert "preset" not in config
    assert all(config[key] == value for key, value in PRESETS[name].items())


def test_overrides_come_after_the_preset_and_data_options_merge():
    config = make_config({"preset": "omniglot", "k_shot": 3, "data_options": {"rotations": False}})
    assert (config["k_shot"], config["backbone_channels"]) == (3, PRESETS["omniglot"]["backbone_channels"])
    assert config["data_options"] == {"split_scheme": "vinyals", "rotations": False}


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match=r"`preset` must be one of \('demo', 'omniglot', 'mini_imagenet'\); received"):
        make_config({"preset": "cifar"})


def test_command_line_preset_is_under_the_config_file_and_the_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 32, "num_heads": 2}))
    arguments = ["train", "--output", "unused", "--preset", "omniglot", "--config", str(path), "--num-heads", "8"]
    config = config_from_args(build_parser().parse_args(arguments))
    assert (config["ff_dim"], config["hidden_size"], config["num_heads"]) == (PRESETS["omniglot"]["ff_dim"], 32, 8)


def test_the_demo_trains_its_preset():
    assert make_config(demo.DEMO_SETTINGS) == make_config(PRESETS["demo"])


def test_the_benchmarks_derive_from_the_presets():
    for name, configuration in bench_train.CONFIGURATIONS.items():
        preset = PRESETS[name]
        differences = {"omniglot": {"k_shot", "backbone_channels"}, "mini_imagenet": {"k_shot"}}.get(name, set())
        settings = {**configuration["spec"], **configuration["learner"], "batch_size": configuration["batch_size"]}
        assert {key for key, value in settings.items() if preset[key] != value} == differences, name


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*/config.json")), ids=lambda path: path.parent.name)
def test_every_example_configuration_names_its_preset(path):
    overrides = json.loads(path.read_text())
    assert overrides["preset"] in PRESETS
    assert not any(overrides[key] == value for key, value in PRESETS[overrides["preset"]].items() if key in overrides)

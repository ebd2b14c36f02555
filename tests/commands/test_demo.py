"""`kerasrwm demo`: both learners trained with the same budget, compared on the same episodes."""

import json
import os
import re

import pytest

from kerasrwm.cli import main
from kerasrwm.commands import demo

TINY_SETTINGS = {
    **demo.DEMO_SETTINGS,
    "data_options": {"num_classes": 40, "image_size": 16},
    "n_way": 3,
    "k_shot": 2,
    "k_extra": 1,
    "n_queries": 2,
    "hidden_size": 8,
    "num_layers": 1,
    "num_heads": 2,
    "ff_dim": 8,
    "backbone_channels": 4,
    "batch_size": 4,
    "validation_episodes": 8,
}


@pytest.mark.slow
def test_demo_trains_baseline_and_bootstrap_and_prints_the_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_SETTINGS", TINY_SETTINGS)
    output = str(tmp_path / "demo")
    assert (
        main(
            [
                "demo",
                "--output",
                output,
                "--steps",
                "2",
                "--beta2",
                "5",
                "--k-test",
                "1,3",
                "--runs",
                "2",
                "--episodes",
                "32",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    configs = {}
    for name in ("no_bootstrap", "bootstrap"):
        with open(os.path.join(output, name, "config.json")) as file:
            configs[name] = json.load(file)
    assert (configs["no_bootstrap"]["beta2"], configs["bootstrap"]["beta2"]) == (0.0, 5.0)
    assert {key: value for key, value in configs["bootstrap"].items() if key != "beta2"} == {
        key: value for key, value in configs["no_bootstrap"].items() if key != "beta2"
    }
    with open(os.path.join(output, "results.json")) as file:
        results = json.load(file)
    assert "| setting | runs | K_test=1 | K_test=3 |" in printed
    for name, rows in zip(("no_bootstrap", "bootstrap"), results.values()):
        [line] = re.findall(rf"^\| {name} \| 2 \| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|$", printed, re.MULTILINE)
        assert [float(cell) for cell in line] == [round(100 * row["accuracy_mean"], 2) for row in rows]
    assert os.path.exists(os.path.join(output, "k_test.png"))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--beta2", "-1"], "`beta2` must be a finite number >= 0.0; received beta2=-1.0"),
        (["--steps", "0"], "`steps` must be an integer >= 1; received steps=0"),
        (["--runs", "0"], "`runs` must be an integer >= 1; received runs=0"),
        (["--episodes", "0"], "`episodes` must be an integer >= 1; received episodes=0"),
        (["--k-test", "0,1"], "`k_test` must be a list of integers >= 1; received k_test=[0, 1]"),
        (["--k-test", "1,1000"], "`k_test` holds K_test=1000, too many shots for this split"),
    ],
)
def test_bad_arguments_are_refused_before_any_training(flags, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DEMO_SETTINGS", TINY_SETTINGS)

    def train(*args, **kwargs):
        raise AssertionError("the demo trained before checking its arguments")

    monkeypatch.setattr(demo, "train", train)
    assert main(["demo", "--output", str(tmp_path / "demo"), *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasrwm: error: ") and error.count("\n") == 1, error
    assert message in error
    assert not (tmp_path / "demo").exists()

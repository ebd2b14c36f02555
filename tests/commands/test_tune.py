"""`kerasrwm tune`: the flags reach the search, the best setting and the trial table are printed."""

import json
import os

import pytest

from kerasrwm.cli import build_parser
from kerasrwm.cli import main
from kerasrwm.commands import tune
from tests.commands.tiny_run import TINY_FLAGS


def parse(argv):
    return build_parser().parse_args(["tune", *argv])


@pytest.mark.slow
def test_tune_prints_the_best_setting_and_the_trials(tmp_path, capsys):
    output_dir = str(tmp_path / "search")
    # The grid's --k-extra comes after TINY_FLAGS' single value: argparse keeps the last.
    grid = ["--beta2", "0,2.5", "--k-extra", "1", "--max-trials", "1"]
    args = parse(["--output", output_dir, *TINY_FLAGS, *grid, "--jit-compile", "false"])
    best = tune.run(args)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\x1b[" not in out and "\b" not in out, "a live progress bar was written to a non-terminal"
    with open(os.path.join(output_dir, "best.json")) as file:
        assert json.load(file) == best
    assert (best["trial_id"], best["beta2"], best["k_extra"]) == ("0", 0.0, 1)  # max_trials=1: the grid's first
    summary = next(line for line in lines if line.startswith("Best: "))
    assert summary.startswith(f"Best: beta2=0, k_extra=1 (val_student_accuracy {best['val_student_accuracy']:.4f}")
    table = lines[lines.index(summary) + 1 :]
    assert table[0].split() == ["trial", "beta2", "k_extra", "val_student_accuracy", "status"]
    assert table[1].split() == ["*", "0", "0", "1", f"{best['val_student_accuracy']:.4f}", "COMPLETED"]
    with open(os.path.join(output_dir, "search.json")) as file:
        search = json.load(file)
    assert search["beta2_values"] == [0.0, 2.5] and search["k_extra_values"] == [1]
    assert search["config"]["data_options"] == {"num_classes": 40, "image_size": 16}
    assert (search["config"]["n_way"], search["config"]["hidden_size"], search["config"]["jit_compile"]) == (
        3,
        8,
        False,
    )
    assert "beta2" not in search["config"] and "k_extra" not in search["config"]  # the tuner sets them


def test_max_trials_defaults_to_the_whole_grid():
    assert parse(["--output", "x", "--beta2", "0,1,5", "--k-extra", "1,5"]).max_trials is None


def test_unparsable_flags_give_a_one_line_error_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        parse(["--output", "x", "--beta2", "1", "--k-extra", "1,x"])
    assert (
        "argument --k-extra: expected comma-separated ints (or a JSON list); received '1,x'" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--beta2", "0,-1", "--k-extra", "1"], "`beta2_values` must be a non-empty list of floats >= 0"),
        (["--beta2", "1,1", "--k-extra", "1"], "`beta2_values` must not repeat a value"),
        (["--beta2", "1", "--k-extra", "1", "--max-trials", "0"], "`max_trials` must be an integer >= 1"),
    ],
)
def test_bad_values_are_checked_once_by_tune(flags, message, tmp_path, capsys):
    assert main(["tune", "--output", str(tmp_path / "search"), *flags]) == 2
    assert f"kerasrwm: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "search").exists()

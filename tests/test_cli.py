"""`kerasrwm` command line: each bad input is one `kerasrwm: error:` line naming the argument."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from kerasrwm.cli import build_parser
from kerasrwm.cli import main
from kerasrwm.commands.common import config_from_args
from kerasrwm.training.configuration import make_config
from tests.commands.tiny_run import TINY_FLAGS
from tests.training import faults

# (extra arguments of `kerasrwm train` after the tiny flags, expected part of the message);
# "{tmp}" stands for a directory holding the files of `bad_files`.
BAD_TRAIN_ARGUMENTS = [
    (["--batch-size", "0"], "`batch_size` must be an integer >= 1; received batch_size=0"),
    (["--steps-per-epoch", "0"], "`steps_per_epoch` must be an integer >= 1; received steps_per_epoch=0"),
    (["--steps", "0"], "`steps` must be an integer >= 1; received steps=0"),
    (["--steps", "-6"], "`steps` must be an integer >= 1; received steps=-6"),
    (["--steps", "7"], "`steps` must be a multiple of `steps_per_epoch` (2); received steps=7"),
    (["--learning-rate", "-0.01"], "`learning_rate` must be a finite number > 0.0; received learning_rate=-0.01"),
    (["--validation-episodes", "-8"], "`validation_episodes` must be an integer >= 1; received validation_episodes=-8"),
    (["--jit-compile", "bogus"], "`jit_compile` must be 'auto', true or false; received jit_compile='bogus'"),
    (["--beta2", "inf"], "`beta2` must be a finite number >= 0.0; received beta2=inf"),
    (["--beta2-start-step", "-1"], "`beta2_start_step` must be an integer >= 0; received beta2_start_step=-1"),
    (["--beta2-ramp-steps", "-2"], "`beta2_ramp_steps` must be an integer >= 0; received beta2_ramp_steps=-2"),
    (["--diagnostics-every", "-5"], "`diagnostics_every` must be an integer >= 0; received diagnostics_every=-5"),
    (
        ["--protocol", "delayed_label", "--diagnostics-every", "5"],
        "`diagnostics_every` reads the bootstrapped loss's terms; received diagnostics_every=5 with "
        "protocol='delayed_label'",
    ),
    (
        ["--strategy", "multiworker", "--diagnostics-every", "5"],
        "--diagnostics-every runs after training steps, which strategy 'multiworker' does not report",
    ),
    (
        ["--hand-off-gradient", "buggy"],
        "`hand_off_gradient` must be one of ('exact', 'reference'); received hand_off_gradient='buggy'",
    ),
    (["--data", "npz:{tmp}/missing.npz"], "The file `path`='{tmp}/missing.npz' does not exist"),
    (["--data", "npz:{tmp}/empty.npz"], "The file `path`='{tmp}/empty.npz' is not a readable .npz archive"),
    (["--data", "npz:{tmp}/text.npz"], "The file `path`='{tmp}/text.npz' is not a readable .npz archive"),
    (["--data", "npz:{tmp}"], "`path`='{tmp}' is a directory"),
    (["--data-option", "colour=red"], "Unknown data option for a 'synthetic' source"),
    (["--config", "{tmp}/missing.json"], "--config '{tmp}/missing.json' cannot be read: No such file or directory"),
    (
        ["--config", "{tmp}/list.json"],
        "--config '{tmp}/list.json' must hold a JSON object of configuration keys; it holds a list",
    ),
    (["--config", "{tmp}/malformed.json"], "--config '{tmp}/malformed.json' is not valid JSON: Expecting"),
    (["--config", "{tmp}/binary.json"], "--config '{tmp}/binary.json' is not a text file; it must hold a JSON object"),
    # Checked before the data is read or the run folder claimed (they once failed after the first epoch).
    (["--k-test-sweep", "0"], "`k_test_sweep` must be a list of integers >= 1; received k_test_sweep=[0]"),
    (["--k-test-sweep", "1,1000"], "`k_test_sweep` holds K_test=1000, too many shots for this split"),
    (["--profile-batch", "5,x"], "`profile_batch` must be a batch number >= 0 (0: off) or START,STOP"),
    (["--profile-batch", "10,5"], "received profile_batch='10,5'"),
    (["--hidden-size", "9"], "`hidden_size` must be divisible by `num_heads`; received hidden_size=9, num_heads=2"),
    (["--config", "{tmp}/queries_string.json"], "`n_queries` must be an integer >= 1; received n_queries='2'"),
    (["--config", "{tmp}/beta2_string.json"], "`beta2` must be a finite number >= 0.0; received beta2='10'"),
    (["--config", "{tmp}/options_string.json"], "`data_options` must be a JSON object; received data_options='x'"),
    (["--config", "{tmp}/protocol_list.json"], "`protocol` must be one of ('bootstrap', 'delayed_label')"),
    (["--config", "{tmp}/validation_k_string.json"], "`validation_k_shot` must be an integer >= 1"),
]


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("not an archive\n")
    (tmp_path / "list.json").write_text(json.dumps([{"beta2": 1.0}]))
    (tmp_path / "malformed.json").write_text('{"beta2": 1.0,}')
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    for name, overrides in {
        "queries_string": {"n_queries": "2"},
        "beta2_string": {"beta2": "10"},
        "options_string": {"data_options": "x"},
        "protocol_list": {"protocol": ["bootstrap"]},
        "validation_k_string": {"validation_k_shot": "2"},
    }.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(overrides))

    return tmp_path


@pytest.mark.parametrize(
    "arguments, message", BAD_TRAIN_ARGUMENTS, ids=[" ".join(row[0]) for row in BAD_TRAIN_ARGUMENTS]
)
def test_bad_train_argument_is_one_error_line_naming_it(arguments, message, bad_files, capsys):
    fill = {"tmp": str(bad_files)}
    output = str(bad_files / "run")
    assert main(["train", "--output", output, *TINY_FLAGS, *[a.format(**fill) for a in arguments]]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasrwm: error: ") and error.count("\n") == 1, error
    assert message.format(**fill) in error
    assert not (bad_files / "run").exists()  # nothing written, not even the folder


@pytest.mark.parametrize("steps, steps_per_epoch", [(20, 20), (200, 200), (2000, 200)])
def test_steps_per_epoch_defaults_to_steps_up_to_200(steps, steps_per_epoch):
    assert make_config({"steps": steps})["steps_per_epoch"] == steps_per_epoch


def test_evaluate_names_a_damaged_model_file(tmp_path, capsys):
    from tests.commands.tiny_run import tiny_config

    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04 damaged")
    assert main(["evaluate", str(tmp_path), "--model", "last"]) == 2
    assert f"kerasrwm: error: {tmp_path}/model.keras cannot be loaded; the file is damaged" in capsys.readouterr().err


def test_source_without_validation_split_is_refused(tmp_path, capsys):
    """Omniglot's background / evaluation scheme has no validation split: one line says so."""
    path = tmp_path / "background.npz"
    labels = np.repeat(np.arange(8), 3)
    np.savez(
        path,
        images=np.zeros((24, 16, 16), np.uint8),
        labels=labels,
        class_split=np.array(["background"] * 6 + ["evaluation"] * 2),
    )
    pairs = [pair for pair in zip(TINY_FLAGS[::2], TINY_FLAGS[1::2]) if pair[0] not in ("--data", "--data-option")]
    flags = [item for pair in pairs for item in pair] + [
        "--data",
        f"npz:{path}",
        "--data-option",
        "split_scheme=background",
    ]
    assert main(["train", "--output", str(tmp_path / "run"), *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasrwm: error: ") and error.count("\n") == 1, error
    assert "has no 'validation' split; its splits are ('train', 'test')" in error
    assert "split_scheme=vinyals" in error


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_runtime_lines_only_when_verbose(verbose):
    """A command loads TensorFlow without its C++ start-up lines, unless --verbose asks for them."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import sys; sys.argv[0] = 'kerasrwm'; from kerasrwm.cli import main; sys.exit(main(sys.argv[1:]))"
    arguments = ["--verbose"] if verbose else []
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments, "evaluate", "--help"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "usage: kerasrwm evaluate" in result.stdout
    assert ("cpu_feature_guard" in result.stderr) == verbose, result.stderr


def every_argument(parser, path=()):
    """`(command path, flag or name, help)` of every argument of `parser` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from every_argument(subparser, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield " ".join(path), "/".join(action.option_strings) or action.dest, action.help


def test_every_flag_has_a_help_line_that_is_more_than_its_default():
    arguments = list(every_argument(build_parser(verbose=False)))
    assert len(arguments) > 100  # every command's module was loaded
    bare = [
        (command, flag, text)
        for command, flag, text in arguments
        if not text or not re.sub(r"\(?default: [^)]*\)?", "", text).strip(" ;,")
    ]
    assert not bare, bare
    helps = {flag: text for command, flag, text in arguments if command == "train"}
    assert all(f"{form}:" in helps["--data"] for form in ("npz", "folder", "tfds"))


def test_data_options_take_the_comma_form_of_a_list():
    arguments = ["train", "--output", "unused", "--data-option", "split_fractions=0.6,0.2,0.2"]
    arguments += ["--data-option", "rotations=true"]
    config = config_from_args(build_parser().parse_args(arguments))
    assert config["data_options"] == {"split_fractions": [0.6, 0.2, 0.2], "rotations": True}


@pytest.mark.parametrize("command", ["evaluate", "export", "train"])
def test_a_run_whose_config_is_empty_is_refused_in_one_line_naming_the_file(command, tmp_path, capsys):
    """Not evaluated, exported or resumed on the defaults; the run is left as it was."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    arguments = {
        "evaluate": ["evaluate", str(run)],
        "export": ["export", str(run), "--output", str(tmp_path / "exported")],
        "train": ["train", "--output", str(run), *TINY_FLAGS],
    }[command]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kerasrwm: error: {run / 'config.json'} lacks data, ") and error.count("\n") == 1, error
    assert sorted(path.name for path in run.iterdir()) == ["config.json"]
    assert (run / "config.json").read_text() == "{}"


# The command of each `--output`, given `{run}` (a run directory) and `{output}`, with the module whose
# work must not start (it fails the test if called) and how the message calls the output.
OUTPUT_COMMANDS = {
    "train": (
        ["train", "--output", "{output}", *TINY_FLAGS],
        "kerasrwm.training.experiment.load_source",
        "`output_dir`",
    ),
    "tune": (
        ["tune", "--output", "{output}", *TINY_FLAGS, "--beta2", "0,1", "--k-extra", "1"],
        "kerasrwm.training.tuning.load_source",
        "`output_dir`",
    ),
    "evaluate": (["evaluate", "{run}", "--output", "{output}"], "kerasrwm.commands.evaluate.evaluate_runs", "--output"),
    "evaluate into the run": (
        ["evaluate", "{output}"],
        "kerasrwm.commands.evaluate.evaluate_runs",
        "--output (default: the first run directory)",
    ),
    "export": (["export", "{run}", "--output", "{output}"], "kerasrwm.commands.export.load_trained", "--output"),
}


def _arguments(command, run, output):
    arguments, work, name = OUTPUT_COMMANDS[command]
    return [argument.format(run=run, output=output) for argument in arguments], work, name


@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_an_output_that_cannot_be_written_is_refused_in_one_line_before_any_work(
    command, tmp_path, monkeypatch, capsys
):
    """A read-only `--output` (we run as root, whom permissions do not stop: the probe's failure is injected)."""
    output = tmp_path / "output"
    output.mkdir()
    arguments, work, name = _arguments(command, tmp_path / "run", output)
    faults.refuse_files_in(lambda f: monkeypatch.setattr(tempfile, "mkstemp", f), output)
    module, _, function = work.rpartition(".")
    monkeypatch.setattr(__import__(module, fromlist=[function]), function, lambda *a, **k: pytest.fail("work began"))
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error == (
        f"kerasrwm: error: {name} {str(output)!r} cannot be written (Read-only file system); choose a writable folder.\n"
    )
    assert os.listdir(output) == []


def test_export_to_a_file_is_refused_naming_output_before_loading_the_model(tmp_path, monkeypatch, capsys):
    target = tmp_path / "model.savedmodel"
    target.write_text("mine")
    arguments, _, _ = _arguments("export", tmp_path / "run", target)
    monkeypatch.setattr("kerasrwm.commands.export.load_trained", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        f"kerasrwm: error: --output {str(target)!r} cannot be a folder (it is a file); choose a folder.\n"
    )
    assert target.read_text() == "mine"


def test_export_into_a_folder_of_other_files_is_refused_naming_output(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    arguments, _, _ = _arguments("export", tmp_path / "run", tmp_path)
    monkeypatch.setattr("kerasrwm.commands.export.load_trained", lambda *a, **k: pytest.fail("the model was loaded"))
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kerasrwm: error: --output {str(tmp_path)!r} is a folder of other files than a SavedModel")
    assert error.count("\n") == 1 and (tmp_path / "notes.txt").read_text() == "mine"


def test_train_on_a_full_disk_is_one_line_naming_the_file_and_writes_nothing(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    faults.report_free_bytes(lambda function: monkeypatch.setattr(shutil, "disk_usage", function), 1000)
    assert main(["train", "--output", str(run), *TINY_FLAGS]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kerasrwm: error: the disk holding {run}/config.json is full (0.0 MiB free, ")
    assert error.count("\n") == 1 and "nothing already written was lost" in error, error
    assert list(run.iterdir()) == []

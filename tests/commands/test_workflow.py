"""`kerasrwm train | evaluate | export`: files written, resume after a kill, portable export."""

import csv
import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.cli import main
from kerasrwm.data import load_source
from kerasrwm.models import DelayedLabelLearner
from kerasrwm.training import k_test_sweep
from kerasrwm.training.run_directory import load_trained
from tests.commands.tiny_run import TINY_FLAGS
from tests.commands.tiny_run import tiny_config
from tests.training.test_experiment import assert_same_run

ROOT = Path(__file__).resolve().parents[2]
LOAD_EXPORTED = ROOT / "tests" / "training" / "load_exported.py"


def run_script(*arguments):
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "tiny")
    assert main(["train", "--output", run_dir, *TINY_FLAGS]) == 0
    return run_dir


def scalar_tags(log_dir):
    tags = set()
    for path in glob.glob(f"{log_dir}/**/events.out.tfevents.*", recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


@pytest.mark.slow
def test_train_writes_config_checkpoint_and_tensorboard_logs(trained_run):
    with open(os.path.join(trained_run, "config.json")) as file:
        config = json.load(file)
    assert config == tiny_config()
    assert (config["beta2"], config["n_way"], config["data_options"]) == (1.0, 3, {"num_classes": 40, "image_size": 16})
    assert os.path.exists(os.path.join(trained_run, "model.keras"))
    assert os.path.exists(os.path.join(trained_run, "finished"))
    tags = scalar_tags(os.path.join(trained_run, "logs"))
    for name in (
        "student_loss",
        "distill_loss",
        "teacher_loss",
        "student_accuracy",
        "teacher_accuracy",
        "beta2",
        "learning_rate",
    ):
        assert f"epoch_{name}" in tags, sorted(tags)
    assert "epoch_student_accuracy" in scalar_tags(os.path.join(trained_run, "logs", "validation"))
    assert {"k_test_sweep/accuracy_k1", "k_test_sweep/accuracy_k2"} <= scalar_tags(
        os.path.join(trained_run, "logs", "k_test_sweep")
    )


@pytest.mark.slow
def test_resume_after_a_real_kill_during_the_last_save_equals_an_uninterrupted_run(tmp_path, trained_run):
    killed = run_script("-m", "tests.commands.tiny_run", str(tmp_path / "resumed"), "save:model.keras", "3")
    assert killed.returncode == 17, killed.stderr[-2000:]
    assert not os.path.exists(tmp_path / "resumed" / "finished")
    resumed = run_script("-m", "tests.commands.tiny_run", str(tmp_path / "resumed"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert int(load_trained(str(tmp_path / "resumed"), "last")[1].optimizer.iterations) == 6
    assert_same_run(str(tmp_path / "resumed"), trained_run)


def evaluate(output, *runs):
    """`kerasrwm evaluate RUNS` at K_test 1 and 3 (2 runs of 8 episodes, batches of 4) into `output`."""
    flags = ["--k-test", "1,3", "--runs", "2", "--episodes", "8", "--batch-size", "4", "--output", output]
    assert main(["evaluate", *runs, *flags]) == 0


@pytest.mark.slow
def test_evaluate_writes_table_json_csv_and_plot(trained_run, tmp_path, capsys):
    output = str(tmp_path / "evaluation")
    evaluate(output, trained_run, trained_run)
    printed = capsys.readouterr().out
    assert "K_test | accuracy (%)" in printed and "k_test.png" in printed
    with open(os.path.join(output, "results.json")) as file:
        results = json.load(file)
    config, model = load_trained(trained_run)
    store = load_source(config["data"], **config["data_options"]).split("test")
    expected = k_test_sweep(model, store, [1, 3], runs=2, episodes=8, batch_size=4, seed=0)
    assert results[trained_run] == expected
    with open(os.path.join(output, "results.csv")) as file:
        rows = list(csv.DictReader(file))
    assert [float(row["accuracy_mean"]) for row in rows[:2]] == [row["accuracy_mean"] for row in expected]
    assert os.path.getsize(os.path.join(output, "k_test.png")) > 1000


@pytest.mark.slow
def test_evaluate_summarizes_named_runs_per_setting(trained_run, tmp_path, capsys):
    output = str(tmp_path / "settings")
    evaluate(output, f"first={trained_run}", f"second={trained_run}")
    printed = capsys.readouterr().out
    with open(os.path.join(output, "results.json")) as file:
        results = json.load(file)
    with open(os.path.join(output, "settings.json")) as file:
        settings = json.load(file)
    assert list(results) == [trained_run]
    rows = results[trained_run]
    for name in ("first", "second"):
        assert settings[name]["runs"] == [trained_run]
        assert [row["accuracy_mean"] for row in settings[name]["rows"]] == [row["accuracy_mean"] for row in rows]
        cells = " | ".join(f"{100 * row['accuracy_mean']:.2f} ± 0.00" for row in rows)
        assert f"| {name} | 1 | {cells} |" in printed


@pytest.mark.slow
def test_evaluate_refuses_a_mix_of_named_and_unnamed_runs(trained_run, capsys):
    assert main(["evaluate", f"first={trained_run}", trained_run]) == 2
    assert "name every run (NAME=DIR) or none" in capsys.readouterr().err


@pytest.mark.slow
def test_export_loads_without_kerasrwm_and_agrees(trained_run, tmp_path):
    saved = str(tmp_path / "saved")
    main(["export", trained_run, "--output", saved])
    _, model = load_trained(trained_run)
    rng = np.random.default_rng(0)
    episode = {
        "support_images": rng.uniform(size=(2, 6, 16, 16, 1)).astype(np.float32),
        "support_labels": rng.integers(0, 3, size=(2, 6)).astype(np.int32),
        "query_images": rng.uniform(size=(2, 3, 16, 16, 1)).astype(np.float32),
    }
    np.savez(tmp_path / "episode.npz", **episode)
    result = run_script(str(LOAD_EXPORTED), saved, str(tmp_path / "episode.npz"), str(tmp_path / "logits.npy"))
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), model(episode).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_train_refuses_a_directory_holding_another_configuration(trained_run, capsys):
    assert main(["train", "--output", trained_run, *TINY_FLAGS, "--beta2", "3"]) == 2
    assert "holds a run with a different configuration (beta2: 1.0 in the run, 3.0 now)" in capsys.readouterr().err


def test_unknown_configuration_key_in_config_file(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"beta4": 1.0}))
    assert main(["train", "--output", str(tmp_path / "run"), "--config", str(path)]) == 2
    assert "kerasrwm: error: Unknown configuration keys ['beta4']" in capsys.readouterr().err


@pytest.fixture(scope="module")
def delayed_label_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "delayed")
    flags = [flag for flag in TINY_FLAGS if flag not in ("--k-test-sweep", "1,2")]
    assert main(["train", "--output", run_dir, *flags, "--protocol", "delayed_label"]) == 0
    return run_dir


@pytest.mark.slow
def test_delayed_label_protocol_trains_a_delayed_label_learner(delayed_label_run):
    config, model = load_trained(delayed_label_run)
    assert config["protocol"] == "delayed_label" and isinstance(model, DelayedLabelLearner)
    with open(os.path.join(delayed_label_run, "best.json")) as file:
        assert set(json.load(file)) == {"epoch", "val_accuracy"}


@pytest.mark.slow
def test_delayed_label_export_returns_the_per_step_logits(delayed_label_run, tmp_path):
    saved = str(tmp_path / "saved")
    assert main(["export", delayed_label_run, "--output", saved]) == 0
    _, model = load_trained(delayed_label_run)
    rng = np.random.default_rng(1)
    sequence = {
        "images": rng.uniform(size=(2, 7, 16, 16, 1)).astype(np.float32),
        "labels": rng.integers(0, 3, size=(2, 7)).astype(np.int32),
    }
    logits = tf.saved_model.load(saved).signatures["predict_sequence"](**sequence)["logits"]
    np.testing.assert_allclose(logits.numpy(), model(sequence).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_evaluate_refuses_a_delayed_label_run(delayed_label_run, capsys):
    assert main(["evaluate", delayed_label_run]) == 2
    error = capsys.readouterr().err
    assert "was trained with protocol='delayed_label', whose learner is not an episodic K-shot learner" in error

"""`kerasrwm train --strategy mirrored | multiworker` on one CPU machine.

Mirrored runs on 2 logical CPU devices (`KERASRWM_LOGICAL_CPUS=2`), multi-worker on 2 worker
processes on localhost; both need TensorFlow configured before it initialises, hence
subprocesses.
"""

import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.cli import main
from kerasrwm.data import load_source
from kerasrwm.training import distributed
from kerasrwm.training.experiment import train
from kerasrwm.training.experiment import training_stream
from kerasrwm.training.run_directory import load_trained
from tests.commands.tiny_run import TINY_FLAGS
from tests.training.local_cluster import ROOT
from tests.training.local_cluster import TIMEOUT
from tests.training.local_cluster import WORKERS
from tests.training.local_cluster import environment
from tests.training.local_cluster import run_workers
from tests.training.multiworker_worker import STEPS
from tests.training.multiworker_worker import linear_learner
from tests.training.multiworker_worker import multiworker_config


def assert_weights_close(actual, expected, **tolerance):
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(a, b, **tolerance)


def load_weights(path):
    with np.load(path) as arrays:
        return [arrays[f"arr_{index}"] for index in range(len(arrays.files))]


def scalar_tags(log_dir):
    tags = set()
    for path in glob.glob(f"{log_dir}/events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_unknown_strategy_and_bad_tf_config_raise(monkeypatch, capsys):
    with pytest.raises(ValueError, match="`strategy` must be one of"):
        distributed.make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="`TF_CONFIG` environment variable, which is not set"):
        distributed.make_strategy("multiworker")
    for text, message in (
        ("{cluster", "`TF_CONFIG` is not valid JSON"),
        ('{"task": {"type": "worker", "index": 0}}', "must hold a cluster with a list of workers"),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}', "must name this task"),
    ):
        with pytest.raises(ValueError, match=message):
            distributed.check_tf_config(text)
    with pytest.raises(ValueError, match="`batch_size` is the global batch and must be divisible"):
        distributed.check_global_batch(5, 2)
    monkeypatch.setenv(distributed.LOGICAL_CPUS_VARIABLE, "two")
    with pytest.raises(ValueError, match="KERASRWM_LOGICAL_CPUS` must be a positive integer"):
        distributed.make_strategy("none")
    with pytest.raises(SystemExit):
        main(["train", "--output", "unused", "--strategy", "horovod"])
    assert "invalid choice: 'horovod'" in capsys.readouterr().err


def test_a_multiworker_run_resumes_only_under_multiworker(tmp_path):
    config = multiworker_config()
    (tmp_path / distributed.CHECKPOINT_DIR).mkdir()
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="holds a multi-worker run; resume it with `strategy` 'multiworker'"):
        train(config, str(tmp_path), strategy="none")


@pytest.mark.slow
def test_train_mirrored_on_two_logical_cpus(tmp_path):
    run_dir = tmp_path / "mirrored"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerasrwm.cli",
            "train",
            "--strategy",
            "mirrored",
            "--output",
            str(run_dir),
            *TINY_FLAGS,
        ],
        cwd=ROOT,
        env=environment(**{distributed.LOGICAL_CPUS_VARIABLE: "2"}),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training with strategy 'mirrored' on 2 replicas." in result.stdout
    assert os.path.exists(run_dir / "finished")
    _, model = load_trained(str(run_dir), "last")  # the best epoch's model may be an earlier one
    assert int(model.optimizer.iterations) == 6


@pytest.mark.slow
def test_multiworker_run_is_written_by_the_chief_and_workers_agree(tmp_path):
    run_dir = tmp_path / "run"
    arguments = ["-m", "tests.training.multiworker_worker", run_dir, tmp_path / "worker-{index}.npz", "conv4"]
    results = run_workers(arguments, tmp_path)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(run_dir)) == [
        "best.json",
        "best.keras",
        "checkpoints",
        "config.json",
        "finished",
        "logs",
        "model.keras",
    ]
    assert not any(os.listdir(tmp_path / f"tmp-{index}") for index in range(WORKERS))
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith(f"ckpt-{STEPS}")
    for name in ("loss", "student_loss", "distill_loss", "teacher_accuracy", "learning_rate"):
        assert f"epoch_{name}" in scalar_tags(run_dir / "logs" / "train")
    assert "epoch_student_accuracy" in scalar_tags(run_dir / "logs" / "validation")
    workers = [load_weights(tmp_path / f"worker-{index}.npz") for index in range(WORKERS)]
    # All weights, BatchNorm moving statistics included (averaged over replicas at epoch ends).
    assert_weights_close(workers[1], workers[0], rtol=0, atol=0)
    _, model = load_trained(str(run_dir), "last")  # the best epoch may be an earlier one
    assert int(model.optimizer.iterations) == STEPS
    assert_weights_close(model.get_weights(), workers[0], rtol=0, atol=0)


def concatenated_worker_streams(config, store):
    """Global batch `i` of a 2-worker run: worker 0's batch `i` followed by worker 1's."""
    streams = [
        training_stream(config, store, input_context=tf.distribute.InputContext(WORKERS, index, WORKERS))
        for index in range(WORKERS)
    ]
    return tf.data.Dataset.zip(tuple(streams)).map(
        lambda *batches: tf.nest.map_structure(lambda *parts: tf.concat(parts, 0), *batches)
    )


@pytest.fixture(scope="module")
def reference_weights(tmp_path_factory):
    """Weights after one process trains the linear learner on the workers' concatenated batches."""
    directory = tmp_path_factory.mktemp("linear")
    arguments = [
        "-m",
        "tests.training.multiworker_worker",
        directory / "run",
        directory / "worker-{index}.npz",
        "linear",
    ]
    results = run_workers(arguments, directory)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    config = multiworker_config()
    batches = concatenated_worker_streams(config, load_source(config["data"], **config["data_options"]).split("train"))
    keras.utils.set_random_seed(config["seed"])
    model = linear_learner(config)
    model(next(iter(batches)))
    initial = load_weights(directory / "worker-0.initial.npz")
    model.set_weights(initial)
    model.fit(batches, epochs=1, steps_per_epoch=STEPS, shuffle=False, verbose=0)
    expected = model.get_weights()
    assert all(np.isfinite(weight).all() for weight in expected)
    return directory, initial, expected


@pytest.mark.slow
def test_workers_end_with_identical_weights_equal_to_one_process_on_the_global_batch(reference_weights):
    directory, initial, expected = reference_weights
    workers = [load_weights(directory / f"worker-{index}.npz") for index in range(WORKERS)]
    assert_weights_close(load_weights(directory / "worker-1.initial.npz"), initial, rtol=0, atol=0)
    assert_weights_close(workers[1], workers[0], rtol=0, atol=0)
    change = max(float(np.max(np.abs(a - b))) for a, b in zip(expected, initial))
    assert change > 1e-2, "training must move the weights for the comparison to mean anything"
    assert_weights_close(workers[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_restarted_workers_resume_from_the_last_checkpoint(reference_weights, tmp_path):
    _, _, expected = reference_weights
    arguments = ["-m", "tests.training.multiworker_worker", tmp_path / "run", tmp_path / "worker-{index}.npz", "linear"]
    killed = run_workers([*arguments, "1"], tmp_path)  # the last epoch, before its checkpoint
    assert [result.returncode for result in killed] == [17] * WORKERS, killed[0].stderr[-3000:]
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-2")
    resumed = run_workers(arguments, tmp_path)
    for result in resumed:
        assert result.returncode == 0, result.stderr[-3000:]
    assert_weights_close(load_weights(tmp_path / "worker-0.npz"), expected, rtol=1e-4, atol=1e-5)
    assert_weights_close(load_weights(tmp_path / "worker-1.npz"), expected, rtol=1e-4, atol=1e-5)

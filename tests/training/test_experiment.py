"""`train`: crash safety (a kill at any moment resumes to the same weights), divergence, locking."""

import json
import os
import pathlib

import numpy as np
import pytest

from kerasrwm.data import load_source
from kerasrwm.training.configuration import make_config
from kerasrwm.training.divergence import TrainingDiverged
from kerasrwm.training.experiment import build_learner
from kerasrwm.training.experiment import train
from kerasrwm.training.experiment import training_stream
from kerasrwm.training.experiment import validation_episodes
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.run_lock import RunLock
from tests.commands.tiny_run import tiny_config
from tests.training import faults


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "uninterrupted")
    train(tiny_config(), run_dir, verbose=0)
    return run_dir


def assert_same_run(run_dir, reference_dir):
    """Same files, same final and best weights, same best record."""
    assert (
        sorted(os.listdir(run_dir))
        == sorted(os.listdir(reference_dir))
        == [
            "best.json",
            "best.keras",
            "config.json",
            "finished",
            "logs",
            "model.keras",
        ]
    )
    for which in ("last", "best"):
        _, model = load_trained(run_dir, which)
        _, reference = load_trained(reference_dir, which)
        assert int(model.optimizer.iterations) == int(reference.optimizer.iterations)
        for a, b in zip(model.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with open(os.path.join(run_dir, "best.json")) as file, open(os.path.join(reference_dir, "best.json")) as reference:
        record, expected = json.load(file), json.load(reference)
    assert record["epoch"] == expected["epoch"]
    np.testing.assert_allclose(record["val_student_accuracy"], expected["val_student_accuracy"], rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("moment", faults.MOMENTS, ids=[f"{name}-{n}" for name, n in faults.MOMENTS])
def test_a_kill_at_any_moment_resumes_to_the_uninterrupted_run(moment, uninterrupted, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    with monkeypatch.context() as patch:
        callbacks = faults.install(moment, faults.raise_kill, lambda function: patch.setattr(os, "replace", function))
        with pytest.raises(faults.SimulatedKill):
            train(tiny_config(), run_dir, callbacks=callbacks, verbose=0)
    assert not os.path.exists(os.path.join(run_dir, "finished"))
    train(tiny_config(), run_dir, verbose=0)
    assert_same_run(run_dir, uninterrupted)


@pytest.mark.slow
def test_a_diverged_run_raises_and_is_not_finished(tmp_path):
    run_dir = str(tmp_path / "diverged")
    with pytest.raises(TrainingDiverged, match="not finite at step"):
        train({**tiny_config(), "learning_rate": 1e8}, run_dir, verbose=0)
    assert not os.path.exists(os.path.join(run_dir, "finished"))
    assert not os.path.exists(os.path.join(run_dir, "lock"))


def test_a_second_trainer_is_refused_while_the_first_holds_the_run(tmp_path):
    run_dir = str(tmp_path / "run")
    with RunLock(run_dir):
        with pytest.raises(ValueError, match=f"in use by another trainer \\(process {os.getpid()}@"):
            train(tiny_config(), run_dir, verbose=0)
    assert not os.path.exists(os.path.join(run_dir, "config.json"))


def test_delayed_label_stream_is_labelled_sequences_of_every_class_k_times():
    config = make_config({**tiny_config(), "k_test_sweep": [], "protocol": "delayed_label"})
    source = load_source(config["data"], **config["data_options"])
    store = source.split("train")
    first, second = list(training_stream(config, store).take(2))
    assert set(first) == {"images", "labels"} and first["images"].shape == (4, 6, 16, 16, 1)
    for row in first["labels"].numpy():
        np.testing.assert_array_equal(np.bincount(row, minlength=3), [2, 2, 2])
    resumed = next(iter(training_stream(config, store, start_batch=1)))
    np.testing.assert_array_equal(resumed["images"].numpy(), second["images"].numpy())
    validation = next(iter(validation_episodes(config, source.split("validation"))))
    assert set(validation) == {"images", "labels"} and validation["labels"].shape == (4, 6)


class TestProtocolBadInput:
    def test_unknown_protocol(self):
        allowed = r"\('bootstrap', 'delayed_label'\)"
        with pytest.raises(ValueError, match=rf"`protocol` must be one of {allowed}; received protocol='delayed'"):
            make_config({"protocol": "delayed"})

    def test_k_test_sweep_with_delayed_label(self):
        with pytest.raises(ValueError, match=r"received k_test_sweep=\[1, 5\] with protocol='delayed_label'"):
            make_config({"protocol": "delayed_label", "k_test_sweep": [1, 5]})


def test_schedule_and_hand_off_gradient_reach_the_learner():
    config = make_config({"beta2_start_step": 300, "beta2_ramp_steps": 200, "hand_off_gradient": "reference"})
    learner = build_learner(config)
    assert (learner.beta2_start_step, learner.beta2_ramp_steps) == (300, 200)
    assert {block.srwm.hand_off_gradient for block in learner.learner.blocks} == {"reference"}


EXAMPLE_CONFIGS = sorted((pathlib.Path(__file__).parents[2] / "examples").glob("*/config.json"))


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda path: path.parent.name)
def test_every_example_configuration_builds_its_learner(path):
    config = make_config(json.loads(path.read_text()))
    learner = build_learner(config)
    assert learner.n_way == config["n_way"]


def test_the_examples_have_configurations():
    assert len(EXAMPLE_CONFIGS) >= 5

"""`train`: crash safety (a kill at any moment resumes to the same weights), divergence, locking."""

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

from kerasrwm.data import load_source
from kerasrwm.training.atomic_files import WriteError
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


def run_files(run_dir, temporaries=True):
    """`{relative path: bytes}` of the run's files but its logs and lock; without temporaries, if asked."""
    found = {}
    for root, folders, names in os.walk(run_dir):
        folders[:] = [folder for folder in folders if temporaries or ".tmp" not in folder]
        for name in names:
            path = os.path.relpath(os.path.join(root, name), run_dir)
            if path.split(os.sep)[0] not in ("logs", "lock") and (temporaries or ".tmp" not in path):
                found[path] = pathlib.Path(root, name).read_bytes()
    return found


# The write during which the disk fills up; ("epoch", 2): from the second epoch on the disk reports
# no free space, so the first write after it is refused before it starts.
DISK_FULL_MOMENTS = (
    ("save:config.json", 1),
    ("save:best.keras", 1),
    ("save:best.json", 1),
    ("save:model.keras", 2),
    ("save:backup", 2),
    ("save:finished", 1),
    ("epoch", 2),
)


@pytest.mark.slow
@pytest.mark.parametrize("moment", DISK_FULL_MOMENTS, ids=[f"{name}-{n}" for name, n in DISK_FULL_MOMENTS])
def test_a_full_disk_at_any_write_stops_the_run_in_one_line_losing_nothing_and_a_rerun_resumes(
    moment, uninterrupted, tmp_path, monkeypatch
):
    run_dir = str(tmp_path / "run")
    before = {}
    with monkeypatch.context() as patch:

        def fill_the_disk():
            before.update(run_files(run_dir, temporaries=False))
            if moment[0] == "epoch":
                faults.report_free_bytes(lambda function: patch.setattr(shutil, "disk_usage", function), 0)
            else:
                faults.raise_disk_full()

        callbacks = faults.install(moment, fill_the_disk, lambda function: patch.setattr(os, "replace", function))
        with pytest.raises(WriteError) as caught:
            train(tiny_config(), run_dir, callbacks=callbacks, verbose=0)
    message = str(caught.value)
    assert message.startswith(f"the disk holding {run_dir}/") and "\n" not in message, message
    assert "nothing already written was lost" in message and "rerun the same command" in message
    assert run_files(run_dir) == before  # the previous files whole, no temporary left
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

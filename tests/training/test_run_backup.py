"""`RunBackup`: whole backups across a kill during the save, resumed under any strategy; Keras' backups."""

import os
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.distributed import LOGICAL_CPUS_VARIABLE
from kerasrwm.training.experiment import load_trained
from kerasrwm.training.run_backup import WEIGHTS_FILE
from kerasrwm.training.run_backup import RunBackup
from tests.training import faults


def tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    return model


DATA = (np.arange(12, dtype="float32").reshape(4, 3) / 10, np.ones((4, 2), "float32"))


class Snapshot(keras.callbacks.Callback):
    """The weights at each epoch end, before the callbacks after it."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


def test_a_kill_during_a_save_leaves_the_previous_backup_whole(tmp_path, monkeypatch):
    directory = str(tmp_path / "backup")
    model, snapshot = tiny_model(), Snapshot()
    with monkeypatch.context() as patch:
        faults.install(("save:backup", 3), faults.raise_kill, lambda function: patch.setattr(os, "replace", function))
        with pytest.raises(faults.SimulatedKill):
            model.fit(*DATA, epochs=4, verbose=0, callbacks=[snapshot, RunBackup(directory)])
    assert len(snapshot.weights) == 3
    assert sorted(os.listdir(directory)) == [".epoch-3.tmp", "epoch-1", "epoch-2"]
    restored = tiny_model()
    assert RunBackup(directory).restore(restored) == 2
    assert int(restored.optimizer.iterations) == 2
    for a, b in zip(restored.get_weights(), snapshot.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    model.fit(*DATA, epochs=3, initial_epoch=2, verbose=0, callbacks=[RunBackup(directory)])
    assert sorted(os.listdir(directory)) == ["epoch-2", "epoch-3"]


@pytest.mark.parametrize("fault", ["no room", "fills up"])
def test_a_full_disk_during_a_save_keeps_the_previous_backups_whole_and_the_run_resumes(tmp_path, monkeypatch, fault):
    """ "no room": the disk reports too little free space; "fills up": the write fails half way with ENOSPC."""
    directory = str(tmp_path / "backup")
    model = tiny_model()
    model.fit(*DATA, epochs=2, verbose=0, callbacks=[RunBackup(directory)])
    before = {name: pathlib.Path(directory, name, WEIGHTS_FILE).read_bytes() for name in sorted(os.listdir(directory))}
    with monkeypatch.context() as patch:
        if fault == "no room":
            faults.report_free_bytes(lambda function: patch.setattr(shutil, "disk_usage", function), 1 << 20)
        else:
            faults.install(("save:backup", 1), faults.raise_disk_full, lambda f: patch.setattr(os, "replace", f))
        with pytest.raises(WriteError, match=f"the disk holding {directory}/epoch-3 is full"):
            model.fit(*DATA, epochs=3, initial_epoch=2, verbose=0, callbacks=[RunBackup(directory)])
    assert sorted(os.listdir(directory)) == list(before)
    assert {name: pathlib.Path(directory, name, WEIGHTS_FILE).read_bytes() for name in before} == before
    restored = tiny_model()
    assert RunBackup(directory).restore(restored) == 2
    restored.fit(*DATA, epochs=3, initial_epoch=2, verbose=0, callbacks=[RunBackup(directory)])
    assert sorted(os.listdir(directory)) == ["epoch-2", "epoch-3"]


def truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def flip_last_byte(path):
    with open(path, "r+b") as file:
        file.seek(-1, os.SEEK_END)
        last = file.read(1)
        file.seek(-1, os.SEEK_END)
        file.write(bytes([last[0] ^ 0xFF]))


@pytest.mark.parametrize("damage", [truncate, flip_last_byte, os.remove])
def test_a_damaged_newest_backup_falls_back_to_the_previous_one_with_one_warning(tmp_path, damage):
    directory = str(tmp_path / "backup")
    model, snapshot = tiny_model(), Snapshot()
    model.fit(*DATA, epochs=3, verbose=0, callbacks=[snapshot, RunBackup(directory)])
    damage(os.path.join(directory, "epoch-3", WEIGHTS_FILE))
    restored = tiny_model()
    with pytest.warns(RuntimeWarning) as warned:
        assert RunBackup(directory).restore(restored) == 2
    assert len(warned) == 1
    assert f"backup {directory}/epoch-3/{WEIGHTS_FILE} is damaged" in str(warned[0].message)
    assert "resuming from the backup of epoch 2 instead" in str(warned[0].message)
    assert int(restored.optimizer.iterations) == 2
    for a, b in zip(restored.get_weights(), snapshot.weights[1], strict=True):
        np.testing.assert_array_equal(a, b)
    restored.fit(*DATA, epochs=3, initial_epoch=2, verbose=0, callbacks=[RunBackup(directory)])
    assert sorted(os.listdir(directory)) == ["epoch-2", "epoch-3"]
    again = tiny_model()
    assert RunBackup(directory).restore(again) == 3
    for a, b in zip(again.get_weights(), snapshot.weights[2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_whole_backup_left_is_refused_naming_the_files_and_the_fix(tmp_path):
    directory = str(tmp_path / "backup")
    tiny_model().fit(*DATA, epochs=2, verbose=0, callbacks=[RunBackup(directory)])
    for epochs in (1, 2):
        truncate(os.path.join(directory, f"epoch-{epochs}", WEIGHTS_FILE))
    with pytest.raises(ValueError) as refused:
        RunBackup(directory).restore(tiny_model())
    message = str(refused.value)
    assert "\n" not in message
    for epochs in (1, 2):
        assert f"backup {directory}/epoch-{epochs}/{WEIGHTS_FILE} is damaged (" in message
    assert message.endswith(f"no whole backup is left: remove {directory} to restart the run from epoch 0.")


def test_a_damaged_keras_backup_record_is_named(tmp_path):
    directory = tmp_path / "backup"
    directory.mkdir()
    (directory / "training_metadata.json").write_text('{"epoch": ')
    with pytest.raises(
        ValueError, match=f"{directory}/training_metadata.json is damaged .*remove {directory} to restart"
    ):
        RunBackup(str(directory)).restore(tiny_model())


@pytest.mark.parametrize("written_under, restored_under", [("none", "mirrored"), ("mirrored", "none")])
def test_a_backup_restores_exactly_under_another_strategy(tmp_path, written_under, restored_under):
    strategies = {"none": tf.distribute.get_strategy(), "mirrored": tf.distribute.MirroredStrategy(["/cpu:0"])}
    directory = str(tmp_path / "backup")
    with strategies[written_under].scope():
        model = tiny_model()
    model.fit(*DATA, epochs=2, verbose=0, callbacks=[RunBackup(directory)])
    with strategies[restored_under].scope():
        restored = tiny_model()
    assert RunBackup(directory).restore(restored) == 2
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(restored.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    restored.fit(*DATA, epochs=3, initial_epoch=2, verbose=0)
    assert int(restored.optimizer.iterations.numpy()) == 3


def test_restores_a_backup_written_by_keras_backup_and_restore(tmp_path):
    directory = str(tmp_path / "backup")
    model = tiny_model()
    callback = keras.callbacks.BackupAndRestore(directory, delete_checkpoint=False)
    model.fit(*DATA, epochs=2, verbose=0, callbacks=[callback])
    restored = tiny_model()
    assert RunBackup(directory).completed_epochs() == 2
    assert RunBackup(directory).restore(restored) == 2
    for a, b in zip(restored.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_nothing_to_restore_in_a_new_directory(tmp_path):
    assert RunBackup(str(tmp_path / "none")).restore(tiny_model()) == 0


@pytest.mark.slow
def test_kills_resume_under_mirrored_and_across_none_and_mirrored(tmp_path):
    from tests.training.strategy_resume_run import RESUMES
    from tests.training.test_experiment import assert_same_run

    root = pathlib.Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "tests.training.strategy_resume_run", str(tmp_path)],
        cwd=root,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", LOGICAL_CPUS_VARIABLE: "2"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Weights, optimizer and BatchNorm moving statistics equal to the uninterrupted mirrored run.
    assert_same_run(str(tmp_path / "mirrored-mirrored"), str(tmp_path / "mirrored"))
    # A replica sees half the batch, so its BatchNorm statistics differ: across strategies, the
    # run finishes from the backup (6 steps, not 4 more from scratch).
    for killed_under, resumed_under in RESUMES[1:]:
        _, model = load_trained(str(tmp_path / f"{killed_under}-{resumed_under}"), "last")
        assert int(model.optimizer.iterations) == 6

"""Files written whole or not at all: a full disk before or during a write, a read-only or non-folder output."""

import errno
import os
import shutil
import tempfile

import keras
import numpy as np
import pytest

from kerasrwm.training.atomic_files import MIN_FREE_BYTES
from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.atomic_files import state_bytes
from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically
from tests.training import faults

NOTHING_LOST = "was not written and nothing already written was lost"


def files(directory):
    """`{relative path: bytes}` of every file under `directory`, hidden ones included."""
    return {
        os.path.relpath(os.path.join(root, name), directory): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(directory)
        for name in names
    }


def assert_one_disk_full_line(error, path):
    assert isinstance(error, OSError) and isinstance(error, ValueError) and error.errno == errno.ENOSPC
    message = str(error)
    assert message.startswith(f"the disk holding {path} is full (") and "\n" not in message, message
    assert NOTHING_LOST in message and "rerun the same command" in message


def writer(content, failure=None):
    """A writer of a `.keras` file (or of a backup folder) holding `content`, that then raises `failure` if given."""

    def write(path):
        if path.endswith(".keras"):
            with open(path, "wb") as file:
                file.write(content)
        else:
            os.makedirs(path)
            with open(os.path.join(path, "state.weights.h5"), "wb") as file:
                file.write(content)
        if failure is not None:
            raise failure

    return write


# What a full disk raises in the write: Python's file writes, and h5py (text of an HDF5 error).
FULL_DISK_FAILURES = [
    OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
    RuntimeError(
        "Disable slist on flush dest failure failed (file write failed: filename = 'x.weights.h5', "
        "file descriptor = 3, errno = 28, error message = 'No space left on device', total write size = 13192)"
    ),
]


@pytest.mark.parametrize("name", ["model.keras", "epoch-3"])
@pytest.mark.parametrize("failure", FULL_DISK_FAILURES, ids=["OSError", "h5py"])
def test_a_disk_that_fills_up_during_a_write_keeps_the_previous_file_and_removes_the_temporary(tmp_path, name, failure):
    path = tmp_path / name
    write_atomically(str(path), writer(b"the previous whole file"))
    (tmp_path / "other.json").write_text("{}")
    before = files(tmp_path)
    with pytest.raises(WriteError) as caught:
        write_atomically(str(path), writer(b"half of a file", failure))
    assert_one_disk_full_line(caught.value, path)
    assert caught.value.__cause__ is failure
    assert files(tmp_path) == before


def test_too_little_free_space_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    path = tmp_path / "best.json"
    write_json_atomically(str(path), {"epoch": 1})
    before = files(tmp_path)
    written = []
    faults.report_free_bytes(lambda function: monkeypatch.setattr(shutil, "disk_usage", function), 3 << 20)
    with pytest.raises(WriteError) as caught:
        write_atomically(str(path), written.append, expected_bytes=4 << 20)
    assert_one_disk_full_line(caught.value, path)
    assert "(3.0 MiB free, 5.0 MiB needed)" in str(caught.value)
    assert written == [] and files(tmp_path) == before
    write_atomically(str(path), lambda temporary: open(temporary, "w").close(), expected_bytes=(2 << 20) - 1)
    assert path.read_bytes() == b""


def test_json_files_need_the_minimum_free_space(tmp_path, monkeypatch):
    faults.report_free_bytes(lambda function: monkeypatch.setattr(shutil, "disk_usage", function), MIN_FREE_BYTES - 1)
    with pytest.raises(WriteError, match="the disk holding .*config.json is full"):
        write_json_atomically(str(tmp_path / "config.json"), {})
    assert os.listdir(tmp_path) == []


def test_other_failures_of_a_write_pass_unchanged_and_leave_no_temporary(tmp_path):
    failure = KeyError("not a disk problem")
    with pytest.raises(KeyError) as caught:
        write_atomically(str(tmp_path / "model.keras"), writer(b"half of a file", failure))
    assert caught.value is failure
    assert os.listdir(tmp_path) == []


def test_a_folder_replaces_the_previous_folder_whole(tmp_path):
    path = tmp_path / "exported"
    write_atomically(str(path), writer(b"the previous whole export"))

    def write(temporary):
        os.makedirs(os.path.join(temporary, "variables"))
        with open(os.path.join(temporary, "saved_model.pb"), "wb") as file:
            file.write(b"new")

    write_atomically(str(path), write)
    assert files(tmp_path) == {os.path.join("exported", "saved_model.pb"): b"new"}
    assert os.listdir(path / "variables") == []


@pytest.mark.slow
def test_the_state_estimate_bounds_the_files_a_model_is_saved_to(tmp_path):
    """Small variables (file headers dominate) and large ones (values dominate), with the optimizer's state."""
    keras.utils.set_random_seed(0)
    small = keras.Sequential([keras.Input((3,)), *[keras.layers.Dense(3) for _ in range(20)]])
    large = keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024), keras.layers.Dense(256)])
    for model in (small, large):
        model.compile(optimizer="adam", loss="mse")
        inputs = np.zeros((2, model.input_shape[-1]), "float32")
        model.fit(inputs, np.zeros((2, model.output_shape[-1]), "float32"), verbose=0)
        model.save(tmp_path / "model.keras")
        model.save_weights(tmp_path / "state.weights.h5")
        sizes = [os.path.getsize(tmp_path / "model.keras"), os.path.getsize(tmp_path / "state.weights.h5")]
        assert max(sizes) <= state_bytes(model) <= 3 * max(sizes) + 2 * MIN_FREE_BYTES, (sizes, state_bytes(model))
    # Adam keeps two moments per weight: the state is three times the weights' 4-byte values, and more.
    parameters = large.count_params()
    assert 3 * 4 * parameters < state_bytes(large) < 3 * 4 * parameters * 1.01


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC])
def test_a_folder_that_cannot_be_written_is_refused_naming_it(tmp_path, monkeypatch, code):
    """We run as root, whom permissions do not stop: the failure of the probe is injected."""
    output = tmp_path / "output"
    output.mkdir()

    def mkstemp(**kwargs):
        raise OSError(code, os.strerror(code), os.path.join(kwargs["dir"], ".probe"))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(WriteError) as caught:
        check_writable(str(output), "--output")
    assert isinstance(caught.value, ValueError) and caught.value.errno == code
    assert str(caught.value) == (
        f"--output {str(output)!r} cannot be written ({os.strerror(code)}); choose a writable folder."
    )
    with pytest.raises(WriteError, match=rf"\({os.strerror(code)} in {tmp_path}\); choose a writable folder"):
        check_writable(str(output.parent / "new" / "run"), "`output_dir`")


def test_a_file_is_refused_as_a_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(WriteError) as caught:
        check_writable(str(tmp_path / "notes.txt"), "--output")
    assert caught.value.errno == errno.ENOTDIR
    assert (
        str(caught.value)
        == f"--output {str(tmp_path / 'notes.txt')!r} cannot be a folder (it is a file); choose a folder."
    )
    with pytest.raises(WriteError, match=f"cannot be a folder \\({tmp_path}/notes.txt is a file\\)"):
        check_writable(str(tmp_path / "notes.txt" / "run"), "--output")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_writable_folder_passes_and_nothing_is_left_or_created(tmp_path):
    (tmp_path / "run").mkdir()
    check_writable(str(tmp_path / "run"), "--output")
    check_writable(str(tmp_path / "new" / "nested"), "--output")
    assert sorted(os.listdir(tmp_path)) == ["run"] and os.listdir(tmp_path / "run") == []

"""`RunLock`: one owner per run directory; the lock of a dead owner is taken over."""

import os
import socket

import pytest

from kerasrwm.training.run_lock import RunLock


def test_a_second_owner_is_refused_with_the_first_owners_pid(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        with open(lock.path) as file:
            assert file.read().startswith(f"{os.getpid()}@")
        with pytest.raises(ValueError, match=f"in use by another trainer \\(process {os.getpid()}@.*lock file"):
            RunLock(str(tmp_path)).acquire()
    assert not os.path.exists(lock.path)
    with RunLock(str(tmp_path)):
        pass


def test_the_lock_file_of_a_dead_process_is_taken_over(tmp_path):
    # A killed owner leaves its lock file but not its flock, which the kernel drops with the process.
    (tmp_path / "lock").write_text("999999999@elsewhere\n")
    with RunLock(str(tmp_path)) as lock:
        with open(lock.path) as file:
            assert file.read() == f"{os.getpid()}@{socket.gethostname()}\n"

"""`RunLock`: one trainer per run directory, named by the pid in `directory/lock`."""

import fcntl
import os
import socket

LOCK_FILE = "lock"


class RunLock:
    """An exclusive lock on a run directory, held while a trainer writes into it.

    The lock is an `flock` on `directory/lock`, which names the owner (`pid@host`). The kernel
    releases it when the owner dies, so the lock of a killed trainer is taken over by the next
    one, while a live owner makes `acquire` raise `ValueError` naming it. A context manager.

    Args:
        directory: the run directory (created if missing).
    """

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self._file = None

    def acquire(self):
        os.makedirs(self.directory, exist_ok=True)
        while True:
            file = open(self.path, "a+")
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                owner = file.read().strip() or "unknown"
                file.close()
                raise ValueError(
                    f"The run directory {self.directory!r} is in use by another trainer (process {owner}, "
                    f"lock file {self.path}); wait for it to end or use another directory."
                ) from None
            # A releasing owner may have removed the file between our open and our lock.
            try:
                if os.path.samestat(os.fstat(file.fileno()), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            file.close()
        file.truncate(0)
        file.write(f"{os.getpid()}@{socket.gethostname()}\n")
        file.flush()
        self._file = file
        return self

    def release(self):
        if self._file is None:
            return
        os.remove(self.path)
        self._file.close()
        self._file = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()

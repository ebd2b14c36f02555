"""Simulated kills of a training run at named moments, for the crash-safety tests.

A moment is `(name, occurrence)`: the run dies at the `occurrence`-th time (1-based) it reaches
`name`. Names: `"epoch"` (after the first batch of an epoch), `"validation"` (after the first
validation batch of an epoch), `"save:FILE"` (while `FILE` of the run directory is written:
`model.keras`, `best.keras`, `best.json`, `config.json`, `backup` or `finished`; the temporary
copy is left half written, as by a kill during the write). `kill` is called to die:
`os._exit` in a subprocess, raising `SimulatedKill` in process; `raise_disk_full` fails the write
instead, as a disk that fills up during it. `report_free_bytes` makes the disk look full before any write.
"""

import collections
import errno
import os
import re
import shutil
import tempfile

import keras

MOMENTS = (
    ("epoch", 2),
    ("validation", 2),
    ("save:best.keras", 1),
    ("save:best.json", 1),
    ("save:model.keras", 2),
    ("save:model.keras", 3),
    ("save:backup", 3),
    ("save:finished", 1),
)


class SimulatedKill(BaseException):
    """The in-process stand-in for a kill: not an `Exception`, so nothing on the way catches it."""


def raise_kill():
    raise SimulatedKill()


def raise_disk_full():
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def refuse_files_in(patch_mkstemp, folder, code=errno.EROFS):
    """Makes `tempfile.mkstemp` in `folder` fail with `code` (read-only by default), as `check_writable`'s probe
    would on such a folder; `patch_mkstemp(function)` installs it. We run as root, whom permissions do not stop.
    """
    real = tempfile.mkstemp

    def mkstemp(**kwargs):
        if kwargs.get("dir") == str(folder):
            raise OSError(code, os.strerror(code))
        return real(**kwargs)

    patch_mkstemp(mkstemp)


def report_free_bytes(patch_disk_usage, free):
    """Makes `shutil.disk_usage` report `free` bytes free everywhere; `patch_disk_usage(function)` installs it.

    We run as root, whom a full disk's reserved blocks and permissions do not stop: the disk is simulated.
    """
    usage = collections.namedtuple("usage", "total used free")
    real = shutil.disk_usage

    def disk_usage(path):
        total = real(path).total
        return usage(total, total - free, free)

    patch_disk_usage(disk_usage)


def _truncate_half(path):
    paths = (
        [os.path.join(root, name) for root, _, names in os.walk(path) for name in names]
        if os.path.isdir(path)
        else [path]
    )
    for file_path in paths:
        os.truncate(file_path, os.path.getsize(file_path) // 2)


class _KillInFit(keras.callbacks.Callback):
    def __init__(self, name, occurrence, kill):
        super().__init__()
        self.name, self.occurrence, self.kill = name, occurrence, kill
        self.epochs_seen = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs_seen += 1

    def _maybe_kill(self, name, batch):
        if name == self.name and batch == 0 and self.epochs_seen == self.occurrence:
            self.kill()

    def on_train_batch_end(self, batch, logs=None):
        self._maybe_kill("epoch", batch)

    def on_test_batch_end(self, batch, logs=None):
        self._maybe_kill("validation", batch)


def install(moment, kill, patch_replace):
    """Arms `moment`; returns the callbacks to pass to `train`.

    `patch_replace(function)` installs `function` as `os.replace` (e.g. `monkeypatch.setattr`).
    Epoch counts are within this process: a resumed run counts from its first epoch.
    """
    name, occurrence = moment
    if not name.startswith("save:"):
        return [_KillInFit(name, occurrence, kill)]
    target = name.partition(":")[2]
    real_replace = os.replace
    seen = [0]

    def replace(source, destination, **kwargs):
        base = os.path.basename(os.fspath(destination))
        if base == target or (target == "backup" and re.fullmatch(r"epoch-\d+", base)):
            seen[0] += 1
            if seen[0] == occurrence:
                _truncate_half(source)
                kill()
        return real_replace(source, destination, **kwargs)

    patch_replace(replace)
    return []

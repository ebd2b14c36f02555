"""Files written whole or not at all, and whether they can be written: a full disk or a read-only folder.

Every file kerasrwm writes goes through `write_atomically`: to a temporary name, then renamed into
place. It first checks that the disk has room for it (`check_free_space`, against the writer's
estimate, e.g. `state_bytes` of a model), since a full disk inside h5py prints hundreds of error
lines and can crash the process, and it turns a full disk met while writing into one
`WriteError`. `check_writable` asks, before any work, whether a folder can be written at all.
"""

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile

import numpy as np

# Kept free on top of every write's own estimate: a disk this full is full.
MIN_FREE_BYTES = 1 << 20
# The file format's share per variable (HDF5 headers, Keras' names): about 1 KiB measured on a
# 109-variable learner; `state_bytes` counts twice that.
FILE_BYTES_PER_VARIABLE = 2048
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class WriteError(OSError, ValueError):
    """A file or folder cannot be written: the disk is full, or the folder is read-only or not a folder.

    An `OSError` whose `errno` is the cause's (`ENOSPC`, `EROFS`, `EACCES`, `EPERM`, `ENOTDIR`), and a
    `ValueError`, so that the command line prints it as one `kerasrwm: error:` line. The message
    names the path and says what was kept. Raised as `WriteError(errno_code, message)`.
    """

    def __str__(self):
        return self.strerror


def _disk_full(path, how):
    return WriteError(
        errno.ENOSPC,
        f"the disk holding {path} is full ({how}): {os.path.basename(path)} was not written and nothing already "
        "written was lost (the previous whole files stay). Free some space and rerun the same command: a training "
        "run resumes where it stopped.",
    )


def _is_disk_full(error):
    """True for an `OSError` ENOSPC or EDQUOT, and for h5py's and TensorFlow's reports of one (their text holds
    the C library's message)."""
    return getattr(error, "errno", None) in _DISK_FULL or any(os.strerror(code) in str(error) for code in _DISK_FULL)


def state_bytes(model):
    """An upper estimate, in bytes, of a file holding `model`'s variables and, once built, its optimizer's.

    The bytes of their values plus `FILE_BYTES_PER_VARIABLE` for each, for the file format.
    """
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        variables += optimizer.variables
    values = sum(math.prod(variable.shape) * np.dtype(variable.dtype).itemsize for variable in variables)
    return values + FILE_BYTES_PER_VARIABLE * len(variables)


def check_free_space(path, expected_bytes=0):
    """Raises `WriteError` (ENOSPC) unless the disk that `path` goes to has `expected_bytes` + `MIN_FREE_BYTES` free.

    Args:
        path: the file (or folder) about to be written; its parent folder exists.
        expected_bytes: an upper estimate of its size.
    """
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    needed = expected_bytes + MIN_FREE_BYTES
    if free < needed:
        raise _disk_full(path, f"{free / 2**20:.1f} MiB free, {needed / 2**20:.1f} MiB needed")


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _replace(source, destination):
    """Renames `source` onto `destination`; a folder replaces a folder there whole (set aside, then removed)."""
    if os.path.isdir(source) and os.path.isdir(destination) and os.listdir(destination):
        previous = f"{source}.previous"
        _remove(previous)
        os.replace(destination, previous)
        try:
            os.replace(source, destination)
        except Exception:
            os.replace(previous, destination)
            raise
        shutil.rmtree(previous)
    else:
        os.replace(source, destination)


def write_atomically(path, write, expected_bytes=0):
    """Calls `write(temporary_path)`, then renames the result onto `path`: a reader sees all or nothing.

    The temporary name is hidden (`.NAME.tmpEXT`, in the same directory, so the rename is atomic)
    and keeps the extension of `path`, which some writers (Keras `save`) check. Until the rename,
    the previous file at `path`, if any, is untouched; a folder written this way replaces a folder
    at `path`. If `write` fails, the temporary is removed.

    Args:
        path: the file (or folder) to write; its parent folder exists.
        write: `write(temporary_path)` writes it.
        expected_bytes: an upper estimate of its size (e.g. `state_bytes(model)`), checked against
            the free space before `write` is called.

    Raises:
        WriteError: (ENOSPC) the disk has not `expected_bytes` free (then nothing is written), or
            it filled up during the write; the previous file at `path` is untouched.
    """
    directory, name = os.path.split(path)
    temporary_path = os.path.join(directory, f".{name}.tmp{os.path.splitext(name)[1]}")
    check_free_space(path, expected_bytes)
    try:
        write(temporary_path)
        _replace(temporary_path, path)
    except Exception as error:
        _remove(temporary_path)
        if _is_disk_full(error):
            raise _disk_full(path, "it filled up during the write") from error
        raise


def write_json_atomically(path, value):
    """Writes `value` as indented JSON to `path`, whole or not at all."""

    def write(temporary_path):
        with open(temporary_path, "w") as file:
            json.dump(value, file, indent=2)

    write_atomically(path, write)


def check_writable(directory, name):
    """Raises `WriteError` naming `name` unless files can be created in the folder `directory`.

    Creates and removes an empty file there. A folder that does not exist yet is checked at its
    nearest existing parent, where it would be created; it is not created. Call it before any work
    whose results go to `directory`.

    Args:
        directory: the folder (a path-like).
        name: how the caller calls it in the message, e.g. `"--output"` or `` "`output_dir`" ``.

    Raises:
        WriteError: `directory` or one of its parents is a file (ENOTDIR), or the probe failed (its
            errno: EROFS for a read-only file system, EACCES or EPERM, ENOSPC).
    """
    directory = os.fspath(directory)
    existing = os.path.abspath(directory)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        reason = "it is a file" if existing == os.path.abspath(directory) else f"{existing} is a file"
        raise WriteError(errno.ENOTDIR, f"{name} {directory!r} cannot be a folder ({reason}); choose a folder.")
    try:
        descriptor, probe = tempfile.mkstemp(dir=existing, prefix=".kerasrwm-probe-")
    except OSError as error:
        where = "" if existing == os.path.abspath(directory) else f" in {existing}"
        raise WriteError(
            error.errno, f"{name} {directory!r} cannot be written ({error.strerror}{where}); choose a writable folder."
        ) from None
    os.close(descriptor)
    os.remove(probe)

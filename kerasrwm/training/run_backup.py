"""`RunBackup`: the training state at every epoch end, kept whole across kills, to resume a run."""

import hashlib
import json
import os
import re
import shutil
import warnings

import keras

from kerasrwm.training.atomic_files import state_bytes
from kerasrwm.training.atomic_files import write_atomically

WEIGHTS_FILE = "state.weights.h5"
DIGEST_FILE = "state.sha256"
KEPT_BACKUPS = 2
_BACKUP_NAME = re.compile(r"epoch-(\d+)")
# Written by `keras.callbacks.BackupAndRestore` (kerasrwm before `RunBackup`); still resumed.
_KERAS_WEIGHTS = "latest.weights.h5"
_KERAS_METADATA = "training_metadata.json"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DamagedBackup(ValueError):
    """A backup whose files are missing, truncated or altered since they were written."""


class RunBackup(keras.callbacks.Callback):
    """Backs up the model and optimiser state to `directory/epoch-N/` at the end of epoch N.

    Unlike `keras.callbacks.BackupAndRestore`, which overwrites one weights file and a separate
    epoch record in place (a kill during the save leaves a truncated file, or weights of one
    epoch with the count of another), each backup is a directory written under a temporary
    name and renamed into place; older backups are removed only then, all but the newest
    `KEPT_BACKUPS`. So at any moment the newest `epoch-N` directory is whole and consistent.

    Each backup holds the SHA-256 of its weights file: `restore` loads the newest backup whose
    file matches it, and says in one warning which damaged backup it passed over. A disk too full
    for a backup raises `atomic_files.WriteError` (a `ValueError`) and leaves the earlier ones whole.

    Put it last among the callbacks: an epoch counts as done only once everything else for it
    (model files, logs) is written. Resuming is explicit: `restore(model)` before `fit`, then
    `fit(initial_epoch=...)` with the epochs it returns.

    Args:
        directory: where the backups live (created on the first save).
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def _backups(self):
        """`[(epochs, backup directory or metadata file, weights path)]` of every backup, newest first."""
        names = os.listdir(self.directory) if os.path.isdir(self.directory) else []
        epochs = sorted((int(match.group(1)) for match in map(_BACKUP_NAME.fullmatch, names) if match), reverse=True)
        backups = [
            (count, path, os.path.join(path, WEIGHTS_FILE))
            for count, path in ((count, os.path.join(self.directory, f"epoch-{count}")) for count in epochs)
        ]
        metadata = os.path.join(self.directory, _KERAS_METADATA)
        if not backups and os.path.exists(metadata):
            try:
                with open(metadata) as file:
                    count = int(json.load(file)["epoch"])
            except (OSError, ValueError, KeyError, TypeError) as error:
                raise DamagedBackup(
                    f"{metadata} is damaged ({type(error).__name__}: {error}); remove {self.directory} "
                    "to restart the run from epoch 0."
                ) from None
            backups.append((count, metadata, os.path.join(self.directory, _KERAS_WEIGHTS)))
        return backups

    def completed_epochs(self):
        """Epochs done according to the newest backup (0 if none)."""
        backups = self._backups()
        return backups[0][0] if backups else 0

    def restore(self, model):
        """Loads the newest whole backup into a built, compiled `model`; returns its epochs (0: none).

        The optimizer's variables are created in the scope of the strategy that holds the model
        (`model.distribute_strategy`), so a backup of any strategy resumes under any other. A
        backup whose weights file is missing, truncated or altered is passed over with a warning;
        when none is whole, raises `DamagedBackup` (a `ValueError`) naming the file and the fix.
        """
        backups = self._backups()
        damaged = []
        for epochs, backup, weights_path in backups:
            try:
                self._load(model, backup, weights_path)
            except DamagedBackup as error:
                damaged.append(str(error))
                continue
            if damaged:
                warnings.warn(
                    f"kerasrwm: {'; '.join(damaged)}; resuming from the backup of epoch {epochs} instead.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return epochs
        if damaged:
            raise DamagedBackup(
                f"{'; '.join(damaged)}; no whole backup is left: remove {self.directory} to restart the run "
                "from epoch 0."
            )
        return 0

    def _load(self, model, backup, weights_path):
        digest_path = os.path.join(backup, DIGEST_FILE)
        try:
            if os.path.exists(digest_path):  # backups written before digests are loaded unchecked
                with open(digest_path) as file:
                    if file.read().strip() != _sha256(weights_path):
                        raise ValueError("its content differs from the digest written with it")
            with model.distribute_strategy.scope():
                if not model.optimizer.built:
                    model.optimizer.build(model.trainable_variables)
                model.load_weights(weights_path)
        except (OSError, ValueError, KeyError) as error:  # h5py reports damage as OSError or KeyError
            raise DamagedBackup(f"backup {weights_path} is damaged ({type(error).__name__}: {error})") from None

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch + 1}"

        def write(temporary_path):
            shutil.rmtree(temporary_path, ignore_errors=True)  # left by a kill during an earlier save
            os.makedirs(temporary_path)
            weights_path = os.path.join(temporary_path, WEIGHTS_FILE)
            self.model.save_weights(weights_path)
            with open(os.path.join(temporary_path, DIGEST_FILE), "w") as file:
                file.write(_sha256(weights_path))

        path = os.path.join(self.directory, name)
        shutil.rmtree(path, ignore_errors=True)  # a damaged backup of this epoch, passed over by `restore`
        write_atomically(path, write, state_bytes(self.model))
        kept = {f"epoch-{count}" for count, _, _ in self._backups()[:KEPT_BACKUPS]}
        for old in os.listdir(self.directory):
            if old not in kept:
                path = os.path.join(self.directory, old)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    def remove(self):
        """Deletes all backups (once the run is finished)."""
        shutil.rmtree(self.directory, ignore_errors=True)

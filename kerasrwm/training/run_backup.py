"""`RunBackup`: the training state at every epoch end, kept whole across kills, to resume a run."""

import json
import os
import re
import shutil

import keras

from kerasrwm.training.atomic_files import write_atomically

WEIGHTS_FILE = "state.weights.h5"
_BACKUP_NAME = re.compile(r"epoch-(\d+)")
# Written by `keras.callbacks.BackupAndRestore` (kerasrwm before `RunBackup`); still resumed.
_KERAS_WEIGHTS = "latest.weights.h5"
_KERAS_METADATA = "training_metadata.json"


class RunBackup(keras.callbacks.Callback):
    """Backs up the model and optimiser state to `directory/epoch-N/` at the end of epoch N.

    Unlike `keras.callbacks.BackupAndRestore`, which overwrites one weights file and a separate
    epoch record in place (a kill during the save leaves a truncated file, or weights of one
    epoch with the count of another), each backup is a directory written under a temporary
    name and renamed into place; the previous backup is removed only then. So at any moment
    the newest `epoch-N` directory is whole and consistent.

    Put it last among the callbacks: an epoch counts as done only once everything else for it
    (model files, logs) is written. Resuming is explicit: `restore(model)` before `fit`, then
    `fit(initial_epoch=...)` with the epochs it returns.

    Args:
        directory: where the backups live (created on the first save).
    """

    def __init__(self, directory):
        super().__init__()
        self.directory = directory

    def _newest(self):
        """`(epochs, weights path)` of the newest whole backup, or `(0, None)`."""
        names = os.listdir(self.directory) if os.path.isdir(self.directory) else []
        epochs = [int(match.group(1)) for match in map(_BACKUP_NAME.fullmatch, names) if match]
        if epochs:
            newest = max(epochs)
            return newest, os.path.join(self.directory, f"epoch-{newest}", WEIGHTS_FILE)
        metadata = os.path.join(self.directory, _KERAS_METADATA)
        if os.path.exists(metadata):
            with open(metadata) as file:
                return int(json.load(file)["epoch"]), os.path.join(self.directory, _KERAS_WEIGHTS)
        return 0, None

    def completed_epochs(self):
        """Epochs done according to the newest whole backup (0 if none)."""
        return self._newest()[0]

    def restore(self, model):
        """Loads the newest backup into a built, compiled `model`; returns its epochs (0: nothing to load).

        The optimizer's variables are created in the scope of the strategy that holds the model
        (`model.distribute_strategy`), so a backup of any strategy resumes under any other.
        """
        epochs, path = self._newest()
        if path is None:
            return 0
        with model.distribute_strategy.scope():
            if not model.optimizer.built:
                model.optimizer.build(model.trainable_variables)
            model.load_weights(path)
        return epochs

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epoch + 1}"

        def write(temporary_path):
            shutil.rmtree(temporary_path, ignore_errors=True)  # left by a kill during an earlier save
            os.makedirs(temporary_path)
            self.model.save_weights(os.path.join(temporary_path, WEIGHTS_FILE))

        write_atomically(os.path.join(self.directory, name), write)
        for old in os.listdir(self.directory):
            if old != name:
                path = os.path.join(self.directory, old)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    def remove(self):
        """Deletes all backups (once the run is finished)."""
        shutil.rmtree(self.directory, ignore_errors=True)

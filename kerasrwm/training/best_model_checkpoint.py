"""`BestModelCheckpoint`: keeps the model of the best validation epoch, durable across kills."""

import json
import math
import os

import keras

from kerasrwm.training.atomic_files import state_bytes
from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically
from kerasrwm.training.latest_model_checkpoint import model_file_damage


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `directory/best.keras` at each epoch end whose `monitor` beats the best.

    The best value and its epoch live in `directory/best.json`, read back at the start of
    training, so a resumed run keeps comparing with the best epoch before the kill (Keras'
    `ModelCheckpoint(save_best_only=True)` forgets it). Both files are written to a temporary
    name and renamed into place, the model first: a kill leaves the previous best model whole.
    Put this callback before `RunBackup`, so that an epoch is recorded as
    done only after its best model is saved. Non-finite values never count as best.

    When training (re)starts, a damaged `best.json` (not JSON, or not an epoch and a finite
    value) or a `best.keras` missing or damaged beside it raises `ValueError` naming the file
    and the fix, before any step runs. A full disk raises `atomic_files.WriteError` (a `ValueError`)
    and leaves both files as they were.

    Args:
        directory: the run directory.
        monitor: the epoch-end log to maximise, e.g. `"val_student_accuracy"`.
    """

    def __init__(self, directory, monitor="val_student_accuracy"):
        super().__init__()
        self.model_path = os.path.join(directory, "best.keras")
        self.record_path = os.path.join(directory, "best.json")
        self.monitor = monitor

    def best(self):
        """`{"epoch": ..., monitor: ...}` of the best epoch so far, or None before the first."""
        if not os.path.exists(self.record_path):
            return None
        fix = f"delete it and {self.model_path} to choose the best model among the epochs still to train"
        try:
            with open(self.record_path) as file:
                record = json.load(file)
            epoch, value = record["epoch"], float(record[self.monitor])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{self.record_path} is damaged ({type(error).__name__}: {error}); {fix}.") from None
        if not isinstance(epoch, int) or epoch < 1 or not math.isfinite(value):
            raise ValueError(f"{self.record_path} is damaged (it holds {record!r}); {fix}.")
        return record

    def on_train_begin(self, logs=None):
        if self.best() is None:
            return
        damage = model_file_damage(self.model_path) if os.path.exists(self.model_path) else "the file is missing"
        if damage:
            raise ValueError(
                f"{self.model_path} is damaged ({damage}) while {self.record_path} records its epoch; delete both "
                "to choose the best model among the epochs still to train."
            )

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"`monitor` {self.monitor!r} is not among the epoch-end logs {sorted(logs or {})}.")
        value = float(value)
        best = self.best()
        if not math.isfinite(value) or (best is not None and value <= best[self.monitor]):
            return
        write_atomically(self.model_path, self.model.save, state_bytes(self.model))
        write_json_atomically(self.record_path, {"epoch": epoch + 1, self.monitor: value})

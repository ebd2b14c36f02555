"""`BestModelCheckpoint`: keeps the model of the best validation epoch, durable across kills."""

import json
import math
import os

import keras

from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `directory/best.keras` at each epoch end whose `monitor` beats the best.

    The best value and its epoch live in `directory/best.json`, read back at the start of
    training, so a resumed run keeps comparing with the best epoch before the kill (Keras'
    `ModelCheckpoint(save_best_only=True)` forgets it). Both files are written to a temporary
    name and renamed into place, the model first: a kill leaves the previous best model whole.
    Put this callback before `RunBackup`, so that an epoch is recorded as
    done only after its best model is saved. Non-finite values never count as best.

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
        with open(self.record_path) as file:
            return json.load(file)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"`monitor` {self.monitor!r} is not among the epoch-end logs {sorted(logs or {})}.")
        value = float(value)
        best = self.best()
        if not math.isfinite(value) or (best is not None and value <= best[self.monitor]):
            return
        write_atomically(self.model_path, self.model.save)
        write_json_atomically(self.record_path, {"epoch": epoch + 1, self.monitor: value})

"""`LatestModelCheckpoint`: the model at every epoch end, replaced whole."""

import os
import warnings
import zipfile
import zlib

import keras

from kerasrwm.training.atomic_files import state_bytes
from kerasrwm.training.atomic_files import write_atomically


def model_file_damage(path):
    """Why the `.keras` file at `path` is damaged (truncated, or a member failing its CRC), or None.

    Reads the whole file once; it does not build the model.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (OSError, zipfile.BadZipFile, zlib.error) as error:
        return f"{type(error).__name__}: {error}"
    return None if bad_member is None else f"{bad_member} fails its CRC check"


class LatestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` (a `.keras` file) at every epoch end, via a temporary file.

    `keras.callbacks.ModelCheckpoint` writes in place, so a kill during the save leaves a
    truncated file where the previous epoch's model was. A file found damaged when training
    (re)starts is reported in one warning; the next epoch end replaces it. A full disk raises
    `atomic_files.WriteError` (a `ValueError`) and leaves the previous file as it was.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        damage = os.path.exists(self.path) and model_file_damage(self.path)
        if damage:
            warnings.warn(
                f"kerasrwm: {self.path} is damaged ({damage}); the end of the next epoch replaces it.",
                RuntimeWarning,
                stacklevel=2,
            )

    def on_epoch_end(self, epoch, logs=None):
        write_atomically(self.path, self.model.save, state_bytes(self.model))

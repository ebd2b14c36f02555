"""`LatestModelCheckpoint`: the model at every epoch end, replaced whole."""

import keras

from kerasrwm.training.atomic_files import write_atomically


class LatestModelCheckpoint(keras.callbacks.Callback):
    """Saves the model to `path` (a `.keras` file) at every epoch end, via a temporary file.

    `keras.callbacks.ModelCheckpoint` writes in place, so a kill during the save leaves a
    truncated file where the previous epoch's model was.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        write_atomically(self.path, self.model.save)

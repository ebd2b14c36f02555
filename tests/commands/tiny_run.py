"""A tiny training configuration for command tests, and a script entry that trains it.

Run as `python -m tests.commands.tiny_run DIR [KILL_AFTER_EPOCH]`: trains into DIR and, when
KILL_AFTER_EPOCH is given, kills the process (os._exit) at the end of that epoch, after the
backup has been written.
"""

import os
import sys

import keras

TINY_FLAGS = [
    "--data", "synthetic", "--data-option", "num_classes=40", "--data-option", "image_size=16",
    "--n-way", "3", "--k-shot", "2", "--k-extra", "1", "--hidden-size", "8", "--num-layers", "1",
    "--num-heads", "2", "--ff-dim", "8", "--backbone-channels", "4", "--batch-size", "4",
    "--steps", "6", "--steps-per-epoch", "2", "--validation-episodes", "8", "--learning-rate", "0.01",
    "--k-test-sweep", "1,2",
]


class KillAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os._exit(17)


def tiny_config():
    from kerasrwm.cli import build_parser
    from kerasrwm.commands.common import config_from_args

    return config_from_args(build_parser().parse_args(["train", "--output", "unused", *TINY_FLAGS]))


if __name__ == "__main__":
    from kerasrwm.training.experiment import train

    callbacks = [KillAfterEpoch(int(sys.argv[2]))] if len(sys.argv) > 2 else []
    train(tiny_config(), sys.argv[1], callbacks=callbacks, verbose=0)

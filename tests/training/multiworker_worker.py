"""One worker of a multi-worker test run (reads `TF_CONFIG`); saves its final weights.

Run as `python -m tests.training.multiworker_worker RUN_DIR WEIGHTS.npz MODEL [KILL_AFTER_EPOCH]`:
trains `multiworker_config()` into RUN_DIR with `strategy="multiworker"` and saves every
weight (trainable or not) to WEIGHTS.npz, and the initial weights to WEIGHTS.initial.npz.
MODEL is `conv4` (the configured learner) or `linear` (`linear_learner`: no BatchNorm, plain
SGD, so that the update can be compared exactly with a single-process one and a loss-scaling
error shows up as a factor of 2). With KILL_AFTER_EPOCH, the process exits with status 17 at
the end of that epoch, after the model files and before the epoch's checkpoint.
"""

import os
import sys

import keras
import numpy as np

from kerasrwm.training.tasks import ARCHITECTURE_KEYS
from kerasrwm.training.tasks import get_task
from tests.commands.tiny_run import tiny_config

STEPS = 4
STEPS_PER_EPOCH = 2


class KillAfterEpoch(keras.callbacks.Callback):
    """Ends the process (exit status 17) at the end of epoch `epoch` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            os._exit(17)


def multiworker_config():
    """The tiny configuration, trained for 2 epochs of 2 steps."""
    return {**tiny_config(), "steps": STEPS, "steps_per_epoch": STEPS_PER_EPOCH}


def linear_learner(config):
    """The configured learner with a flattening backbone (no BatchNorm) and SGD."""
    task = get_task(config["protocol"])
    keys = [key for key in (*ARCHITECTURE_KEYS, *task.loss_keys) if key not in ("backbone", "backbone_channels")]
    model = task.learner_class(backbone=keras.layers.Flatten(), **{key: config[key] for key in keys})
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    return model


class SaveInitialWeights(keras.callbacks.Callback):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        np.savez(self.path, *self.model.get_weights())


if __name__ == "__main__":
    from kerasrwm.training.experiment import build_learner
    from kerasrwm.training.experiment import train

    run_dir, weights_path, model_name = sys.argv[1:4]
    callbacks = [SaveInitialWeights(weights_path.replace(".npz", ".initial.npz"))]
    if len(sys.argv) > 4:
        callbacks.append(KillAfterEpoch(int(sys.argv[4])))
    build_model = {"conv4": build_learner, "linear": linear_learner}[model_name]
    model = train(multiworker_config(), run_dir, callbacks, verbose=0, strategy="multiworker", build_model=build_model)
    np.savez(weights_path, *model.get_weights())

"""A tiny training configuration for command tests, and a script entry that trains it.

Run as `python -m tests.commands.tiny_run DIR [MOMENT OCCURRENCE]`: trains into DIR and, when a
moment of `tests.training.faults` is given, kills the process (os._exit(17)) there.
"""

import os
import sys

TINY_FLAGS = [
    "--data",
    "synthetic",
    "--data-option",
    "num_classes=40",
    "--data-option",
    "image_size=16",
    "--n-way",
    "3",
    "--k-shot",
    "2",
    "--k-extra",
    "1",
    "--hidden-size",
    "8",
    "--num-layers",
    "1",
    "--num-heads",
    "2",
    "--ff-dim",
    "8",
    "--backbone-channels",
    "4",
    "--batch-size",
    "4",
    "--steps",
    "6",
    "--steps-per-epoch",
    "2",
    "--validation-episodes",
    "8",
    "--learning-rate",
    "0.01",
    "--k-test-sweep",
    "1,2",
]


def tiny_config():
    from kerasrwm.cli import build_parser
    from kerasrwm.commands.common import config_from_args

    return config_from_args(build_parser().parse_args(["train", "--output", "unused", *TINY_FLAGS]))


if __name__ == "__main__":
    from kerasrwm.training.experiment import train
    from tests.training import faults

    callbacks = []
    if len(sys.argv) > 2:

        def patch_replace(function):
            os.replace = function

        callbacks = faults.install((sys.argv[2], int(sys.argv[3])), lambda: os._exit(17), patch_replace)
    train(tiny_config(), sys.argv[1], callbacks=callbacks, verbose=0)

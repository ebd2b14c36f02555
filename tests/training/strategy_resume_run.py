"""Kills and resumes of the tiny run under the strategies `none` and `mirrored`, in one process.

Run as `python -m tests.training.strategy_resume_run ROOT` with `KERASRWM_LOGICAL_CPUS=2` (the
logical devices must exist before TensorFlow initialises, hence a script). Trains into ROOT:
`none/` and `mirrored/`, uninterrupted runs; `KILLED-RESUMED/` for each pair of strategies in
`RESUMES`, a run killed at `MOMENT` under the first strategy and resumed under the second.
"""

import os
import sys

from kerasrwm.training.experiment import train
from tests.commands.tiny_run import tiny_config
from tests.training import faults

MOMENT = ("save:model.keras", 2)
"""The kill: while the second epoch's `model.keras` is written, so one whole backup exists."""
RESUMES = (("mirrored", "mirrored"), ("none", "mirrored"), ("mirrored", "none"))


def killed_and_resumed(run_dir, killed_under, resumed_under):
    real_replace = os.replace
    callbacks = faults.install(MOMENT, faults.raise_kill, lambda function: setattr(os, "replace", function))
    try:
        train(tiny_config(), run_dir, callbacks=callbacks, verbose=0, strategy=killed_under)
    except faults.SimulatedKill:
        pass
    else:
        raise AssertionError("the run was not killed")
    finally:
        os.replace = real_replace
    train(tiny_config(), run_dir, verbose=0, strategy=resumed_under)


if __name__ == "__main__":
    root = sys.argv[1]
    for strategy in ("none", "mirrored"):
        train(tiny_config(), os.path.join(root, strategy), verbose=0, strategy=strategy)
    for killed_under, resumed_under in RESUMES:
        killed_and_resumed(os.path.join(root, f"{killed_under}-{resumed_under}"), killed_under, resumed_under)

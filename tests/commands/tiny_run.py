"""A tiny training configuration for command tests, and a script entry that trains it.

Run as `python -m tests.commands.tiny_run DIR [MOMENT OCCURRENCE] [--protocol P] [--strategy S]
[--set KEY=JSON ...]`: trains the tiny configuration of protocol P (default bootstrap), with the
keys set, into DIR under strategy S (default none) and, when a moment of `tests.training.faults` is
given, kills the process (os._exit(17)) there.
"""

import argparse
import json
import os

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


def tiny_config(protocol="bootstrap"):
    """The configuration of `TINY_FLAGS` under `protocol`, without a K_test sweep where it has none."""
    from kerasrwm.cli import build_parser
    from kerasrwm.commands.common import config_from_args
    from kerasrwm.training.tasks import get_task

    flags = TINY_FLAGS if get_task(protocol).sweeps_k_test else TINY_FLAGS[: TINY_FLAGS.index("--k-test-sweep")]
    arguments = ["train", "--output", "unused", *flags, "--protocol", protocol]
    return config_from_args(build_parser().parse_args(arguments))


if __name__ == "__main__":
    from kerasrwm.training.experiment import train
    from tests.training import faults

    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("moment", nargs="*")
    parser.add_argument("--protocol", default="bootstrap")
    parser.add_argument("--strategy", default="none")
    parser.add_argument("--set", action="append", default=[], type=lambda text: text.split("=", 1))
    args = parser.parse_args()
    config = {**tiny_config(args.protocol), **{key: json.loads(value) for key, value in args.set}}
    callbacks = []
    if args.moment:

        def patch_replace(function):
            os.replace = function

        name, occurrence = args.moment
        callbacks = faults.install((name, int(occurrence)), lambda: os._exit(17), patch_replace)
    train(config, args.run_dir, callbacks=callbacks, verbose=0, strategy=args.strategy)

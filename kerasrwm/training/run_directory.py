"""The run directory: its layout, reading a run back, and the checks before a trainer writes into it.

Layout of a run directory `output_dir`:

- `config.json`: the configuration (`kerasrwm.training.configuration`), written once the data and
  the model are known to work;
- `model.keras`: the latest epoch's model; `best.keras` and `best.json`: the epoch with the best
  validation score (the protocol's `Task.monitor`);
- `backup/` (`RunBackup`: resume a Keras `fit` run after a kill), removed once the run is
  finished, or `checkpoints/` (`tf.train.Checkpoint`s of a multi-worker run);
- `logs/`: TensorBoard;
- `lock` (`RunLock`) while a trainer writes the run, and an empty `finished` once all steps are done.

Every file is written to a temporary name and renamed into place (`atomic_files`).
"""

import json
import os
import zipfile

import keras

from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically
from kerasrwm.training.configuration import make_config
from kerasrwm.training.divergence import check_finite_weights
from kerasrwm.training.run_backup import RunBackup

CONFIG_FILE = "config.json"
MODEL_FILES = {"best": "best.keras", "last": "model.keras"}
BACKUP_DIR = "backup"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"
FINISHED_FILE = "finished"
# The keys of `config.json` that say what a run learned; see `load_config`.
REQUIRED_KEYS = ("data", "data_options", "n_way", "k_shot")


def load_config(output_dir):
    """The configuration a run in `output_dir` was trained with, checked as `make_config` checks a new one.

    `config.json` must be a JSON object holding `REQUIRED_KEYS`, which say what the run learned: the
    data and the episodes' N and K, in every configuration kerasrwm has written. Without them the
    run would be evaluated, exported or resumed on the defaults. Any other key missing is filled
    from its default, so that runs written before a key was added keep loading (a run from before
    the `protocol` key is a `"bootstrap"` run, its default; the learner is read from the model file).

    Raises:
        ValueError: `output_dir` holds no `config.json`, or it cannot be read, is not JSON, not an
            object, lacks a required key or holds a bad value; the message names the file and the fix.
    """
    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} holds no {CONFIG_FILE}: it is not a kerasrwm training run.")
    fix = "write it with the settings the run was trained with, or train a new run in another directory"
    try:
        with open(path) as file:
            saved = json.load(file)
    except (OSError, ValueError) as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(
            f"{path} cannot be read ({type(error).__name__}: {error}); the run is damaged: {fix}."
        ) from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} must hold a JSON object; it holds a {type(saved).__name__}: {fix}.")
    missing = [key for key in REQUIRED_KEYS if key not in saved]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}, which define the run: {fix}.")
    try:
        return make_config(saved)
    except ValueError as error:
        raise ValueError(f"{path} holds a bad configuration ({error}): {fix}.") from None


def write_config(output_dir, config):
    """Claims `output_dir` for `config` (creating it) unless it holds a configuration already."""
    if not os.path.exists(os.path.join(output_dir, CONFIG_FILE)):
        os.makedirs(output_dir, exist_ok=True)
        write_json_atomically(os.path.join(output_dir, CONFIG_FILE), config)


def check_same_config(config, output_dir):
    """Raises `ValueError` naming the differing keys if `output_dir` holds a run of another configuration."""
    if not os.path.exists(os.path.join(output_dir, CONFIG_FILE)):
        return
    saved = load_config(output_dir)
    differing = [key for key in config if saved[key] != config[key]]
    if differing:
        changes = ", ".join(f"{key}: {saved[key]!r} in the run, {config[key]!r} now" for key in differing)
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run with a different configuration ({changes}); "
            "use a new directory or the same settings to resume."
        )


def run_backup(output_dir):
    """The `RunBackup` of a Keras `fit` run in `output_dir`."""
    return RunBackup(os.path.join(output_dir, BACKUP_DIR))


def check_resumable(output_dir, strategy):
    """Raises `ValueError` when `output_dir` holds a partial run that `strategy` cannot resume."""
    if strategy == "multiworker" and run_backup(output_dir).completed_epochs():
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run started with Keras `fit`; resume it with "
            "`strategy` 'none' or 'mirrored'."
        )
    if strategy != "multiworker" and os.path.isdir(os.path.join(output_dir, CHECKPOINT_DIR)):
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a multi-worker run; resume it with `strategy` 'multiworker'."
        )


def is_finished(output_dir):
    return os.path.exists(os.path.join(output_dir, FINISHED_FILE))


def mark_finished(output_dir):
    """Writes the empty `finished` file, the last file of a run."""
    write_atomically(os.path.join(output_dir, FINISHED_FILE), lambda path: open(path, "w").close())


def load_trained(output_dir, which="best"):
    """`(config, model)` of a finished or interrupted run.

    Args:
        output_dir: the run directory.
        which: `"best"`, the model of the epoch with the best validation score (`best.keras`),
            or `"last"`, the latest epoch's (`model.keras`). A run trained before best models
            were kept has only the latest, which `"best"` then loads.
    """
    if which not in MODEL_FILES:
        raise ValueError(f"`which` must be one of {tuple(MODEL_FILES)}; received: {which!r}.")
    config = load_config(output_dir)
    path = os.path.join(output_dir, MODEL_FILES[which])
    if which == "best" and not os.path.exists(path):
        path = os.path.join(output_dir, MODEL_FILES["last"])
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} has no {os.path.basename(path)} yet: no epoch has finished.")
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} cannot be loaded; the file is damaged ({type(error).__name__}: {error}).") from None
    check_finite_weights(model, path)
    return config, model

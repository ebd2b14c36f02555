"""One training run from a flat configuration: data, learner, optimiser, callbacks, resume.

The configuration is a JSON-able dict (`DEFAULT_CONFIG` lists every key); `train` writes it
to `output_dir/config.json` so that `evaluate` and `export` rebuild the same model and data.
Layout of `output_dir`: `config.json`, `model.keras` (latest weights at each epoch end),
`backup/` (Keras `BackupAndRestore`: resume after a kill), `logs/` (TensorBoard), and an
empty `finished` file once all steps are done.
"""

import json
import os

import keras
import tensorflow as tf

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import episode_dataset
from kerasrwm.data import evaluation_dataset
from kerasrwm.data import load_source
from kerasrwm.models import BootstrappedLearner
from kerasrwm.training.optimizers import reference_adam
from kerasrwm.training.schedules import NoamSchedule

DEFAULT_CONFIG = {
    # data
    "data": "synthetic",
    "data_options": {},
    "n_way": 5,
    "k_shot": 5,
    "k_extra": 5,
    "n_queries": 1,
    "validation_k_shot": None,  # None: the training k_shot
    "validation_episodes": 256,
    # loss
    "beta1": 1.0,
    "beta2": 1.0,
    "beta3": 1.0,
    "distill": "kl",
    "temperature": 1.0,
    # learner
    "backbone": "conv4",
    "backbone_channels": 32,
    "vision_dropout": 0.0,
    "hidden_size": 128,
    "num_layers": 2,
    "num_heads": 8,
    "ff_dim": 512,
    "dropout": 0.0,
    "unknown_label": "zeros",
    "implementation": "auto",
    # optimisation
    "steps": 2000,
    "steps_per_epoch": 200,
    "batch_size": 16,
    "learning_rate": None,  # None: the Noam schedule with `warmup_steps`
    "warmup_steps": 500,
    "seed": 0,
    "jit_compile": "auto",
}

LEARNER_KEYS = (
    "n_way", "beta1", "beta2", "beta3", "distill", "temperature", "backbone", "backbone_channels",
    "vision_dropout", "hidden_size", "num_layers", "num_heads", "ff_dim", "dropout", "unknown_label",
    "implementation",
)


def make_config(overrides=None):
    """`DEFAULT_CONFIG` updated with `overrides`; unknown keys raise `ValueError`."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"Unknown configuration keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}.")
    config = {**DEFAULT_CONFIG, **overrides}
    if config["steps"] % config["steps_per_epoch"]:
        raise ValueError(
            f"`steps` must be a multiple of `steps_per_epoch` ({config['steps_per_epoch']}); "
            f"received steps={config['steps']}."
        )
    return config


def load_config(output_dir):
    """The configuration a run in `output_dir` was trained with."""
    path = os.path.join(output_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} holds no config.json: it is not a kerasrwm training run.")
    with open(path) as file:
        return make_config(json.load(file))


def build_learner(config):
    """A compiled `BootstrappedLearner` (Adam 0.9/0.995/1e-9; Noam schedule or constant rate)."""
    model = BootstrappedLearner(**{key: config[key] for key in LEARNER_KEYS})
    rate = config["learning_rate"] or NoamSchedule(config["hidden_size"], config["warmup_steps"])
    model.compile(optimizer=reference_adam(rate), jit_compile=config["jit_compile"])
    return model


def episode_spec(config, k_shot=None, k_extra=None):
    return EpisodeSpec(
        config["n_way"],
        config["k_shot"] if k_shot is None else k_shot,
        config["k_extra"] if k_extra is None else k_extra,
        config["n_queries"],
    )


def training_stream(config, store, start_batch=0):
    """The training episodes: batch `i` depends only on (`seed`, `i`), so a resumed run continues."""
    return episode_dataset(store, episode_spec(config), config["batch_size"], config["seed"], start_batch=start_batch)


def validation_episodes(config, store):
    """A fixed set of validation episodes at `validation_k_shot`, without extras, cached."""
    batches = max(1, config["validation_episodes"] // config["batch_size"])
    spec = episode_spec(config, k_shot=config["validation_k_shot"], k_extra=0)
    episodes = evaluation_dataset(store, spec, config["batch_size"], 1, batches * config["batch_size"], config["seed"])
    return episodes.dataset().apply(tf.data.experimental.assert_cardinality(batches)).cache()


def _completed_epochs(backup_dir):
    """Epochs that `keras.callbacks.BackupAndRestore` recorded as done in `backup_dir` (0 if none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as file:
        return int(json.load(file)["epoch"])


def train(config, output_dir, callbacks=(), verbose=1):
    """Trains (or resumes) the run in `output_dir`; returns the trained model.

    Rerunning on the same `output_dir` after a kill restores the weights, optimiser and epoch
    from the last completed epoch and continues the same episode stream from there.
    """
    os.makedirs(output_dir, exist_ok=True)
    config_path = os.path.join(output_dir, "config.json")
    if os.path.exists(config_path) and load_config(output_dir) != config:
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run with a different configuration; "
            "use a new directory or the same settings to resume."
        )
    with open(config_path, "w") as file:
        json.dump(config, file, indent=2)
    finished_path = os.path.join(output_dir, "finished")
    if os.path.exists(finished_path):
        if verbose:
            print(f"{output_dir} already holds a finished run; loading it.")
        return load_trained(output_dir)[1]
    keras.utils.set_random_seed(config["seed"])
    source = load_source(config["data"], **config["data_options"])
    train_store = source.split("train")
    backup_dir = os.path.join(output_dir, "backup")
    initial_epoch = _completed_epochs(backup_dir)
    steps_per_epoch = config["steps_per_epoch"]
    validation = validation_episodes(config, source.split("validation"))
    model = build_learner(config)
    model(next(iter(validation)))
    model.fit(
        training_stream(config, train_store, start_batch=initial_epoch * steps_per_epoch),
        epochs=config["steps"] // steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=[
            keras.callbacks.BackupAndRestore(backup_dir),
            keras.callbacks.ModelCheckpoint(os.path.join(output_dir, "model.keras")),
            keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")),
            *callbacks,
        ],
        shuffle=False,
        verbose=verbose,
    )
    if not model.stop_training:
        open(finished_path, "w").close()
    return model


def load_trained(output_dir):
    """`(config, model)` of a finished or interrupted run (latest saved weights)."""
    config = load_config(output_dir)
    path = os.path.join(output_dir, "model.keras")
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} has no model.keras yet: no epoch has finished.")
    return config, keras.models.load_model(path)

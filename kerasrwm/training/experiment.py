"""One training run from a flat configuration: data, learner, optimiser, callbacks, resume.

The configuration is a JSON-able dict (`DEFAULT_CONFIG` lists every key); `train` writes it
to `output_dir/config.json` so that `evaluate` and `export` rebuild the same model and data.
Layout of `output_dir`: `config.json`, `model.keras` (latest weights at each epoch end),
`best.keras` and `best.json` (the epoch with the best validation student accuracy; not for
multi-worker runs), `backup/` (Keras `BackupAndRestore`: resume after a kill) or, for multi-worker runs,
`checkpoints/` (`tf.train.Checkpoint`s), `logs/` (TensorBoard), and an empty `finished` file
once all steps are done.
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
from kerasrwm.training.best_model_checkpoint import BestModelCheckpoint
from kerasrwm.training.distributed import CHECKPOINT_DIR
from kerasrwm.training.distributed import check_global_batch
from kerasrwm.training.distributed import fit_multiworker
from kerasrwm.training.distributed import is_chief
from kerasrwm.training.distributed import make_strategy
from kerasrwm.training.k_test_sweep_callback import KTestSweepCallback
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
    "k_test_sweep": [],  # K_test values evaluated on validation episodes at every epoch end
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
    # monitoring
    "profile_batch": 0,  # TensorBoard profiler: batch (or "start,stop") to profile; 0 is off
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


def training_stream(config, store, start_batch=0, input_context=None):
    """The training episodes: batch `i` depends only on (`seed`, `i`), so a resumed run continues.

    With `input_context` (a `tf.distribute.InputContext`), the stream of one input pipeline of
    a distributed run: batches of `batch_size / num_replicas_in_sync` episodes from the seed
    `seed * num_input_pipelines + input_pipeline_id`, so that pipelines draw from different
    random streams and a single pipeline draws the stream above. `start_batch` is then the
    global step: a pipeline feeding R local replicas starts at its batch `R * start_batch`.
    """
    if input_context is None:
        return episode_dataset(store, episode_spec(config), config["batch_size"], config["seed"], start_batch)
    pipelines = input_context.num_input_pipelines
    return episode_dataset(
        store,
        episode_spec(config),
        input_context.get_per_replica_batch_size(config["batch_size"]),
        config["seed"] * pipelines + input_context.input_pipeline_id,
        start_batch * (input_context.num_replicas_in_sync // pipelines),
    )


def _validation_batches(config):
    """Batches of validation episodes: `validation_episodes` rounded down to whole batches (>= 1)."""
    return max(1, config["validation_episodes"] // config["batch_size"])


def validation_episodes(config, store):
    """A fixed set of validation episodes at `validation_k_shot`, without extras, cached."""
    batches = _validation_batches(config)
    spec = episode_spec(config, k_shot=config["validation_k_shot"], k_extra=0)
    episodes = evaluation_dataset(store, spec, config["batch_size"], 1, batches * config["batch_size"], config["seed"])
    return episodes.dataset().apply(tf.data.experimental.assert_cardinality(batches)).cache()


def k_test_sweep_callback(config, store, output_dir):
    """Evaluates `config["k_test_sweep"]` on fixed validation episodes at every epoch end.

    The scalars `k_test_sweep/accuracy_k{K}` go to `output_dir/logs/k_test_sweep`.
    """
    return KTestSweepCallback(
        store,
        config["k_test_sweep"],
        runs=1,
        episodes=_validation_batches(config) * config["batch_size"],
        batch_size=config["batch_size"],
        seed=config["seed"],
        n_queries=config["n_queries"],
        log_dir=os.path.join(output_dir, "logs", "k_test_sweep"),
    )


def _completed_epochs(backup_dir):
    """Epochs that `keras.callbacks.BackupAndRestore` recorded as done in `backup_dir` (0 if none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as file:
        return int(json.load(file)["epoch"])


def _prepare_run_dir(config, output_dir, write):
    """Checks that `output_dir` is new or holds a run of `config`; writes config.json if `write`."""
    config_path = os.path.join(output_dir, "config.json")
    if os.path.exists(config_path) and load_config(output_dir) != config:
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run with a different configuration; "
            "use a new directory or the same settings to resume."
        )
    if write and not os.path.exists(config_path):
        os.makedirs(output_dir, exist_ok=True)
        temporary_path = config_path + ".tmp"
        with open(temporary_path, "w") as file:
            json.dump(config, file, indent=2)
        os.replace(temporary_path, config_path)  # workers reading it never see a partial file


def _check_resumable(output_dir, strategy):
    """Raises `ValueError` when `output_dir` holds a partial run that `strategy` cannot resume."""
    multiworker_run = os.path.isdir(os.path.join(output_dir, CHECKPOINT_DIR))
    if strategy == "multiworker" and _completed_epochs(os.path.join(output_dir, "backup")):
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run started with Keras `fit`; resume it with "
            "`strategy` 'none' or 'mirrored'."
        )
    if strategy != "multiworker" and multiworker_run:
        raise ValueError(f"`output_dir` {output_dir!r} holds a multi-worker run; resume it with `strategy` 'multiworker'.")


def train(config, output_dir, callbacks=(), verbose=1, strategy="none", build_model=build_learner):
    """Trains (or resumes) the run in `output_dir`; returns the trained model.

    Rerunning on the same `output_dir` after a kill restores the weights, optimiser and epoch
    from the last completed epoch and continues the same episode stream from there.

    Args:
        config: a full configuration (`make_config`).
        output_dir: the run directory (see the module docstring).
        callbacks: extra Keras callbacks (with `"multiworker"`, epoch-level hooks only).
        verbose: Keras `fit` verbosity; with `"multiworker"`, one line per epoch if true.
        strategy: `"none"`, `"mirrored"` or `"multiworker"` (`kerasrwm.training.distributed`).
            It is not part of the configuration: it changes where a run executes, not what it
            learns, so `"none"` and `"mirrored"` resume each other's runs (on the same
            episode stream); a multi-worker run resumes under `"multiworker"`, with any
            number of workers. `config["batch_size"]` is the global batch.
        build_model: `build_model(config)` returns a compiled `BootstrappedLearner`, called in
            the strategy's scope. For learners that the configuration cannot describe (e.g. a
            custom backbone layer or optimiser).
    """
    distribution = make_strategy(strategy)  # first: no TensorFlow op may run before it
    chief = is_chief(distribution)
    _prepare_run_dir(config, output_dir, write=chief)
    finished_path = os.path.join(output_dir, "finished")
    if os.path.exists(finished_path):
        if verbose:
            print(f"{output_dir} already holds a finished run; loading it.")
        return load_trained(output_dir)[1]
    _check_resumable(output_dir, strategy)
    check_global_batch(config["batch_size"], distribution.num_replicas_in_sync)
    if strategy == "multiworker" and config["jit_compile"] is True:
        raise ValueError("`jit_compile=True` is not supported with strategy 'multiworker'; use 'auto' or false.")
    if verbose and strategy != "none":
        print(f"Training with strategy {strategy!r} on {distribution.num_replicas_in_sync} replicas.")
    keras.utils.set_random_seed(config["seed"])
    source = load_source(config["data"], **config["data_options"])
    train_store = source.split("train")
    validation = validation_episodes(config, source.split("validation"))
    if chief and config["k_test_sweep"]:
        callbacks = [k_test_sweep_callback(config, source.split("validation"), output_dir), *callbacks]
    with distribution.scope():
        model = build_model(config)
        model(next(iter(validation)))
    if strategy == "multiworker":
        fit_multiworker(
            model, distribution, lambda context, start: training_stream(config, train_store, start, context),
            validation, output_dir, config["steps"] // config["steps_per_epoch"], config["steps_per_epoch"],
            callbacks, verbose,
        )
    else:
        _fit(model, config, output_dir, train_store, validation, callbacks, verbose)
    if chief and not model.stop_training:
        open(finished_path, "w").close()
    return model


def _fit(model, config, output_dir, train_store, validation, callbacks, verbose):
    """Keras `fit` with backup (resume), per-epoch `model.keras` and TensorBoard logs."""
    backup_dir = os.path.join(output_dir, "backup")
    steps_per_epoch = config["steps_per_epoch"]
    model.fit(
        training_stream(config, train_store, start_batch=_completed_epochs(backup_dir) * steps_per_epoch),
        epochs=config["steps"] // steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=[
            BestModelCheckpoint(output_dir),
            keras.callbacks.BackupAndRestore(backup_dir),
            keras.callbacks.ModelCheckpoint(os.path.join(output_dir, "model.keras")),
            keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"), profile_batch=config["profile_batch"]),
            *callbacks,
        ],
        shuffle=False,
        verbose=verbose,
    )


MODEL_FILES = {"best": "best.keras", "last": "model.keras"}


def load_trained(output_dir, which="best"):
    """`(config, model)` of a finished or interrupted run.

    Args:
        output_dir: the run directory.
        which: `"best"`, the model of the epoch with the best validation student accuracy
            (`best.keras`), or `"last"`, the latest epoch's (`model.keras`). A run trained before
            best models were kept has only the latest, which `"best"` then loads.
    """
    if which not in MODEL_FILES:
        raise ValueError(f"`which` must be one of {tuple(MODEL_FILES)}; received: {which!r}.")
    config = load_config(output_dir)
    path = os.path.join(output_dir, MODEL_FILES[which])
    if which == "best" and not os.path.exists(path):
        path = os.path.join(output_dir, MODEL_FILES["last"])
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} has no {os.path.basename(path)} yet: no epoch has finished.")
    return config, keras.models.load_model(path)

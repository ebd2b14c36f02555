"""One training run from a flat configuration: data, learner, optimiser, callbacks, resume.

The configuration is a JSON-able dict (`DEFAULT_CONFIG` lists every key); `train` writes it
to `output_dir/config.json` so that `evaluate` and `export` rebuild the same model and data.
Layout of `output_dir`: `config.json`, `model.keras` (latest weights at each epoch end),
`best.keras` and `best.json` (the epoch with the best validation student accuracy; not for
multi-worker runs), `backup/` (`RunBackup`: resume after a kill) or, for multi-worker runs,
`checkpoints/` (`tf.train.Checkpoint`s), `logs/` (TensorBoard), `lock` (`RunLock`: the
trainer writing the run) and an empty `finished` file once all steps are done.

Every file is written to a temporary name and renamed into place, and at each epoch end the
backup is written last, so a kill at any moment leaves the previous state whole and a rerun
ends with the same weights as an uninterrupted run.
"""

import json
import os
import zipfile

import keras

from kerasrwm.data import EpisodeSpec
from kerasrwm.data import delayed_label_dataset
from kerasrwm.data import episode_dataset
from kerasrwm.data import evaluation_dataset
from kerasrwm.data import load_source
from kerasrwm.data.delayed_label_episodes import as_labelled_sequence
from kerasrwm.models import BootstrappedLearner
from kerasrwm.models import DelayedLabelLearner
from kerasrwm.ops.srwm import check_hand_off_gradient
from kerasrwm.training.atomic_files import write_atomically
from kerasrwm.training.atomic_files import write_json_atomically
from kerasrwm.training.best_model_checkpoint import BestModelCheckpoint
from kerasrwm.training.distributed import CHECKPOINT_DIR
from kerasrwm.training.distributed import check_global_batch
from kerasrwm.training.distributed import fit_multiworker
from kerasrwm.training.distributed import is_chief
from kerasrwm.training.distributed import make_strategy
from kerasrwm.training.divergence import StopOnDivergence
from kerasrwm.training.divergence import check_finite_weights
from kerasrwm.training.k_test_sweep_callback import KTestSweepCallback
from kerasrwm.training.latest_model_checkpoint import LatestModelCheckpoint
from kerasrwm.training.optimizers import reference_adam
from kerasrwm.training.run_backup import RunBackup
from kerasrwm.training.run_lock import RunLock
from kerasrwm.training.schedules import NoamSchedule
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_number

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
    # "bootstrap": `BootstrappedLearner` on episodes; "delayed_label": `DelayedLabelLearner` on
    # labelled sequences of N·K steps (k_extra, n_queries, the loss keys and k_test_sweep unused)
    "protocol": "bootstrap",
    # loss
    "beta1": 1.0,
    "beta2": 1.0,
    "beta3": 1.0,
    "distill": "kl",
    "temperature": 1.0,
    # the distillation schedule: beta2 is 0 for `beta2_start_step` steps, then rises linearly to
    # `beta2` over `beta2_ramp_steps` steps (both 0: beta2 from the first step)
    "beta2_start_step": 0,
    "beta2_ramp_steps": 0,
    # learner
    "sequence_layer": "srwm",  # "srwm", "deltanet" or "lstm"
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
    # "exact", or "reference": the authors' op's gradient, a reproduction of their bug B2 (not a
    # recommendation): the initial state of an SRWM call also gets the gradient of its returned state
    "hand_off_gradient": "exact",
    # optimisation
    "steps": 2000,
    "steps_per_epoch": None,  # None: min(steps, 200)
    "batch_size": 16,
    "learning_rate": None,  # None: the Noam schedule with `warmup_steps`
    "warmup_steps": 500,
    "seed": 0,
    "jit_compile": "auto",
    # monitoring
    "profile_batch": 0,  # TensorBoard profiler: batch (or "start,stop") to profile; 0 is off
    # bootstrapping diagnostics every this many steps; 0 is off. `kerasrwm train` adds the callback; from Python,
    # pass `kerasrwm.training.bootstrap_diagnostics.diagnostics_callback(config, output_dir)` in `train`'s callbacks
    "diagnostics_every": 0,
}

DEFAULT_STEPS_PER_EPOCH = 200

LEARNER_KEYS = (
    "n_way",
    "beta1",
    "beta2",
    "beta3",
    "distill",
    "temperature",
    "beta2_start_step",
    "beta2_ramp_steps",
    "backbone",
    "backbone_channels",
    "vision_dropout",
    "hidden_size",
    "num_layers",
    "num_heads",
    "ff_dim",
    "dropout",
    "unknown_label",
    "implementation",
    "sequence_layer",
    "hand_off_gradient",
)
BOOTSTRAP_KEYS = ("beta1", "beta2", "beta3", "distill", "temperature", "beta2_start_step", "beta2_ramp_steps")
PROTOCOLS = ("bootstrap", "delayed_label")
# The epoch-end log that picks a run's best model, per protocol.
MONITORS = {"bootstrap": "val_student_accuracy", "delayed_label": "val_accuracy"}


def make_config(overrides=None):
    """`DEFAULT_CONFIG` updated with `overrides`; unknown keys raise `ValueError`."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULT_CONFIG))
    if unknown:
        raise ValueError(f"Unknown configuration keys {unknown}; known keys: {sorted(DEFAULT_CONFIG)}.")
    config = {**DEFAULT_CONFIG, **overrides}
    _check_optimisation(config)
    _check_protocol(config)
    if config["steps"] % config["steps_per_epoch"]:
        raise ValueError(
            f"`steps` must be a multiple of `steps_per_epoch` ({config['steps_per_epoch']}); "
            f"received steps={config['steps']}."
        )
    return config


def _check_optimisation(config):
    """Checks the optimisation and validation keys of `config` in place; fills `steps_per_epoch`."""
    for key in ("steps", "batch_size", "warmup_steps", "validation_episodes"):
        check_integer(key, config[key])
    for key in ("seed", "beta2_start_step", "beta2_ramp_steps", "diagnostics_every"):
        check_integer(key, config[key], minimum=0)
    check_hand_off_gradient(config["hand_off_gradient"])
    if config["steps_per_epoch"] is None:
        config["steps_per_epoch"] = min(config["steps"], DEFAULT_STEPS_PER_EPOCH)
    check_integer("steps_per_epoch", config["steps_per_epoch"])
    if config["learning_rate"] is not None:
        check_number("learning_rate", config["learning_rate"], exclusive=True)
    if config["jit_compile"] not in ("auto", True, False):
        raise ValueError(
            f"`jit_compile` must be 'auto', true or false; received jit_compile={config['jit_compile']!r}."
        )
    if not isinstance(config["data_options"], dict):
        raise ValueError(f"`data_options` must be a JSON object; received data_options={config['data_options']!r}.")


def _check_protocol(config):
    if config["protocol"] not in PROTOCOLS:
        raise ValueError(f"`protocol` must be one of {PROTOCOLS}; received protocol={config['protocol']!r}.")
    if config["protocol"] == "delayed_label" and config["diagnostics_every"]:
        raise ValueError(
            f"`diagnostics_every` is for the bootstrap protocol; received diagnostics_every={config['diagnostics_every']} "
            "with protocol='delayed_label'."
        )
    if config["protocol"] == "delayed_label" and config["k_test_sweep"]:
        raise ValueError(
            f"`k_test_sweep` is for the bootstrap protocol; received k_test_sweep={config['k_test_sweep']!r} "
            "with protocol='delayed_label'."
        )


def load_config(output_dir):
    """The configuration a run in `output_dir` was trained with."""
    path = os.path.join(output_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"`output_dir` {output_dir!r} holds no config.json: it is not a kerasrwm training run.")
    try:
        with open(path) as file:
            return make_config(json.load(file))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the run directory is damaged.") from None


def build_learner(config):
    """The compiled learner of `config["protocol"]` (Adam 0.9/0.995/1e-9; Noam schedule or constant rate)."""
    if config["protocol"] == "delayed_label":
        model = DelayedLabelLearner(**{key: config[key] for key in LEARNER_KEYS if key not in BOOTSTRAP_KEYS})
    else:
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

    Under the "delayed_label" protocol, labelled sequences of N·K steps (`delayed_label_dataset`).

    With `input_context` (a `tf.distribute.InputContext`), the stream of one input pipeline of
    a distributed run: batches of `batch_size / num_replicas_in_sync` episodes from the seed
    `seed * num_input_pipelines + input_pipeline_id`, so that pipelines draw from different
    random streams and a single pipeline draws the stream above. `start_batch` is then the
    global step: a pipeline feeding R local replicas starts at its batch `R * start_batch`.
    """
    batch_size, seed = config["batch_size"], config["seed"]
    if input_context is not None:
        pipelines = input_context.num_input_pipelines
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        seed = seed * pipelines + input_context.input_pipeline_id
        start_batch *= input_context.num_replicas_in_sync // pipelines
    if config["protocol"] == "delayed_label":
        return delayed_label_dataset(store, config["n_way"], config["k_shot"], batch_size, seed, start_batch)
    return episode_dataset(store, episode_spec(config), batch_size, seed, start_batch)


def _validation_batches(config):
    """Batches of validation episodes: `validation_episodes` rounded down to whole batches (>= 1)."""
    return max(1, config["validation_episodes"] // config["batch_size"])


def validation_episodes(config, store):
    """A fixed set of validation episodes at `validation_k_shot`, without extras, cached.

    Under the "delayed_label" protocol, their supports as labelled sequences.
    """
    batches = _validation_batches(config)
    spec = episode_spec(config, k_shot=config["validation_k_shot"], k_extra=0)
    episodes = evaluation_dataset(store, spec, config["batch_size"], 1, batches * config["batch_size"], config["seed"])
    if config["protocol"] == "delayed_label":
        episodes = episodes.map(as_labelled_sequence)
    return episodes.cache()


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


def _check_same_config(config, output_dir):
    """Raises `ValueError` naming the differing keys if `output_dir` holds a run of another configuration."""
    if not os.path.exists(os.path.join(output_dir, "config.json")):
        return
    saved = load_config(output_dir)
    differing = [key for key in config if saved[key] != config[key]]
    if differing:
        changes = ", ".join(f"{key}: {saved[key]!r} in the run, {config[key]!r} now" for key in differing)
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run with a different configuration ({changes}); "
            "use a new directory or the same settings to resume."
        )


def _check_resumable(output_dir, strategy):
    """Raises `ValueError` when `output_dir` holds a partial run that `strategy` cannot resume."""
    multiworker_run = os.path.isdir(os.path.join(output_dir, CHECKPOINT_DIR))
    if strategy == "multiworker" and RunBackup(os.path.join(output_dir, BACKUP_DIR)).completed_epochs():
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a run started with Keras `fit`; resume it with "
            "`strategy` 'none' or 'mirrored'."
        )
    if strategy != "multiworker" and multiworker_run:
        raise ValueError(
            f"`output_dir` {output_dir!r} holds a multi-worker run; resume it with `strategy` 'multiworker'."
        )


BACKUP_DIR = "backup"


def _check_training_splits(config, source):
    """Raises `ValueError` unless the source has the train and validation splits a run needs.

    Training draws its episodes from the train split and keeps the model of the epoch with the best
    accuracy on validation episodes, so both must exist; a scheme without a validation split (e.g.
    Omniglot's background / evaluation split) is refused rather than split silently.
    """
    missing = [name for name in ("train", "validation") if name not in source.split_names]
    if missing:
        raise ValueError(
            f"`data` {config['data']!r} (options {config['data_options']}) has no {' or '.join(map(repr, missing))} "
            f"split; its splits are {source.split_names}. Training needs both: choose a split scheme with a "
            "validation split (for Omniglot, `split_scheme=vinyals`) or a source with train/validation/test."
        )


def train(config, output_dir, callbacks=(), verbose=1, strategy="none", build_model=build_learner):
    """Trains (or resumes) the run in `output_dir`; returns the trained model.

    Rerunning on the same `output_dir` after a kill restores the weights, optimiser and epoch
    from the last completed epoch and continues the same episode stream from there. While it
    trains, the run directory is locked (`RunLock`; not with `"multiworker"`, whose workers
    share it): a second trainer on it raises `ValueError`. A NaN or infinite loss raises
    `kerasrwm.training.divergence.TrainingDiverged` and leaves the run unfinished.

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
    _check_same_config(config, output_dir)
    if os.path.exists(os.path.join(output_dir, "finished")):
        if verbose:
            print(f"{output_dir} already holds a finished run; loading it.")
        return load_trained(output_dir)[1]
    _check_resumable(output_dir, strategy)
    if strategy == "multiworker":
        return _train(config, output_dir, callbacks, verbose, strategy, build_model, distribution)
    with RunLock(output_dir):
        return _train(config, output_dir, callbacks, verbose, strategy, build_model, distribution)


def _train(config, output_dir, callbacks, verbose, strategy, build_model, distribution):
    chief = is_chief(distribution)
    check_global_batch(config["batch_size"], distribution.num_replicas_in_sync)
    if strategy == "multiworker" and config["jit_compile"] is True:
        raise ValueError("`jit_compile=True` is not supported with strategy 'multiworker'; use 'auto' or false.")
    if verbose and strategy != "none":
        print(f"Training with strategy {strategy!r} on {distribution.num_replicas_in_sync} replicas.")
    keras.utils.set_random_seed(config["seed"])
    source = load_source(config["data"], **config["data_options"])
    _check_training_splits(config, source)
    train_store = source.split("train")
    validation = validation_episodes(config, source.split("validation"))
    if chief and config["k_test_sweep"]:
        callbacks = [k_test_sweep_callback(config, source.split("validation"), output_dir), *callbacks]
    with distribution.scope():
        model = build_model(config)
        model(next(iter(validation)))
    if chief and not os.path.exists(os.path.join(output_dir, "config.json")):
        # Only now that data and model are known to work: a typo must not claim the directory.
        os.makedirs(output_dir, exist_ok=True)
        write_json_atomically(os.path.join(output_dir, "config.json"), config)
    if strategy == "multiworker":
        fit_multiworker(
            model,
            distribution,
            lambda context, start: training_stream(config, train_store, start, context),
            validation,
            output_dir,
            config["steps"] // config["steps_per_epoch"],
            config["steps_per_epoch"],
            callbacks,
            verbose,
        )
    else:
        backup = RunBackup(os.path.join(output_dir, BACKUP_DIR))
        _fit(model, config, output_dir, train_store, validation, [*callbacks, backup], verbose, backup.restore(model))
    if chief and not model.stop_training:
        write_atomically(os.path.join(output_dir, "finished"), lambda path: open(path, "w").close())
        if strategy != "multiworker":
            backup.remove()
    return model


def _fit(model, config, output_dir, train_store, validation, callbacks, verbose, initial_epoch):
    """Keras `fit` from `initial_epoch`, with per-epoch `model.keras`, best model and TensorBoard logs.

    The callbacks run in list order at each epoch end: the divergence check first (nothing is
    saved after a NaN), then the model files, then `callbacks`, whose last is the backup.
    """
    steps_per_epoch = config["steps_per_epoch"]
    model.fit(
        training_stream(config, train_store, start_batch=initial_epoch * steps_per_epoch),
        epochs=config["steps"] // steps_per_epoch,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=validation,
        callbacks=[
            StopOnDivergence(),
            BestModelCheckpoint(output_dir, monitor=MONITORS[config["protocol"]]),
            LatestModelCheckpoint(os.path.join(output_dir, "model.keras")),
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
    try:
        model = keras.models.load_model(path)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} cannot be loaded; the file is damaged ({type(error).__name__}: {error}).") from None
    check_finite_weights(model, path)
    return config, model

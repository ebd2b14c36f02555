"""One training run from a configuration: data, learner, optimiser, callbacks, resume.

The configuration (`kerasrwm.training.configuration`) names the protocol, whose `Task`
(`kerasrwm.training.tasks`) gives the learner, the training stream, the validation batches and
the score that picks the best model; the run directory (`kerasrwm.training.run_directory`) holds
what the run writes. At each epoch end, on every strategy, the divergence check comes first
(nothing is saved after a NaN), then the best and the latest model, then the backup or
checkpoint from which a killed run resumes, so a rerun ends with the weights of an
uninterrupted run.
"""

import contextlib
import os

import keras

from kerasrwm.data import load_source
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.best_model_checkpoint import BestModelCheckpoint
from kerasrwm.training.distributed import check_global_batch
from kerasrwm.training.distributed import fit_multiworker
from kerasrwm.training.distributed import is_chief
from kerasrwm.training.distributed import make_strategy
from kerasrwm.training.divergence import StopOnDivergence
from kerasrwm.training.k_test_sweep import check_k_tests
from kerasrwm.training.k_test_sweep_callback import KTestSweepCallback
from kerasrwm.training.latest_model_checkpoint import LatestModelCheckpoint
from kerasrwm.training.optimizers import reference_adam
from kerasrwm.training.run_directory import LOG_DIR
from kerasrwm.training.run_directory import MODEL_FILES
from kerasrwm.training.run_directory import check_resumable
from kerasrwm.training.run_directory import check_same_config
from kerasrwm.training.run_directory import is_finished
from kerasrwm.training.run_directory import load_trained
from kerasrwm.training.run_directory import mark_finished
from kerasrwm.training.run_directory import run_backup
from kerasrwm.training.run_directory import write_config
from kerasrwm.training.run_lock import RunLock
from kerasrwm.training.schedules import NoamSchedule
from kerasrwm.training.tasks import get_task


def build_learner(config):
    """The compiled learner of `config["protocol"]` (Adam 0.9/0.995/1e-9; Noam schedule or constant rate)."""
    model = get_task(config["protocol"]).learner(config)
    rate = config["learning_rate"] or NoamSchedule(config["hidden_size"], config["warmup_steps"])
    model.compile(optimizer=reference_adam(rate), jit_compile=config["jit_compile"])
    return model


def training_stream(config, store, start_batch=0, input_context=None):
    """The training batches of the protocol: batch `i` depends only on (`seed`, `i`), so a resumed run continues.

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
    return get_task(config["protocol"]).training_stream(config, store, batch_size, seed, start_batch)


def _validation_batches(config):
    """Batches of validation episodes: `validation_episodes` rounded down to whole batches (>= 1)."""
    return max(1, config["validation_episodes"] // config["batch_size"])


def validation_episodes(config, store):
    """A fixed, cached set of validation batches of the protocol, at `validation_k_shot`, without extras."""
    return get_task(config["protocol"]).validation_batches(config, store, _validation_batches(config))


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
        log_dir=os.path.join(output_dir, LOG_DIR, "k_test_sweep"),
    )


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
    trains, the run directory is locked (`RunLock`; with `"multiworker"`, by the chief, which
    alone writes it): a second trainer on it raises `ValueError`. A NaN or infinite loss raises
    `kerasrwm.training.divergence.TrainingDiverged` and leaves the run unfinished.

    An `output_dir` that cannot be written (read-only, or a file) is refused before any step, and a
    disk that is full when a run file is written stops the run, that file keeping its previous
    content: both raise `kerasrwm.training.atomic_files.WriteError` (a `ValueError`); a rerun resumes.

    Args:
        config: a full configuration (`kerasrwm.training.configuration.make_config`).
        output_dir: the run directory (`kerasrwm.training.run_directory`).
        callbacks: extra Keras callbacks (with `"multiworker"`, epoch- and batch-level hooks only).
        verbose: Keras `fit` verbosity; with `"multiworker"`, one line per epoch if true.
        strategy: `"none"`, `"mirrored"` or `"multiworker"` (`kerasrwm.training.distributed`).
            It is not part of the configuration: it changes where a run executes, not what it
            learns, so `"none"` and `"mirrored"` resume each other's runs (on the same
            episode stream); a multi-worker run resumes under `"multiworker"`, with any
            number of workers. `config["batch_size"]` is the global batch.
        build_model: `build_model(config)` returns the compiled learner of the configuration's
            protocol, called in the strategy's scope. For learners that the configuration cannot
            describe (e.g. a custom backbone layer or optimiser).
    """
    distribution = make_strategy(strategy)  # first: no TensorFlow op may run before it
    check_same_config(config, output_dir)
    if is_finished(output_dir):
        if verbose:
            print(f"{output_dir} already holds a finished run; loading it.")
        return load_trained(output_dir)[1]
    check_resumable(output_dir, strategy)
    chief = is_chief(distribution)
    if chief:
        check_writable(output_dir, "`output_dir`")
    # Everything that can refuse the run is checked before the lock creates the run directory.
    check_global_batch(config["batch_size"], distribution.num_replicas_in_sync)
    if strategy == "multiworker" and config["jit_compile"] is True:
        raise ValueError("`jit_compile=True` is not supported with strategy 'multiworker'; use 'auto' or false.")
    source = _checked_source(config)
    with RunLock(output_dir) if chief else contextlib.nullcontext():
        return _train(config, source, output_dir, callbacks, verbose, strategy, build_model, distribution, chief)


def _checked_source(config):
    """The data source of `config`, with the train and validation splits a run needs and room for its K_test sweep."""
    source = load_source(config["data"], **config["data_options"])
    _check_training_splits(config, source)
    if config["k_test_sweep"]:
        check_k_tests(
            source.split("validation"), config["n_way"], config["k_test_sweep"], config["n_queries"], "k_test_sweep"
        )
    return source


def _train(config, source, output_dir, callbacks, verbose, strategy, build_model, distribution, chief):
    task = get_task(config["protocol"])
    multiworker = strategy == "multiworker"
    if verbose and strategy != "none":
        print(f"Training with strategy {strategy!r} on {distribution.num_replicas_in_sync} replicas.")
    keras.utils.set_random_seed(config["seed"])
    train_store = source.split("train")
    validation = validation_episodes(config, source.split("validation"))
    if chief and config["k_test_sweep"]:
        callbacks = [k_test_sweep_callback(config, source.split("validation"), output_dir), *callbacks]
    with distribution.scope():
        model = build_model(config)
        model(next(iter(validation)))
    if chief:
        # Only now that data and model are known to work: a typo must not claim the directory.
        write_config(output_dir, config)
    # The run contract, in this order at each epoch end: nothing is saved after a NaN; the model
    # files are written before the state an epoch resumes from.
    contract = [StopOnDivergence()]
    if chief:
        contract += [
            BestModelCheckpoint(output_dir, monitor=task.monitor),
            LatestModelCheckpoint(os.path.join(output_dir, MODEL_FILES["last"])),
        ]
    steps_per_epoch = config["steps_per_epoch"]
    epochs = config["steps"] // steps_per_epoch
    if multiworker:
        fit_multiworker(
            model,
            distribution,
            lambda context, start: training_stream(config, train_store, start, context),
            validation,
            output_dir,
            epochs,
            steps_per_epoch,
            [*contract, *callbacks],
            verbose,
            evaluation_terms=task.evaluation_terms,
        )
    else:
        backup = run_backup(output_dir)
        with distribution.scope():  # the restore builds the optimizer's variables
            initial_epoch = backup.restore(model)
        model.fit(
            training_stream(config, train_store, start_batch=initial_epoch * steps_per_epoch),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=validation,
            callbacks=[
                *contract,
                keras.callbacks.TensorBoard(os.path.join(output_dir, LOG_DIR), profile_batch=config["profile_batch"]),
                *callbacks,
                backup,
            ],
            shuffle=False,
            verbose=verbose,
        )
    if chief and not model.stop_training:
        mark_finished(output_dir)
        if not multiworker:
            backup.remove()
    return model

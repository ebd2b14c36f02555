"""Distribution strategies for `kerasrwm train --strategy`, and the multi-worker training loop.

- `"none"`: TensorFlow's default strategy (one device).
- `"mirrored"`: `tf.distribute.MirroredStrategy` over every local GPU, or every logical CPU
  device when there is no GPU; trained with Keras `fit`.
- `"multiworker"`: `tf.distribute.MultiWorkerMirroredStrategy` over the cluster in the
  `TF_CONFIG` environment variable. Keras 3 `fit` does not run under this strategy
  (keras-team/keras#20585), so `fit_multiworker` trains with a loop of
  `strategy.run(model.train_step)` over `strategy.distribute_datasets_from_function`, built
  on public TensorFlow and Keras APIs only.

Setting the environment variable `KERASRWM_LOGICAL_CPUS=N` splits the host CPU into N logical
devices before TensorFlow initialises, so that `"mirrored"` runs N replicas on a CPU-only
machine (tests, debugging).
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from kerasrwm.training.run_directory import CHECKPOINT_DIR
from kerasrwm.training.run_directory import LOG_DIR
from kerasrwm.validation import check_choice

STRATEGIES = ("none", "mirrored", "multiworker")
LOGICAL_CPUS_VARIABLE = "KERASRWM_LOGICAL_CPUS"
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host0:port", "host1:port"]}, "task": {"type": "worker", "index": 0}}'


def make_strategy(name):
    """The `tf.distribute.Strategy` named `name`, one of `STRATEGIES`.

    Call it before any other TensorFlow op: logical CPU devices and the multi-worker
    cluster can only be configured before TensorFlow initialises.
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "multiworker":
        check_tf_config(os.environ.get("TF_CONFIG"))
    _configure_logical_cpus(os.environ.get(LOGICAL_CPUS_VARIABLE))
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.MultiWorkerMirroredStrategy()


def _configure_logical_cpus(value):
    if not value:
        return
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"`{LOGICAL_CPUS_VARIABLE}` must be a positive integer; received: {value!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(value))


def check_tf_config(text):
    """Raises `ValueError` unless `text` is a `TF_CONFIG` naming a cluster and this task in it."""
    if not text:
        raise ValueError(
            f"`strategy` 'multiworker' reads the cluster from the `TF_CONFIG` environment variable, "
            f"which is not set; set it on every worker, e.g. {TF_CONFIG_EXAMPLE}."
        )
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"`TF_CONFIG` is not valid JSON ({error}); received: {text!r}.") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker", cluster.get("chief")), list):
        raise ValueError(
            f"`TF_CONFIG` must hold a cluster with a list of workers, e.g. {TF_CONFIG_EXAMPLE}; received: {text!r}."
        )
    if (
        not isinstance(task, dict)
        or task.get("type") not in cluster
        or not isinstance(task.get("index"), int)
        or not 0 <= task["index"] < len(cluster[task["type"]])
    ):
        raise ValueError(
            f"`TF_CONFIG` must name this task as one of its cluster's, e.g. {TF_CONFIG_EXAMPLE}; received: {text!r}."
        )


def is_chief(strategy):
    """Whether this process writes the run's files: the chief, or worker 0 of a chief-less cluster."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def check_global_batch(batch_size, num_replicas):
    """Raises `ValueError` unless the global `batch_size` splits evenly across `num_replicas`."""
    if batch_size % num_replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must be divisible by the number of replicas; "
            f"received batch_size={batch_size} with {num_replicas} replicas."
        )


def fit_multiworker(
    model,
    strategy,
    dataset_fn,
    validation_data,
    output_dir,
    epochs,
    steps_per_epoch,
    callbacks=(),
    verbose=1,
    evaluation_terms=None,
):
    """Trains `model` under `strategy` like `fit`, resuming from the last checkpoint in `output_dir`.

    Each step runs `model.train_step` on every replica (the learner divides its loss by
    `num_replicas_in_sync`, the optimiser sums the gradients across replicas, so the update is
    that of the mean loss over the global batch) and averages the returned metrics over
    replicas. BatchNorm normalises each replica's batch with its own statistics, and each
    replica updates its own copy of the moving statistics; at the end of each epoch these
    copies are replaced by their mean over replicas, so that all workers hold the same
    weights. Then the chief alone evaluates `validation_data` and writes TensorBoard scalars
    (`logs/train`, `logs/validation`, tags `epoch_<metric>`, as `fit` does), the callbacks'
    `on_epoch_end` runs with the training and `val_` logs, and last every worker saves a
    `tf.train.Checkpoint` of the model and optimiser (the chief into `output_dir/checkpoints`,
    the others into a temporary directory that they delete): an epoch counts as done only once
    the callbacks (e.g. the model files) are through with it.

    Args:
        model: a compiled learner, built (called once) in `strategy.scope()`.
        strategy: a `tf.distribute.Strategy`, usually `MultiWorkerMirroredStrategy`.
        dataset_fn: `dataset_fn(input_context, start_step)`: the dataset of one input pipeline,
            of per-replica batches, starting at global step `start_step`.
        validation_data: a finite dataset of whole validation batches.
        output_dir: the run directory.
        epochs: total epochs; a resumed run trains only the remaining ones.
        steps_per_epoch: steps per epoch (checkpoints are written at epoch ends).
        callbacks: Keras callbacks; `on_train_begin/end`, `on_epoch_begin/end` and
            `on_train_batch_begin/end` (with the step's metrics, the same on every worker) are
            called. A callback that stops training (setting `model.stop_training` or raising)
            must do so on every worker; the training metrics are the same on all of them.
        verbose: print one line per epoch on the chief if true.
        evaluation_terms: `evaluation_terms(model, batch)`, the dict of scalars averaged over the
            validation batches (default: `model.compute_loss_terms(batch, training=False)`).

    Returns:
        `model`, trained.
    """
    chief = is_chief(strategy)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    # The weights by list: a Keras 3 model contributes no variable of its own to a `tf.train.Checkpoint`
    # (the optimizer holds the trainable ones), so BatchNorm's moving statistics would be lost.
    checkpoint = tf.train.Checkpoint(weights=model.weights, optimizer=model.optimizer)
    latest = tf.train.latest_checkpoint(os.path.join(output_dir, CHECKPOINT_DIR))
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    start_step = int(model.optimizer.iterations.numpy())
    batches = iter(strategy.distribute_datasets_from_function(lambda context: dataset_fn(context, start_step)))

    @tf.function
    def train_function(iterator):
        metrics = strategy.run(model.train_step, (next(iterator),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in metrics.items()}

    average_statistics = _replica_averager(strategy, model)
    evaluation_terms = evaluation_terms or (lambda model, batch: model.compute_loss_terms(batch, training=False))
    evaluate_batch = tf.function(lambda batch: evaluation_terms(model, batch))
    writers = _summary_writers(output_dir) if chief else None
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(start_step // steps_per_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        model.reset_metrics()
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            logs = {name: float(value) for name, value in train_function(batches).items()}
            callback_list.on_train_batch_end(step, logs)
        average_statistics()
        if chief:
            validation_logs = _evaluate(evaluate_batch, validation_data)
            learning_rate = float(tf.convert_to_tensor(model.optimizer.learning_rate))
            _write_summaries(writers, epoch, logs, validation_logs, learning_rate)
            logs.update({f"val_{name}": value for name, value in validation_logs.items()})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(f"{k}: {v:.4f}" for k, v in sorted(logs.items())))
        callback_list.on_epoch_end(epoch, logs)
        _save_checkpoint(checkpoint, output_dir, chief, step=(epoch + 1) * steps_per_epoch)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model


def _replica_averager(strategy, model):
    """A function that sets each float non-trainable variable of `model` (e.g. BatchNorm moving
    statistics, which every replica updates from its own batch) to its mean over replicas."""
    variables = [variable for variable in model.non_trainable_variables if keras.backend.is_float_dtype(variable.dtype)]

    def average():
        values = [tf.identity(variable.value) for variable in variables]  # the local copies
        for variable, mean in zip(variables, tf.distribute.get_replica_context().all_reduce("MEAN", values)):
            variable.assign(mean)

    @tf.function
    def average_over_replicas():
        if variables:
            strategy.run(average)

    return average_over_replicas


def _evaluate(evaluate_batch, dataset):
    """Mean over the batches of `dataset` of each scalar that `evaluate_batch(batch)` returns."""
    totals = {}
    count = 0
    for batch in dataset:
        for name, value in evaluate_batch(batch).items():
            totals[name] = totals.get(name, 0.0) + float(value)
        count += 1
    return {name: total / count for name, total in totals.items()}


def _summary_writers(output_dir):
    logs = os.path.join(output_dir, LOG_DIR)
    return {split: tf.summary.create_file_writer(os.path.join(logs, split)) for split in ("train", "validation")}


def _write_summaries(writers, epoch, logs, validation_logs, learning_rate):
    for split, values in (("train", {**logs, "learning_rate": learning_rate}), ("validation", validation_logs)):
        with writers[split].as_default():
            for name, value in values.items():
                tf.summary.scalar(f"epoch_{name}", value, step=epoch)
        writers[split].flush()


def _save_checkpoint(checkpoint, output_dir, chief, step):
    """Every worker saves (the save may synchronise workers); only the chief's copy is kept."""
    directory = os.path.join(output_dir, CHECKPOINT_DIR) if chief else tempfile.mkdtemp(prefix="kerasrwm-worker-")
    tf.train.CheckpointManager(checkpoint, directory, max_to_keep=1).save(checkpoint_number=step)
    if not chief:
        shutil.rmtree(directory)

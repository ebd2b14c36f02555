"""`BootstrapDiagnostics`: gradient norms, cosine and Adam label fraction against closed forms."""

import glob
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.data import load_source
from kerasrwm.training.bootstrap_diagnostics import DIAGNOSTIC_BATCHES
from kerasrwm.training.bootstrap_diagnostics import DIAGNOSTIC_START_BATCH
from kerasrwm.training.bootstrap_diagnostics import NAMES
from kerasrwm.training.bootstrap_diagnostics import BootstrapDiagnostics
from kerasrwm.training.bootstrap_diagnostics import diagnostics_callback
from kerasrwm.training.experiment import training_stream
from tests.commands.tiny_run import tiny_config
from tests.models.episodes import random_episode_batch
from tests.models.learners import tiny_learner
from tests.two_logical_cpus import run_on_two_logical_cpus

A, B, C = np.array([1.0, -2.0, 0.5]), np.array([0.0, 1.0, 3.0]), np.array([-1.0, 0.5, 2.0])
W0, U0 = np.array([0.3, 0.2, -0.4]), np.array([1.5, -0.5])
SCALES = (1.0, 3.0)  # one per episode batch: the losses are scaled, the mean gradient by 2


class QuadraticTerms(keras.Model):
    """Three loss terms with gradients known in closed form, per batch scale s:
    student s/2 |w - A|^2, teacher s (|w - C|^2 / 2 + |u|^2), distillation s/2 |w - B|^2."""

    def __init__(self, beta1, beta2, beta3):
        super().__init__()
        self.beta1, self.beta2, self.beta3 = beta1, beta2, beta3
        self.w = self.add_weight(shape=(3,), initializer=keras.initializers.Constant(W0), dtype="float64")
        self.u = self.add_weight(shape=(2,), initializer=keras.initializers.Constant(U0), dtype="float64")
        self.forward_passes = self.add_weight(shape=(), initializer="zeros", trainable=False, dtype="float64")

    def compute_loss_terms(self, batch, training=None):
        if training:
            self.forward_passes.assign_add(1.0)
        scale = batch["scale"]
        return {
            "student_loss": scale * 0.5 * tf.reduce_sum((self.w - A) ** 2),
            "teacher_loss": scale * (0.5 * tf.reduce_sum((self.w - C) ** 2) + tf.reduce_sum(self.u**2)),
            "distill_loss": scale * 0.5 * tf.reduce_sum((self.w - B) ** 2),
            "beta2": tf.constant(self.beta2, tf.float32),
        }


def quadratic_setup(beta1=0.5, beta2=4.0, beta3=2.0, every=3, loss_scaled=False):
    """`loss_scaled`: the Adam sits in a `LossScaleOptimizer`, as Keras compiles it under mixed precision."""
    model = QuadraticTerms(beta1, beta2, beta3)
    adam = keras.optimizers.Adam(1e-3, epsilon=1e-7)
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(adam) if loss_scaled else adam)
    model.optimizer.build(model.trainable_variables)
    velocities = {"w": np.array([0.04, 1.0, 0.25]), "u": np.array([9.0, 0.01])}
    for variable, value in zip(model.trainable_variables, velocities.values()):
        adam._velocities[adam._get_variable_index(variable)].assign(value)
    episodes = (
        tf.data.Dataset.from_tensor_slices({"scale": tf.constant(SCALES, tf.float64)})
        .batch(1)
        .map(lambda batch: {"scale": batch["scale"][0]})
    )
    lines = []
    callback = BootstrapDiagnostics(episodes, every, print_fn=lines.append)
    callback.set_model(model)
    return model, callback, np.concatenate(list(velocities.values())), lines


def expected_diagnostics(beta1, beta2, beta3, velocity, epsilon=1e-7):
    mean_scale = np.mean(SCALES)
    student = mean_scale * np.concatenate([W0 - A, [0.0, 0.0]])
    teacher = mean_scale * np.concatenate([W0 - C, 2 * U0])
    distill = mean_scale * np.concatenate([W0 - B, [0.0, 0.0]])
    labels = beta1 * student + beta3 * teacher
    step = (labels + beta2 * distill) / (np.sqrt(velocity) + epsilon)
    label_step = labels / (np.sqrt(velocity) + epsilon)
    return {
        "grad_norm/student": np.linalg.norm(beta1 * student),
        "grad_norm/teacher": np.linalg.norm(beta3 * teacher),
        "grad_norm/labels": np.linalg.norm(labels),
        "grad_norm/distill": np.linalg.norm(beta2 * distill),
        "grad_norm/distill_unweighted": np.linalg.norm(distill),
        "cosine/distill_labels": labels @ distill / (np.linalg.norm(labels) * np.linalg.norm(distill)),
        "adam/label_fraction": label_step @ step / (step @ step),
    }


@pytest.mark.parametrize("beta2", [4.0, 0.0])
def test_diagnostics_equal_the_closed_form(beta2):
    model, callback, velocity, _ = quadratic_setup(beta2=beta2)
    values = callback.compute()
    expected = expected_diagnostics(0.5, beta2, 2.0, velocity)
    assert set(values) == set(NAMES)
    for name in NAMES:
        assert values[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name
    if beta2 == 0:
        assert values["adam/label_fraction"] == 1.0 and values["grad_norm/distill"] == 0.0
        assert values["cosine/distill_labels"] != 0.0  # the direction is measured at any weight
    assert float(model.forward_passes) == 0.0  # the two training-mode passes left no trace


def test_an_adam_in_a_loss_scale_optimizer_is_read_through_it():
    model, callback, velocity, _ = quadratic_setup(loss_scaled=True)
    callback.on_train_begin()
    values = callback.compute()
    assert values["adam/label_fraction"] == pytest.approx(
        expected_diagnostics(0.5, 4.0, 2.0, velocity)["adam/label_fraction"], rel=1e-9
    )


@pytest.mark.parametrize(
    "optimizer", [keras.optimizers.SGD(), keras.optimizers.Adam(amsgrad=True)], ids=["sgd", "amsgrad"]
)
def test_an_optimizer_whose_step_is_not_adams_is_refused_when_training_begins(optimizer):
    model, callback, _, _ = quadratic_setup()
    model.compile(optimizer=optimizer)
    with pytest.raises(ValueError, match="needs a model compiled with keras.optimizers.Adam without amsgrad"):
        callback.on_train_begin()


def test_every_nth_step_writes_tensorboard_scalars_and_one_log_line(tmp_path):
    model, callback, velocity, lines = quadratic_setup(every=3)
    callback.log_dir = str(tmp_path)
    for step in range(1, 7):
        model.optimizer.iterations.assign(step)
        callback.on_train_batch_end(step - 1)
    callback.on_train_end()
    assert [line.split(":")[0] for line in lines] == [
        "bootstrap diagnostics, step 3",
        "bootstrap diagnostics, step 6",
    ]
    expected = expected_diagnostics(0.5, 4.0, 2.0, velocity)
    assert f"adam/label_fraction {expected['adam/label_fraction']:.4g}" in lines[0]
    scalars = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert set(scalars) == {f"bootstrap_diagnostics/{name}" for name in NAMES}
    steps_and_values = scalars["bootstrap_diagnostics/cosine/distill_labels"]
    assert [step for step, _ in steps_and_values] == [3, 6]
    assert steps_and_values[0][1] == pytest.approx(expected["cosine/distill_labels"], rel=1e-6)


@pytest.mark.slow
def test_a_learner_trains_the_same_with_and_without_diagnostics():
    """BatchNorm statistics and dropout seeds are restored after each diagnostic pass."""
    batch = random_episode_batch(image_shape=(16, 16, 1), seed=9)
    episodes = tf.data.Dataset.from_tensors(batch).repeat()
    weights = []
    for with_diagnostics in (False, True):
        keras.utils.set_random_seed(3)
        model = tiny_learner(beta2=2.0, beta3=1.0, dropout=0.2, vision_dropout=0.2, implementation="loop", num_layers=1)
        model(batch)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
        callbacks = [BootstrapDiagnostics(episodes.take(1), 2, print_fn=lambda line: None)] if with_diagnostics else []
        model.fit(episodes, steps_per_epoch=4, epochs=1, verbose=0, callbacks=callbacks)
        weights.append([variable.numpy() for variable in model.variables])
    for trained, diagnosed in zip(*weights):
        np.testing.assert_array_equal(trained, diagnosed)


def test_every_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="`every` must be an integer >= 1; received every=0"):
        BootstrapDiagnostics(tf.data.Dataset.range(1), 0)


def test_a_run_configuration_diagnoses_fixed_batches_of_its_own_training_stream_that_training_never_reaches(tmp_path):
    config = {**tiny_config(), "diagnostics_every": 7}
    callback = diagnostics_callback(config, str(tmp_path))
    assert (callback.every, callback.log_dir) == (7, f"{tmp_path}/logs/bootstrap_diagnostics")
    batches = list(callback.episodes)
    assert len(batches) == DIAGNOSTIC_BATCHES and DIAGNOSTIC_START_BATCH > config["steps"]
    store = load_source(config["data"], **config["data_options"]).split("train")
    expected = next(iter(training_stream(config, store, start_batch=DIAGNOSTIC_START_BATCH + 1)))
    for key, value in expected.items():
        np.testing.assert_array_equal(batches[1][key].numpy(), value.numpy(), err_msg=key)
    assert [list(batch) for batch in batches] == [list(expected)] * DIAGNOSTIC_BATCHES


@pytest.mark.slow
def test_under_a_mirrored_strategy_the_diagnostics_equal_the_single_device_ones():
    """`kerasrwm train --strategy mirrored --diagnostics-every N` is allowed: the callback must run there too."""
    stdout = run_on_two_logical_cpus(
        """
        import json
        import keras
        from kerasrwm.training.bootstrap_diagnostics import BootstrapDiagnostics
        from tests.models.episodes import random_episode_batch
        from tests.models.learners import tiny_learner
        episodes = tf.data.Dataset.from_tensors(random_episode_batch(batch=4, seed=0))
        for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
            keras.utils.set_random_seed(1)
            with strategy.scope():
                model = tiny_learner(beta2=3.0, beta3=1.0, backbone=keras.layers.Flatten(), implementation="loop")
                model.compile(optimizer=keras.optimizers.Adam(1e-3))
            values = []
            callback = BootstrapDiagnostics(episodes, 2, print_fn=lambda line: values.append(callback.compute()))
            model.fit(episodes.repeat(), epochs=1, steps_per_epoch=2, verbose=0, callbacks=[callback])
            print("diagnostics", json.dumps(values))
        """
    )
    runs = [json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines() if line.startswith("diagnostics ")]
    assert [len(values) for values in runs] == [1, 1], stdout
    (single,), (mirrored,) = runs
    assert set(single) == set(NAMES)
    for name in NAMES:
        assert mirrored[name] == pytest.approx(single[name], rel=1e-4, abs=1e-7), name

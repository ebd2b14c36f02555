"""`BootstrappedLearner`: loss terms, gradient routing, shared prefix, training, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasrwm
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS
from kerasrwm.training import export_learner
from kerasrwm.training.run_backup import RunBackup
from tests.models.episodes import as_pixels
from tests.models.episodes import random_episode_batch
from tests.models.learners import tiny_learner


def built_learner(**overrides):
    """`tiny_learner` on flattened pixels with the loop, built on the default random episode batch."""
    model = tiny_learner(**{"backbone": keras.layers.Flatten(), "implementation": "loop", **overrides})
    model(random_episode_batch())
    return model


def full_pass_query_logits(model, prefix_images, prefix_labels, query_images):
    """Logits of each query read at the end of its own full sequence prefix + query (no folding)."""
    learner = model.learner
    logits = []
    for index in range(query_images.shape[1]):
        images = tf.concat([prefix_images, query_images[:, index : index + 1]], axis=1)
        label_inputs = tf.concat(
            [learner.label_inputs(prefix_labels), learner.label_inputs(None, images.shape[0], 1)], axis=1
        )
        hidden, _ = learner.read(learner.encode(images, training=False), label_inputs, training=False)
        logits.append(learner.classify(hidden)[:, -1])
    return tf.stack(logits, axis=1).numpy()


def independent_logits(model, batch):
    student = full_pass_query_logits(model, batch["support_images"], batch["support_labels"], batch["query_images"])
    teacher = full_pass_query_logits(
        model,
        tf.concat([batch["support_images"], batch["extra_images"]], axis=1),
        tf.concat([batch["support_labels"], batch["extra_labels"]], axis=1),
        batch["query_images"],
    )
    return student, teacher


def log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_shared_prefix_equals_independent_full_passes(sequence_layer):
    model = built_learner(sequence_layer=sequence_layer)
    batch = random_episode_batch(queries=3, seed=1)
    student, teacher = model.student_and_teacher_logits(batch, training=False)
    expected_student, expected_teacher = independent_logits(model, batch)
    np.testing.assert_allclose(student.numpy(), expected_student, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(teacher.numpy(), expected_teacher, rtol=1e-4, atol=1e-5)
    assert not np.allclose(expected_student, expected_teacher)
    np.testing.assert_allclose(model(batch).numpy(), expected_student, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("distill", ["kl", "ce"])
def test_loss_equals_hand_computation_of_three_terms(distill):
    model = built_learner(beta1=0.7, beta2=2.0, beta3=0.3, distill=distill, temperature=2.0)
    batch = random_episode_batch(queries=2, seed=2)
    terms = model.compute_loss_terms(batch, training=False)
    student, teacher = independent_logits(model, batch)
    labels = batch["query_labels"].numpy()
    student_log_probs, teacher_log_probs = log_softmax(student), log_softmax(teacher)

    def picked(log_probs):
        return -np.take_along_axis(log_probs, labels[..., None], -1).mean()

    soft_teacher, soft_student = log_softmax(teacher / 2.0), log_softmax(student / 2.0)
    soft_ce = -(np.exp(soft_teacher) * soft_student).sum(-1)
    entropy_term = (np.exp(soft_teacher) * soft_teacher).sum(-1) if distill == "kl" else 0.0
    distill_loss = 4.0 * np.mean(soft_ce + entropy_term)
    expected = {
        "student_loss": picked(student_log_probs),
        "teacher_loss": picked(teacher_log_probs),
        "distill_loss": distill_loss,
        "student_accuracy": np.mean(student.argmax(-1) == labels),
        "teacher_accuracy": np.mean(teacher.argmax(-1) == labels),
    }
    expected["loss"] = 0.7 * expected["student_loss"] + 2.0 * distill_loss + 0.3 * expected["teacher_loss"]
    expected["beta2"] = 2.0
    assert set(terms) == set(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(float(terms[name]), value, rtol=1e-4, atol=1e-6, err_msg=name)


def test_distillation_term_sends_no_gradient_into_the_teacher_branch():
    model = built_learner(beta1=0.0, beta2=1.0, beta3=0.0)
    batch = random_episode_batch(seed=3)
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        student, teacher = model.student_and_teacher_logits(batch, training=False)
        distill = kerasrwm.models.bootstrap_loss.distillation(teacher, student)
        frozen_teacher = kerasrwm.models.bootstrap_loss.distillation(tf.constant(teacher.numpy()), student)
        teacher_ce = kerasrwm.models.bootstrap_loss.cross_entropy(batch["query_labels"], teacher)
    assert tape.gradient(distill, teacher) is None
    for actual, expected in zip(tape.gradient(distill, variables), tape.gradient(frozen_teacher, variables)):
        if expected is None:
            assert actual is None
        else:
            np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=1e-6, atol=1e-8)
    teacher_gradients = tape.gradient(teacher_ce, variables)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in teacher_gradients if g is not None) > 0


@pytest.mark.parametrize("drop_extra_keys", [False, True])
def test_without_extras_the_teacher_is_the_student(drop_extra_keys):
    model = built_learner(beta1=1.0, beta2=3.0, beta3=0.5)
    batch = random_episode_batch(k_extra=0, seed=4)
    if drop_extra_keys:
        batch = {key: value for key, value in batch.items() if not key.startswith("extra")}
    terms = {name: float(value) for name, value in model.compute_loss_terms(batch, training=False).items()}
    assert set(terms) == set(model.trackers)
    assert terms["distill_loss"] == 0.0
    assert terms["teacher_loss"] == terms["student_loss"]
    assert terms["teacher_accuracy"] == terms["student_accuracy"]
    assert terms["loss"] == pytest.approx(1.5 * terms["student_loss"])


# beta2 = 6, held at 0 for 5 steps, ramped over 3: written out by hand, step by step.
SCHEDULES = {
    (5, 3): {0: 0.0, 4: 0.0, 5: 2.0, 6: 4.0, 7: 6.0, 8: 6.0, 100: 6.0},
    (5, 0): {0: 0.0, 4: 0.0, 5: 6.0, 6: 6.0, 100: 6.0},
    (0, 2): {0: 3.0, 1: 6.0, 2: 6.0},
    (0, 0): {0: 6.0, 7: 6.0},
}


@pytest.mark.parametrize("start, ramp", list(SCHEDULES))
def test_distillation_schedule_follows_the_optimizer_step_in_weight_and_loss(start, ramp):
    model = built_learner(beta1=0.5, beta2=6.0, beta3=0.25, beta2_start_step=start, beta2_ramp_steps=ramp)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    batch = random_episode_batch(seed=7)
    for step, weight in SCHEDULES[(start, ramp)].items():
        model.optimizer.iterations.assign(step)
        terms = model.compute_loss_terms(batch, training=False)
        expected_loss = 0.5 * terms["student_loss"] + weight * terms["distill_loss"] + 0.25 * terms["teacher_loss"]
        assert float(terms["beta2"]) == pytest.approx(weight), step
        assert float(terms["loss"]) == pytest.approx(float(expected_loss), rel=1e-6), step


@pytest.mark.slow
def test_fit_logs_the_beta2_of_the_last_step_and_a_restored_optimizer_continues_the_schedule(tmp_path):
    """Steps 0..3 of (start 2, ramp 4, beta2 4) weigh 0, 0, 1, 2: the epoch log shows 2, the last one."""
    arguments = dict(beta2=4.0, beta3=1.0, beta2_start_step=2, beta2_ramp_steps=4)
    model = built_learner(**arguments)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    episodes = tf.data.Dataset.from_tensors(random_episode_batch(seed=8)).repeat()
    backup = RunBackup(str(tmp_path))
    validation = episodes.take(1)  # its beta2 is the next step's, 3: the training log must not take it
    history = model.fit(
        episodes, epochs=1, steps_per_epoch=4, verbose=0, callbacks=[backup], validation_data=validation
    )
    assert history.history["beta2"] == [pytest.approx(2.0)]
    assert history.history["val_beta2"] == [pytest.approx(3.0)]
    resumed = built_learner(**arguments)
    resumed.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert backup.restore(resumed) == 1
    assert int(resumed.optimizer.iterations) == 4
    assert float(resumed.scheduled_beta2()) == pytest.approx(3.0)  # step 4: 4 * (4 - 2 + 1) / 4
    history = resumed.fit(episodes, epochs=2, initial_epoch=1, steps_per_epoch=2, verbose=0)
    assert history.history["beta2"] == [pytest.approx(4.0)]  # step 5: 4 * 4 / 4


@pytest.mark.parametrize("dtype", ["float64", "mixed_float16"])
def test_the_loss_and_its_schedule_work_in_any_compute_dtype(dtype):
    """The loss is computed in float32, or float64 under that policy; beta2 takes the loss's dtype."""
    model = built_learner(beta1=0.5, beta2=6.0, beta3=0.25, beta2_start_step=1, dtype=dtype)
    batch = random_episode_batch(seed=7)
    computed = model.compute_loss_terms(batch, training=False)
    assert computed["loss"].dtype == ("float64" if dtype == "float64" else "float32")  # float16 logits: float32 loss
    terms = {name: float(value) for name, value in computed.items()}
    expected = 0.5 * terms["student_loss"] + 6.0 * terms["distill_loss"] + 0.25 * terms["teacher_loss"]
    assert terms["loss"] == pytest.approx(expected, rel=1e-2)  # not compiled yet: beta2 itself
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    first, second = (model.train_on_batch(batch, return_dict=True) for _ in range(2))
    assert (first["beta2"], second["beta2"]) == (pytest.approx(0.0), pytest.approx(6.0))


def test_schedule_steps_are_checked_and_round_trip():
    with pytest.raises(ValueError, match="beta2_start_step.*-1"):
        tiny_learner(beta2_start_step=-1)
    with pytest.raises(ValueError, match="beta2_ramp_steps.*2.5"):
        tiny_learner(beta2_ramp_steps=2.5)
    config = tiny_learner(beta2=1.0, beta2_start_step=300, beta2_ramp_steps=200).get_config()
    restored = kerasrwm.BootstrappedLearner.from_config(config)
    assert (restored.beta2_start_step, restored.beta2_ramp_steps) == (300, 200)


def test_class0_unknown_label_is_one_hot_of_class_zero():
    model = built_learner(unknown_label="class0")
    np.testing.assert_array_equal(model.learner.label_inputs(None, 1, 2).numpy(), [[[1, 0, 0], [1, 0, 0]]])
    assert not built_learner().learner.label_inputs(None, 1, 2).numpy().any()


@pytest.mark.slow
@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_fit_reduces_loss_and_reports_every_term(sequence_layer):
    keras.utils.set_random_seed(0)
    model = built_learner(beta1=1.0, beta2=1.0, beta3=1.0, sequence_layer=sequence_layer)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    batch = random_episode_batch(batch=4, seed=5)
    dataset = tf.data.Dataset.from_tensors(batch).repeat(60)
    before = float(model.compute_loss_terms(batch, training=False)["loss"])
    history = model.fit(dataset, epochs=1, verbose=0, validation_data=tf.data.Dataset.from_tensors(batch))
    after = float(model.compute_loss_terms(batch, training=False)["loss"])
    assert after < 0.5 * before
    assert {"loss", "student_loss", "distill_loss", "teacher_loss", "student_accuracy", "teacher_accuracy"} <= set(
        history.history
    )
    assert "val_student_accuracy" in history.history


@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_serialization_round_trip(tmp_path, sequence_layer):
    model = tiny_learner(beta2=5.0, num_layers=1, implementation="loop", sequence_layer=sequence_layer)
    batch = random_episode_batch(image_shape=(16, 16, 1), seed=6)
    expected = model(batch).numpy()
    path = str(tmp_path / "learner.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored(batch).numpy(), expected)
    assert restored.beta2 == 5.0 and restored.learner.backbone_channels == 4
    assert restored.learner.sequence_layer == sequence_layer


@keras.saving.register_keras_serializable(package="kerasrwm_tests")
class ScaledProjection(keras.layers.Layer):
    """A custom backbone with weights and its own config argument: `[n, h, w, c]` -> `[n, units]`."""

    def __init__(self, units, scale, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale
        self.flatten = keras.layers.Flatten()
        self.dense = keras.layers.Dense(units)

    def build(self, input_shape):
        self.dense.build(self.flatten.compute_output_shape(input_shape))

    def call(self, images):
        return self.scale * self.dense(self.flatten(images))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


def test_custom_layer_backbone_round_trips_through_config_save_and_export(tmp_path):
    model = built_learner(backbone=ScaledProjection(units=5, scale=2.5))
    batch = {
        key: tf.constant(value, dtype=value.dtype) for key, value in as_pixels(random_episode_batch(seed=8)).items()
    }
    expected = model(batch, training=False).numpy()

    config = model.get_config()
    assert config["backbone"]["config"]["units"] == 5
    from_config = kerasrwm.BootstrappedLearner.from_config(config)
    assert isinstance(from_config.learner.backbone, ScaledProjection) and from_config.learner.backbone.scale == 2.5

    path = str(tmp_path / "learner.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.learner.backbone, ScaledProjection)
    np.testing.assert_array_equal(restored(batch, training=False).numpy(), expected)

    exported = tf.saved_model.load(export_learner(restored, str(tmp_path / "saved"), image_shape=(4, 4, 1)))
    logits = exported.signatures["adapt_and_predict"](
        support_images=batch["support_images"],
        support_labels=batch["support_labels"],
        query_images=batch["query_images"],
    )["logits"]
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)


class TestBadInput:
    @pytest.mark.parametrize(
        "arguments, pattern",
        [
            ({"beta2": -1.0}, r"`beta2` must be a finite number >= 0.0; received beta2=-1.0"),
            ({"beta2": float("inf")}, r"`beta2` must be a finite number >= 0.0; received beta2=inf"),
            ({"beta1": 0.0}, r"At least one of `beta1`, `beta2`, `beta3` must be positive"),
            ({"distill": "mse"}, r"`distill` must be one of \('kl', 'ce'\); received distill='mse'"),
            ({"temperature": 0}, r"`temperature` must be a finite number > 0.0; received temperature=0"),
            ({"unknown_label": "none"}, r"`unknown_label` must be one of"),
            ({"hidden_size": 10, "num_heads": 4}, r"`hidden_size` must be divisible by `num_heads`"),
            ({"n_way": 1}, r"`n_way` must be an integer >= 2; received n_way=1"),
            (
                {"sequence_layer": "gru"},
                r"`sequence_layer` must be one of \('srwm', 'deltanet', 'lstm'\); received sequence_layer='gru'",
            ),
        ],
    )
    def test_constructor(self, arguments, pattern):
        with pytest.raises(ValueError, match=pattern):
            tiny_learner(**{"backbone": keras.layers.Flatten(), "implementation": "loop", **arguments})

    def test_missing_key(self):
        model = built_learner()
        batch = random_episode_batch()
        del batch["query_labels"]
        with pytest.raises(ValueError, match=r"received keys \[.*\]: missing \['query_labels'\]"):
            model.train_step(batch)

    def test_wrong_image_rank(self):
        model = built_learner()
        batch = random_episode_batch()
        batch["query_images"] = batch["query_images"][:, 0]
        with pytest.raises(ValueError, match=r"`query_images` must have rank 5"):
            model(batch)


def test_call_after_fit_on_an_unbuilt_model():
    """`fit` traces `train_step`, which builds the sub-layers but not the model itself."""
    model = tiny_learner(num_layers=1)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    batch = random_episode_batch(image_shape=(16, 16, 1), seed=7)
    model.fit(tf.data.Dataset.from_tensors(batch), verbose=0)
    before = [w.numpy() for w in model.weights]
    assert model(batch).shape == (2, 2, 3)
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())

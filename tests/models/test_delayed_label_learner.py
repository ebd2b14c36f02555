"""`DelayedLabelLearner`: label delay, occurrence bookkeeping, causality, metrics, training, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.data import delayed_label_dataset
from kerasrwm.data import load_synthetic
from kerasrwm.models import DelayedLabelLearner
from kerasrwm.models.delayed_label_learner import delay_by_one_step
from kerasrwm.models.delayed_label_learner import occurrence_index
from kerasrwm.models.sequence_learner import SEQUENCE_LAYERS

TINY = dict(hidden_size=16, num_layers=1, num_heads=2, ff_dim=16, implementation="loop")


def prototype_sequences(batch, n_way, k_shot, seed, image_shape=(4, 4, 1), noise=0.3):
    """Infinite batches of `{"images", "labels"}`: fresh class prototypes in every sequence.

    Classes are only recognisable from the labels shown earlier in the same sequence.
    """
    length = n_way * k_shot

    def sequences(index):
        keys = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 3)
        prototypes = tf.random.stateless_normal([batch, n_way, *image_shape], keys[0])
        order = tf.argsort(tf.random.stateless_uniform([batch, length], keys[1]), axis=1)
        labels = tf.cast(order % n_way, tf.int32)
        images = tf.gather(prototypes, labels, batch_dims=1)
        images += noise * tf.random.stateless_normal([batch, length, *image_shape], keys[2])
        return {"images": images, "labels": labels}

    return tf.data.Dataset.counter().map(sequences)


def tiny_learner(n_way=3, **kwargs):
    arguments = dict(TINY, backbone=keras.layers.Flatten(), n_way=n_way)
    arguments.update(kwargs)
    return DelayedLabelLearner(**arguments)


def test_delay_and_occurrence_index_match_hand_computation():
    labels = np.array([[2, 0, 2, 2, 1, 0], [1, 1, 0, 1, 0, 2]])
    one_hot = np.eye(3)[labels]
    expected_inputs = np.concatenate([np.zeros((2, 1, 3)), one_hot[:, :-1]], axis=1)
    np.testing.assert_array_equal(delay_by_one_step(tf.constant(one_hot)).numpy(), expected_inputs)
    expected = [[sum(row[s] == row[t] for s in range(t)) for t in range(6)] for row in labels]
    assert expected == [[0, 0, 1, 2, 0, 1], [0, 1, 0, 2, 1, 0]]
    np.testing.assert_array_equal(occurrence_index(tf.constant(labels), 3).numpy(), expected)


@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_step_t_sees_labels_of_earlier_steps_only(sequence_layer):
    model = tiny_learner(sequence_layer=sequence_layer)
    batch = next(iter(prototype_sequences(2, 3, 3, seed=0)))
    logits = model(batch).numpy()
    changed = dict(
        batch, labels=tf.tensor_scatter_nd_update(batch["labels"], [[0, 4]], [(batch["labels"][0, 4] + 1) % 3])
    )
    changed_logits = model(changed).numpy()
    np.testing.assert_allclose(changed_logits[:, :5], logits[:, :5], rtol=1e-6, atol=1e-6)
    assert not np.allclose(changed_logits[0, 5], logits[0, 5])
    np.testing.assert_allclose(changed_logits[1], logits[1], rtol=1e-6, atol=1e-6)


def test_evaluate_reports_loss_and_accuracy_by_occurrence():
    model = tiny_learner(num_occurrences=3)
    model.compile()
    batch = next(iter(prototype_sequences(4, 3, 2, seed=1)))
    results = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0, return_dict=True)
    logits, labels = model(batch).numpy(), batch["labels"].numpy()
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    correct = logits.argmax(-1) == labels
    occurrences = np.array([[np.sum(row[:t] == row[t]) for t in range(len(row))] for row in labels])
    expected = {
        "loss": -np.take_along_axis(log_probs, labels[..., None], -1).mean(),
        "accuracy": correct.mean(),
        "accuracy_occurrence_1": correct[occurrences == 0].mean(),
        "accuracy_occurrence_2": correct[occurrences == 1].mean(),
        "accuracy_occurrence_3": 0.0,  # K = 2: no class occurs a third time
    }
    terms = model.compute_loss_terms(batch, training=False)  # one batch: the same means, as scalars
    assert set(results) == set(expected) == set(terms)
    for name, value in expected.items():
        np.testing.assert_allclose(results[name], value, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(terms[name].numpy(), value, rtol=1e-5, atol=1e-6, err_msg=name)


def kerasrwm_warnings(warned):
    return [str(warning.message) for warning in warned if str(warning.message).startswith("kerasrwm:")]


def test_occurrences_that_cannot_exist_at_this_k_warn_once():
    model = tiny_learner(num_occurrences=3)
    model.compile(optimizer="adam")
    once_each = prototype_sequences(4, 3, 1, seed=1)  # K = 1: every class shown once
    with pytest.warns(RuntimeWarning) as warned:
        history = model.fit(once_each, steps_per_epoch=2, epochs=2, validation_data=once_each.take(1), verbose=0)
        model.evaluate(once_each.take(1), verbose=0)
    assert kerasrwm_warnings(warned) == [
        "kerasrwm: no sequence showed a class 2 times or more, so accuracy_occurrence_2..3 do not exist and are "
        "reported as 0 (each class is shown at most 1 times); pass num_occurrences=1 to leave them out."
    ]
    assert history.history["accuracy_occurrence_2"] == [0.0, 0.0]


def test_occurrences_that_exist_give_no_warning(recwarn):
    model = tiny_learner(num_occurrences=2)
    model.compile(optimizer="adam")
    model.fit(prototype_sequences(4, 3, 2, seed=1), steps_per_epoch=2, epochs=1, verbose=0)
    model.evaluate(prototype_sequences(4, 3, 2, seed=2).take(1), verbose=0)
    assert kerasrwm_warnings(recwarn) == []


@pytest.mark.slow
def test_trains_above_chance_on_synthetic_sequences():
    keras.utils.set_random_seed(0)
    model = tiny_learner(hidden_size=32, num_heads=4, ff_dim=32, num_layers=2, num_occurrences=4, sequence_layer="lstm")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(prototype_sequences(16, 3, 4, seed=2), steps_per_epoch=500, epochs=1, verbose=0)
    results = model.evaluate(prototype_sequences(64, 3, 4, seed=3), steps=4, verbose=0, return_dict=True)
    # Chance is 1/3 at every step (measured: 0.53 after these 500 steps, about 12 s).
    assert results["accuracy"] > 0.45, results


@pytest.mark.parametrize("sequence_layer", SEQUENCE_LAYERS)
def test_serialization_round_trip(tmp_path, sequence_layer):
    model = DelayedLabelLearner(
        n_way=3, num_occurrences=2, backbone="conv4", backbone_channels=4, sequence_layer=sequence_layer, **TINY
    )
    batch = next(iter(prototype_sequences(2, 3, 2, seed=4, image_shape=(16, 16, 1))))
    expected = model(batch).numpy()
    path = str(tmp_path / "delayed.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(restored(batch).numpy(), expected)
    assert restored.num_occurrences == 2 and restored.learner.sequence_layer == sequence_layer


def test_delayed_label_dataset_shows_every_class_k_times():
    source = load_synthetic(num_classes=20, image_size=16, seed=0)
    batch = next(iter(delayed_label_dataset(source.split("train"), n_way=4, k_shot=3, batch_size=2, seed=0)))
    assert batch["images"].shape == (2, 12, 16, 16, 1)
    for row in batch["labels"].numpy():
        np.testing.assert_array_equal(np.bincount(row, minlength=4), [3, 3, 3, 3])


class TestBadInput:
    def test_missing_key(self):
        with pytest.raises(
            ValueError,
            match=r"must be a dict with keys \['images', 'labels'\]; received keys \['images'\]: missing \['labels'\]",
        ):
            tiny_learner()({"images": tf.zeros([1, 2, 4, 4, 1])})

    def test_num_occurrences(self):
        with pytest.raises(ValueError, match=r"`num_occurrences` must be an integer >= 1; received num_occurrences=0"):
            tiny_learner(num_occurrences=0)

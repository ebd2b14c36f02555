"""`DelayedLabelLearner`: the sequence learner in the delayed-label protocol, scored at every step."""

import keras
import tensorflow as tf

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.sequence_learner import SequenceLearner
from kerasrwm.validation import check_integer

SEQUENCE_KEYS = ("images", "labels")


def delay_by_one_step(label_inputs):
    """`[B, L, n_way]` label inputs shifted one step later: step t gets step t-1's, step 0 zeros."""
    return tf.pad(label_inputs[:, :-1], [[0, 0], [1, 0], [0, 0]])


def occurrence_index(labels, n_way):
    """For every step, how many earlier steps of its sequence carry its label: int32 `[B, L]`.

    0 marks the first occurrence of a class, k its (k+1)-th: the number of times the model
    has been told that class before predicting it (labels arrive one step late).
    """
    one_hot = tf.one_hot(labels, n_way, dtype=tf.int32)
    earlier = tf.cumsum(one_hot, axis=1, exclusive=True)
    return tf.reduce_sum(earlier * one_hot, axis=-1)


def _check_sequence(batch):
    if not isinstance(batch, dict) or any(key not in batch for key in SEQUENCE_KEYS):
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"A delayed-label batch must be a dict with keys {list(SEQUENCE_KEYS)}; received: {keys}.")
    for key, rank in (("images", 5), ("labels", 2)):
        if len(batch[key].shape) != rank:
            raise ValueError(f"`{key}` must have rank {rank}; received shape {batch[key].shape}.")


@keras.saving.register_keras_serializable(package="kerasrwm")
class DelayedLabelLearner(keras.Model):
    """Few-shot sequence learner in the delayed-label setting.

    Step t carries image t and the one-hot label of step t-1 (zeros at t = 0); the model
    predicts every step's label before it is shown, and the loss is the mean cross-entropy over
    all steps, the first occurrence of each class included (as in the authors' code). Besides
    the loss and overall accuracy, training and evaluation report `accuracy_occurrence_k`: the
    accuracy on the k-th occurrence of a class in its sequence (k = 1 is its first appearance,
    guessable only by elimination), for k = 1..`num_occurrences`.

    Irie, Schlag, Csordás, Schmidhuber, "A Modern Self-Referential Weight Matrix That Learns
    to Modify Itself", ICML 2022 (delayed-label multi-task experiments).

    Args:
        n_way: classes per sequence.
        num_occurrences: how many occurrence positions get their own accuracy metric.
        **learner_kwargs: architecture arguments of `kerasrwm.models.SequenceLearner`
            (`sequence_layer`, `backbone`, `hidden_size`, ...) and base `keras.Model` arguments.

    Call arguments:
        inputs: dict with `images [B, L, h, w, c]` and their true `labels [B, L]` in time order
            (see `kerasrwm.data.delayed_label_dataset`).

    Returns:
        Per-step logits `[B, L, n_way]`; step t has seen the labels of steps < t only.
    """

    def __init__(self, n_way, num_occurrences=5, **learner_kwargs):
        model_kwargs = {key: learner_kwargs.pop(key) for key in ("name", "dtype", "trainable") if key in learner_kwargs}
        super().__init__(**model_kwargs)
        self.num_occurrences = check_integer("num_occurrences", num_occurrences)
        self.learner = SequenceLearner(n_way, name="sequence_learner", **learner_kwargs)
        self.n_way = self.learner.n_way
        names = ["loss", "accuracy"] + [f"accuracy_occurrence_{k}" for k in range(1, self.num_occurrences + 1)]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape):
        self.learner.build(input_shape["images"])

    def call(self, inputs, training=None):
        _check_sequence(inputs)
        features = self.learner.encode(inputs["images"], training=training)
        label_inputs = delay_by_one_step(self.learner.label_inputs(inputs["labels"]))
        hidden, _ = self.learner.read(features, label_inputs, training=training)
        return self.learner.classify(hidden)

    def step_outcomes(self, batch, training=None):
        """`(loss, correct, occurrences)` of one batch.

        Returns:
            The mean cross-entropy over all steps, float32 `[B, L]` 1/0 for a correct
            prediction and `occurrence_index` of the labels, int32 `[B, L]`.
        """
        labels = batch["labels"]
        logits = self(batch, training=training)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
        return bootstrap_loss.cross_entropy(labels, logits), correct, occurrence_index(labels, self.n_way)

    def compute_loss_terms(self, batch, training=None):
        """The loss and accuracies of one batch, as a dict of scalars (the names of `metrics`).

        `accuracy_occurrence_k` is the accuracy over the steps of the batch that show a class
        for the k-th time (0 when there are none).
        """
        loss, correct, occurrences = self.step_outcomes(batch, training=training)
        terms = {"loss": loss, "accuracy": tf.reduce_mean(correct)}
        for k in range(1, self.num_occurrences + 1):
            at_k = tf.cast(tf.equal(occurrences, k - 1), tf.float32)
            terms[f"accuracy_occurrence_{k}"] = tf.math.divide_no_nan(
                tf.reduce_sum(correct * at_k), tf.reduce_sum(at_k)
            )
        return terms

    def _update_trackers(self, loss, correct, occurrences):
        self.trackers["loss"].update_state(loss)
        self.trackers["accuracy"].update_state(correct)
        for k in range(1, self.num_occurrences + 1):
            at_k = tf.cast(tf.equal(occurrences, k - 1), tf.float32)
            self.trackers[f"accuracy_occurrence_{k}"].update_state(correct, sample_weight=at_k)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        _check_sequence(data)
        with tf.GradientTape() as tape:
            loss, correct, occurrences = self.step_outcomes(data, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_trackers(loss, correct, occurrences)

    def test_step(self, data):
        _check_sequence(data)
        return self._update_trackers(*self.step_outcomes(data, training=False))

    def get_config(self):
        config = super().get_config()
        config.update({"n_way": self.n_way, "num_occurrences": self.num_occurrences})
        learner_config = self.learner.get_config()
        for key in ("name", "trainable", "dtype"):
            learner_config.pop(key, None)
        config.update(learner_config)
        return config

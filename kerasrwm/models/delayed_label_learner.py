"""`DelayedLabelLearner`: the sequence learner in the delayed-label protocol, scored at every step."""

import warnings

import keras
import tensorflow as tf

from kerasrwm.models import bootstrap_loss
from kerasrwm.models import serving
from kerasrwm.models.episodic_learner import EpisodicLearner
from kerasrwm.validation import check_integer


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


@keras.saving.register_keras_serializable(package="kerasrwm")
class DelayedLabelLearner(EpisodicLearner):
    """Few-shot sequence learner in the delayed-label setting.

    Step t carries image t and the one-hot label of step t-1 (zeros at t = 0); the model
    predicts every step's label before it is shown, and the loss is the mean cross-entropy over
    all steps, the first occurrence of each class included (as in the authors' code). Besides
    the loss and overall accuracy, training and evaluation report `accuracy_occurrence_k`: the
    accuracy on the k-th occurrence of a class in its sequence (k = 1 is its first appearance,
    guessable only by elimination), for k = 1..`num_occurrences`. An occurrence that no step
    of the sequences has shown (k > K when each class is shown K times) is reported as 0; the
    first epoch or evaluation that ends without it warns once, naming the metrics.

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

    INPUT_KEYS = ("images", "labels")
    TRAINING_KEYS = INPUT_KEYS
    TARGET_KEY = "labels"
    LOSS_DESCRIPTION = "the mean cross-entropy over every step"

    def __init__(self, n_way, num_occurrences=5, **learner_kwargs):
        num_occurrences = check_integer("num_occurrences", num_occurrences)
        names = ["loss", "accuracy"] + [f"accuracy_occurrence_{k}" for k in range(1, num_occurrences + 1)]
        super().__init__(n_way, names, **learner_kwargs)
        self.num_occurrences = num_occurrences
        self._warned_unseen_occurrences = False

    def call(self, inputs, training=None):
        return self.step_logits(self.call_inputs(inputs), training=training)

    def step_logits(self, sequence, training=None):
        """Per-step logits `[B, L, n_way]` of a checked `{"images", "labels"}` batch."""
        features = self.learner.encode(sequence["images"], training=training)
        label_inputs = delay_by_one_step(self.learner.label_inputs(sequence["labels"]))
        hidden, _ = self.learner.read(features, label_inputs, training=training)
        return self.learner.classify(hidden)

    def loss_terms(self, batch, training=None):
        """The loss, the accuracy and the accuracy at each occurrence, and the per-step logits.

        `accuracy_occurrence_k` is the accuracy over the steps that show a class for the k-th
        time; its weight is the number of such steps, so that the reported mean is over steps.
        """
        labels = batch["labels"]
        logits = self.step_logits(batch, training=training)  # `batch` was checked by the step
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.float32)
        occurrences = occurrence_index(labels, self.n_way)
        terms = {"loss": bootstrap_loss.cross_entropy(labels, logits), "accuracy": tf.reduce_mean(correct)}
        weights = {}
        for k in range(1, self.num_occurrences + 1):
            at_k = tf.cast(tf.equal(occurrences, k - 1), tf.float32)
            count = tf.reduce_sum(at_k)
            terms[f"accuracy_occurrence_{k}"] = tf.math.divide_no_nan(tf.reduce_sum(correct * at_k), count)
            weights[f"accuracy_occurrence_{k}"] = count
        return terms, weights, logits

    def get_metrics_result(self):
        """Keras's metric results; in eager code (an epoch's or an evaluation's end), also warns once
        about the `accuracy_occurrence_k` that no step has shown since the metrics were reset."""
        results = super().get_metrics_result()
        if tf.executing_eagerly() and not self._warned_unseen_occurrences and self.trackers["accuracy"].count > 0:
            unseen = [
                k for k in range(1, self.num_occurrences + 1) if self.trackers[f"accuracy_occurrence_{k}"].count == 0
            ]
            if unseen:
                self._warned_unseen_occurrences = True
                warnings.warn(
                    f"kerasrwm: no sequence showed a class {unseen[0]} times or more, so "
                    f"accuracy_occurrence_{unseen[0]}..{self.num_occurrences} do not exist and are reported as 0 "
                    f"(each class is shown at most {unseen[0] - 1} times); pass num_occurrences={unseen[0] - 1} "
                    "to leave them out.",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return results

    def serving_signature(self):
        """`predict_sequence(images, labels) -> {"logits": [B, L, n_way]}`, a prediction at every step.

        `images` float32 `[B, L, h, w, c]` of the training size with pixels in [0, 1] (8-bit
        pixels divided by 255, as in training), `labels` int32 `[B, L]`, the true labels in time
        order; B and L may vary from call to call but not be 0. Step t's logits depend on the
        images of steps <= t and the labels of steps < t only. The graph refuses, naming the
        argument, another rank, B or L of 0, images of another size, pixels that are not finite
        or outside [0, 1], labels outside [0, n_way) and labels whose [B, L] differs from the images'.
        """
        image_shape = self.image_shape
        input_signature = [
            tf.TensorSpec([None] * 5, tf.float32, name="images"),
            tf.TensorSpec([None, None], tf.int32, name="labels"),
        ]

        def predict_sequence(images, labels):
            checks = serving.sequence_checks(images, labels, image_shape, self.n_way)
            with tf.control_dependencies(checks):
                sequence = {
                    "images": tf.ensure_shape(images, [None, None, *image_shape]),
                    "labels": tf.identity(labels),
                }
            return {"logits": self(sequence, training=False)}

        return "predict_sequence", predict_sequence, input_signature

    def get_config(self):
        config = super().get_config()
        config.update({"n_way": self.n_way, "num_occurrences": self.num_occurrences})
        return config

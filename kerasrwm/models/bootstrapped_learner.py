"""`BootstrappedLearner`: a few-shot SRWM learner trained with the bootstrapped loss."""

import keras
import tensorflow as tf

from kerasrwm.models import bootstrap_loss
from kerasrwm.models import serving
from kerasrwm.models.episodic_learner import EpisodicLearner
from kerasrwm.models.latest_value import LatestValue
from kerasrwm.validation import check_choice
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_number

METRIC_NAMES = ("loss", "student_loss", "distill_loss", "teacher_loss", "student_accuracy", "teacher_accuracy")


@keras.saving.register_keras_serializable(package="kerasrwm")
class BootstrappedLearner(EpisodicLearner):
    """Few-shot SRWM learner trained with bootstrapped self-improvement.

    A training batch (see `kerasrwm.data.episode_dataset`) holds, per episode, N·K support
    examples, N·K' extra examples of the same classes and Q query images. One step:

    1. the backbone encodes all support, extra and query images at once (the authors run it
       in four separate calls, so their BatchNorm statistics are per call; here they are
       computed over the whole batch of images);
    2. the SRWM stack reads the support and returns its state S (the N·K prefix is processed
       once); the student scores every query from S;
    3. the stack continues over the extras from S and the teacher scores the queries from there;
    4. `loss = beta1 * CE(y, p_student) + beta2 * D(sg(p_teacher), p_student)
             + beta3 * CE(y, p_teacher)`.

    Queries are folded into the batch axis, so each is scored from the state it branches from
    and never sees another query. `beta2 = beta3 = 0` is the plain K-shot learner;
    `beta2 = 0, beta3 = 1` is the paper's "no bootstrap" baseline.

    Irie & Schmidhuber, "Accelerating Neural Self-Improvement via Bootstrapping", 2023.

    Args:
        n_way: classes per episode.
        beta1, beta2, beta3: weights of the student CE, the distillation and the teacher CE.
        beta2_start_step, beta2_ramp_steps: the distillation schedule. The weight of step s
            (0-based, `optimizer.iterations` before the step) is 0 for the first
            `beta2_start_step` steps, then rises linearly to `beta2` over `beta2_ramp_steps`
            steps: `beta2 * clip((s - beta2_start_step + 1) / max(beta2_ramp_steps, 1), 0, 1)`.
            It is computed in the graph from the optimizer's step counter, so a resumed run
            (optimizer restored) continues the schedule exactly. Both 0 (default): `beta2`
            from the first step. The weight in force is logged as the metric `beta2`.
        distill: `"kl"` (authors' code, default) or `"ce"` (soft-target cross-entropy, Eq. 5).
        temperature: softmax temperature of the distillation term.
        **learner_kwargs: architecture arguments of `kerasrwm.models.SequenceLearner`
            (`backbone`, `hidden_size`, `num_layers`, `num_heads`, `ff_dim`, `dropout`, ...)
            and base `keras.Model` arguments (`name`, `dtype`).

    Batches (`fit`, `evaluate`, `train_on_batch`, `test_on_batch`): dicts with
    `support_images [B, N*K, h, w, c]`, `support_labels [B, N*K]`, `query_images [B, Q, h, w, c]`,
    `query_labels [B, Q]` (or passed as `y`) and, for K' > 0, `extra_images [B, N*K', h, w, c]`
    and `extra_labels [B, N*K']`; images float in [0, 1], labels integer. Reported: the six
    terms of `METRIC_NAMES`, then the metrics passed to `compile`, scored on the student's
    query logits. With K' = 0 the teacher is the student (its terms equal the student's, the
    distillation is 0).

    Call arguments:
        inputs: dict with `support_images [B, N*K, h, w, c]`, `support_labels [B, N*K]` and
            `query_images [B, Q, h, w, c]` (the other keys of a training batch are ignored).

    Returns:
        Query logits `[B, Q, n_way]` after reading the support.
    """

    INPUT_KEYS = ("support_images", "support_labels", "query_images")
    TRAINING_KEYS = INPUT_KEYS + ("query_labels",)
    OPTIONAL_KEYS = ("extra_images", "extra_labels")
    TARGET_KEY = "query_labels"
    LOSS_DESCRIPTION = "beta1 * CE(y, student) + beta2 * distillation(teacher, student) + beta3 * CE(y, teacher)"

    def __init__(
        self,
        n_way,
        beta1=1.0,
        beta2=0.0,
        beta3=0.0,
        distill="kl",
        temperature=1.0,
        beta2_start_step=0,
        beta2_ramp_steps=0,
        **learner_kwargs,
    ):
        super().__init__(n_way, METRIC_NAMES, **learner_kwargs)
        self.beta1 = check_number("beta1", beta1)
        self.beta2 = check_number("beta2", beta2)
        self.beta3 = check_number("beta3", beta3)
        if self.beta1 + self.beta2 + self.beta3 == 0:
            raise ValueError("At least one of `beta1`, `beta2`, `beta3` must be positive; received all zero.")
        self.distill = check_choice("distill", distill, bootstrap_loss.DISTILLATIONS)
        self.temperature = check_number("temperature", temperature, exclusive=True)
        self.beta2_start_step = check_integer("beta2_start_step", beta2_start_step, minimum=0)
        self.beta2_ramp_steps = check_integer("beta2_ramp_steps", beta2_ramp_steps, minimum=0)
        self.trackers["beta2"] = LatestValue(name="beta2")

    def _score_queries(self, query_features, state, training):
        """Logits `[B, Q, n_way]` of each query read alone from `state` (queries folded into batch)."""
        shape = tf.shape(query_features)
        batch, queries = shape[0], shape[1]
        folded_state = tf.nest.map_structure(lambda s: tf.repeat(s, queries, axis=0), state)
        folded = tf.reshape(query_features, [batch * queries, 1, query_features.shape[-1]])
        labels = self.learner.label_inputs(None, batch * queries, 1)
        hidden, _ = self.learner.read(folded, labels, initial_state=folded_state, training=training)
        return tf.reshape(self.learner.classify(hidden), [batch, queries, self.n_way])

    @staticmethod
    def _has_extras(batch):
        """Whether `batch` continues past the support (K' > 0, or K' not known until run time)."""
        return "extra_images" in batch and batch["extra_images"].shape[1] != 0

    def encode_episodes(self, batch, training=None):
        """Backbone features `[B, length, features]` of the support, extra and query images.

        All images go through the backbone in one call (one set of BatchNorm statistics). The
        extra features are None when the batch has no extras.
        """
        keys = (
            ["support_images", "extra_images", "query_images"]
            if self._has_extras(batch)
            else ["support_images", "query_images"]
        )
        pieces = [batch[key] for key in keys]
        features = self.learner.encode(tf.concat(pieces, axis=1), training=training)
        split = tf.split(features, [tf.shape(piece)[1] for piece in pieces], axis=1)
        if len(split) == 2:
            return split[0], None, split[1]
        return tuple(split)

    def logits_from_features(self, support_features, extra_features, query_features, batch, training=None):
        """Student and teacher query logits `[B, Q, n_way]` from the episodes' backbone features.

        Without extras (`extra_features` None) the teacher has read what the student has, so
        its logits are the student's.
        """
        _, support_state = self.learner.read(
            support_features, self.learner.label_inputs(batch["support_labels"]), training=training
        )
        student = self._score_queries(query_features, support_state, training)
        if extra_features is None:
            return student, student

        def teacher():
            _, extended_state = self.learner.read(
                extra_features,
                self.learner.label_inputs(batch["extra_labels"]),
                initial_state=support_state,
                training=training,
            )
            return self._score_queries(query_features, extended_state, training)

        if extra_features.shape[1] is None:  # K' known only at run time (a retrace with relaxed shapes)
            return student, tf.cond(tf.shape(extra_features)[1] > 0, teacher, lambda: student)
        return student, teacher()

    def student_and_teacher_logits(self, batch, training=None):
        """Query logits of the student (after the support) and the teacher (after the extras)."""
        features = self.encode_episodes(batch, training=training)
        return self.logits_from_features(*features, batch, training=training)

    def call(self, inputs, training=None):
        inputs = self.call_inputs(inputs)  # the served keys only: no extras, so no teacher is computed
        student, _ = self.student_and_teacher_logits(inputs, training=training)
        return student

    def scheduled_beta2(self):
        """The distillation weight of the next optimizer step (see `beta2_start_step`): a float32 scalar.

        `beta2` itself without a schedule or before the model is compiled.
        """
        optimizer = getattr(self, "optimizer", None)
        if (self.beta2_start_step == 0 and self.beta2_ramp_steps == 0) or optimizer is None:
            return tf.constant(self.beta2, tf.float32)
        step = tf.cast(optimizer.iterations, tf.float32)
        ramp = (step - self.beta2_start_step + 1.0) / max(self.beta2_ramp_steps, 1)
        return self.beta2 * tf.clip_by_value(ramp, 0.0, 1.0)

    def loss_terms(self, batch, training=None):
        """The terms of `METRIC_NAMES` and `beta2`, the weight in force (`scheduled_beta2`), no weights,
        and the student's logits.

        With K' = 0 (no extras) the teacher is the student: the distillation term is 0 and
        `beta3` weighs the student's cross-entropy a second time.
        """
        labels = batch["query_labels"]
        student, teacher = self.student_and_teacher_logits(batch, training=training)
        terms = {
            "student_loss": bootstrap_loss.cross_entropy(labels, student),
            "distill_loss": bootstrap_loss.distillation(teacher, student, self.distill, self.temperature),
            "teacher_loss": bootstrap_loss.cross_entropy(labels, teacher),
            "student_accuracy": bootstrap_loss.accuracy(labels, student),
            "teacher_accuracy": bootstrap_loss.accuracy(labels, teacher),
        }
        terms["beta2"] = tf.cast(self.scheduled_beta2(), terms["distill_loss"].dtype)
        terms["loss"] = (
            self.beta1 * terms["student_loss"]
            + terms["beta2"] * terms["distill_loss"]
            + self.beta3 * terms["teacher_loss"]
        )
        return terms, {}, student

    def serving_signature(self):
        """`adapt_and_predict(support_images, support_labels, query_images) -> {"logits": [B, Q, n_way]}`.

        Images are float32 `[B, S or Q, h, w, c]` of the training size with pixels in [0, 1]
        (8-bit pixels divided by 255, as in training), labels int32 `[B, S]`; B, S and Q may
        vary from call to call but not be 0. The graph refuses, naming the argument, another
        rank, an empty batch, support or query set, images of another size, pixels that are not
        finite or outside [0, 1], labels outside [0, n_way) and mismatched sizes.
        """
        image_shape = self.image_shape
        input_signature = [
            tf.TensorSpec([None] * 5, tf.float32, name="support_images"),
            tf.TensorSpec([None, None], tf.int32, name="support_labels"),
            tf.TensorSpec([None] * 5, tf.float32, name="query_images"),
        ]

        def adapt_and_predict(support_images, support_labels, query_images):
            checks = serving.episode_checks(support_images, support_labels, query_images, image_shape, self.n_way)
            with tf.control_dependencies(checks):
                episode = {
                    "support_images": tf.ensure_shape(support_images, [None, None, *image_shape]),
                    "support_labels": tf.identity(support_labels),
                    "query_images": tf.ensure_shape(query_images, [None, None, *image_shape]),
                }
            return {"logits": self(episode, training=False)}

        return "adapt_and_predict", adapt_and_predict, input_signature

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_way": self.n_way,
                "beta1": self.beta1,
                "beta2": self.beta2,
                "beta3": self.beta3,
                "distill": self.distill,
                "temperature": self.temperature,
                "beta2_start_step": self.beta2_start_step,
                "beta2_ramp_steps": self.beta2_ramp_steps,
            }
        )
        return config

"""`BootstrappedLearner`: a few-shot SRWM learner trained with the bootstrapped loss."""

import keras
import tensorflow as tf

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.latest_value import LatestValue
from kerasrwm.models.sequence_learner import SequenceLearner
from kerasrwm.validation import check_integer
from kerasrwm.validation import check_number

EPISODE_KEYS = ("support_images", "support_labels", "query_images")
TRAINING_KEYS = EPISODE_KEYS + ("extra_images", "extra_labels", "query_labels")


def _check_episode(batch, keys):
    if not isinstance(batch, dict):
        raise ValueError(f"An episode batch must be a dict with keys {list(keys)}; received: {type(batch).__name__}.")
    missing = [key for key in keys if key not in batch]
    if missing:
        raise ValueError(f"The episode batch is missing keys {missing}; received keys {sorted(batch)}.")
    for key in keys:
        rank = 5 if key.endswith("images") else 2
        if len(batch[key].shape) != rank:
            raise ValueError(f"`{key}` must have rank {rank}; received shape {batch[key].shape}.")


@keras.saving.register_keras_serializable(package="kerasrwm")
class BootstrappedLearner(keras.Model):
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

    Call arguments:
        inputs: dict with `support_images [B, N*K, h, w, c]`, `support_labels [B, N*K]` and
            `query_images [B, Q, h, w, c]` (other keys are ignored).

    Returns:
        Query logits `[B, Q, n_way]` after reading the support.
    """

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
        model_kwargs = {key: learner_kwargs.pop(key) for key in ("name", "dtype", "trainable") if key in learner_kwargs}
        super().__init__(**model_kwargs)
        self.beta1 = check_number("beta1", beta1)
        self.beta2 = check_number("beta2", beta2)
        self.beta3 = check_number("beta3", beta3)
        if self.beta1 + self.beta2 + self.beta3 == 0:
            raise ValueError("At least one of `beta1`, `beta2`, `beta3` must be positive; received all zero.")
        if distill not in bootstrap_loss.DISTILLATIONS:
            raise ValueError(f"`distill` must be one of {bootstrap_loss.DISTILLATIONS}; received: {distill!r}.")
        self.distill = distill
        self.temperature = check_number("temperature", temperature, exclusive=True)
        self.beta2_start_step = check_integer("beta2_start_step", beta2_start_step, minimum=0)
        self.beta2_ramp_steps = check_integer("beta2_ramp_steps", beta2_ramp_steps, minimum=0)
        self.learner = SequenceLearner(n_way, name="sequence_learner", **learner_kwargs)
        self.n_way = self.learner.n_way
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                "student_loss",
                "distill_loss",
                "teacher_loss",
                "student_accuracy",
                "teacher_accuracy",
            )
        }
        self.trackers["beta2"] = LatestValue(name="beta2")

    @property
    def metrics(self):
        return list(self.trackers.values())

    def build(self, input_shape):
        self.learner.build(input_shape["support_images"])

    def _score_queries(self, query_features, state, training):
        """Logits `[B, Q, n_way]` of each query read alone from `state` (queries folded into batch)."""
        shape = tf.shape(query_features)
        batch, queries = shape[0], shape[1]
        folded_state = tf.nest.map_structure(lambda s: tf.repeat(s, queries, axis=0), state)
        folded = tf.reshape(query_features, [batch * queries, 1, query_features.shape[-1]])
        labels = self.learner.label_inputs(None, batch * queries, 1)
        hidden, _ = self.learner.read(folded, labels, initial_state=folded_state, training=training)
        return tf.reshape(self.learner.classify(hidden), [batch, queries, self.n_way])

    def encode_episodes(self, batch, training=None):
        """Backbone features `[B, length, features]` of the support, extra and query images.

        All images go through the backbone in one call (one set of BatchNorm statistics).
        """
        pieces = [batch["support_images"], batch["extra_images"], batch["query_images"]]
        features = self.learner.encode(tf.concat(pieces, axis=1), training=training)
        return tf.split(features, [piece.shape[1] for piece in pieces], axis=1)

    def logits_from_features(self, support_features, extra_features, query_features, batch, training=None):
        """Student and teacher query logits `[B, Q, n_way]` from the episodes' backbone features.

        The teacher logits are None when the batch has no extra examples (K' = 0).
        """
        _, support_state = self.learner.read(
            support_features, self.learner.label_inputs(batch["support_labels"]), training=training
        )
        student = self._score_queries(query_features, support_state, training)
        if extra_features.shape[1] == 0:
            return student, None
        _, extended_state = self.learner.read(
            extra_features,
            self.learner.label_inputs(batch["extra_labels"]),
            initial_state=support_state,
            training=training,
        )
        return student, self._score_queries(query_features, extended_state, training)

    def student_and_teacher_logits(self, batch, training=None):
        """Query logits of the student (after the support) and the teacher (after the extras).

        The teacher logits are None when the batch has no extra examples (K' = 0).
        """
        features = self.encode_episodes(batch, training=training)
        return self.logits_from_features(*features, batch, training=training)

    def call(self, inputs, training=None):
        _check_episode(inputs, EPISODE_KEYS)
        features = self.learner.encode(
            tf.concat([inputs["support_images"], inputs["query_images"]], axis=1), training=training
        )
        support_length = tf.shape(inputs["support_images"])[1]
        support_features, query_features = features[:, :support_length], features[:, support_length:]
        _, state = self.learner.read(
            support_features, self.learner.label_inputs(inputs["support_labels"]), training=training
        )
        return self._score_queries(query_features, state, training)

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

    def compute_loss_terms(self, batch, training=None):
        """All loss terms and accuracies of one batch, as a dict of scalars.

        Without extras (K' = 0) only the student terms are present, and `loss` is
        `beta1 * student_loss`; with extras, `beta2` is the distillation weight in force
        (`scheduled_beta2`).
        """
        labels = batch["query_labels"]
        student, teacher = self.student_and_teacher_logits(batch, training=training)
        terms = {
            "student_loss": bootstrap_loss.cross_entropy(labels, student),
            "student_accuracy": bootstrap_loss.accuracy(labels, student),
        }
        terms["loss"] = self.beta1 * terms["student_loss"]
        if teacher is not None:
            terms["distill_loss"] = bootstrap_loss.distillation(teacher, student, self.distill, self.temperature)
            terms["teacher_loss"] = bootstrap_loss.cross_entropy(labels, teacher)
            terms["teacher_accuracy"] = bootstrap_loss.accuracy(labels, teacher)
            terms["beta2"] = self.scheduled_beta2()
            terms["loss"] += terms["beta2"] * terms["distill_loss"] + self.beta3 * terms["teacher_loss"]
        return terms

    def _update_trackers(self, terms):
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: self.trackers[name].result() for name in terms}

    def train_step(self, data):
        _check_episode(data, TRAINING_KEYS)
        with tf.GradientTape() as tape:
            terms = self.compute_loss_terms(data, training=True)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled_loss = self.optimizer.scale_loss(terms["loss"] / replicas)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_trackers(terms)

    def test_step(self, data):
        _check_episode(data, TRAINING_KEYS)
        return self._update_trackers(self.compute_loss_terms(data, training=False))

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
        learner_config = self.learner.get_config()
        for key in ("name", "trainable", "dtype"):
            learner_config.pop(key, None)
        config.update(learner_config)
        return config

"""`BootstrapDiagnostics`: how the terms of the bootstrapped loss pull on the weights during `fit`.

Every `every` optimizer steps, on a fixed set of training episodes, the callback computes the
gradient of each loss term with respect to all trainable weights (one forward pass, one backward
pass per term, dropout on as in training) and reports, with `g_s`, `g_t`, `g_d` the gradients
of the student CE, the teacher CE and the distillation term, and `beta2` the weight in force:

- `grad_norm/student` = ||beta1 g_s||, `grad_norm/teacher` = ||beta3 g_t||,
  `grad_norm/labels` = ||g_L|| with `g_L = beta1 g_s + beta3 g_t` (the terms that use the labels),
  `grad_norm/distill` = ||beta2 g_d|| and `grad_norm/distill_unweighted` = ||g_d|| (defined also
  at beta2 = 0);
- `cosine/distill_labels` = <g_d, g_L> / (||g_d|| ||g_L||), 0 where either gradient is zero;
- `adam/label_fraction`: the share of an Adam step that follows the labels. Adam moves each weight
  by its gradient divided by `sqrt(v) + epsilon`, `v` the optimizer's running mean of squared
  gradients (its bias correction is one factor common to all weights). With that preconditioner
  `P = 1 / (sqrt(v) + epsilon)` taken from the optimizer now (after the last step), the step of
  the total gradient `g = g_L + beta2 g_d` is `P g = P g_L + P beta2 g_d`; the label fraction is
  the component of `P g_L` along `P g`, as a share of `P g`:
  `<P g_L, P g> / ||P g||^2`. It is 1 without distillation and the distillation's share is
  `1 - label_fraction`; it leaves [0, 1] when the two terms pull against each other. Momentum is
  left out: this is the step the current gradient alone would take.

The gradients are means over the episode batches given. The forward pass would move BatchNorm's
moving statistics and the dropout seed generators, so every non-trainable variable is restored
afterwards: a run with the diagnostics trains exactly as one without.

Requires a model with `beta1`, `beta3` and `compute_loss_terms(batch, training)` returning
`student_loss`, `teacher_loss`, `distill_loss` and `beta2` (`kerasrwm.BootstrappedLearner`), compiled
with `keras.optimizers.Adam` without amsgrad (or an Adam in a `LossScaleOptimizer`, under mixed
precision: its velocity is of the unscaled gradients); an AdamW's decoupled weight decay is not
part of the step measured. Another optimizer is refused when training begins.
"""

import keras
import numpy as np
import tensorflow as tf

TERMS = ("student", "teacher", "distill")
NAMES = (
    "grad_norm/student",
    "grad_norm/teacher",
    "grad_norm/labels",
    "grad_norm/distill",
    "grad_norm/distill_unweighted",
    "cosine/distill_labels",
    "adam/label_fraction",
)


def _cosine(a, b):
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / denominator) if denominator > 0 else 0.0


def diagnostics_from_gradients(student, teacher, distill, beta1, beta2, beta3, velocity, epsilon):
    """The diagnostics (see the module docstring) from flat gradient vectors.

    Args:
        student, teacher, distill: unweighted gradients of the three terms, float64 `[weights]`.
        beta1, beta2, beta3: the term weights (beta2 the one in force).
        velocity: Adam's second-moment estimate `v` of the same weights, `[weights]`.
        epsilon: Adam's epsilon.

    Returns:
        A dict `{name: float}` with the keys `NAMES`.
    """
    labels = beta1 * student + beta3 * teacher
    total = labels + beta2 * distill
    preconditioner = 1.0 / (np.sqrt(velocity) + epsilon)
    step, label_step = preconditioner * total, preconditioner * labels
    step_squared = float(np.dot(step, step))
    return {
        "grad_norm/student": float(np.linalg.norm(beta1 * student)),
        "grad_norm/teacher": float(np.linalg.norm(beta3 * teacher)),
        "grad_norm/labels": float(np.linalg.norm(labels)),
        "grad_norm/distill": float(np.linalg.norm(beta2 * distill)),
        "grad_norm/distill_unweighted": float(np.linalg.norm(distill)),
        "cosine/distill_labels": _cosine(distill, labels),
        "adam/label_fraction": float(np.dot(label_step, step)) / step_squared if step_squared > 0 else 1.0,
    }


class BootstrapDiagnostics(keras.callbacks.Callback):
    """Logs the bootstrapped loss's gradient diagnostics every `every` optimizer steps.

    The values (see the module docstring) go to TensorBoard as `bootstrap_diagnostics/<name>` at
    the optimizer step, and one line per evaluation is printed (the run's log).

    Args:
        episodes: a finite `tf.data.Dataset` of training episode batches (a few; gradients are
            averaged over them). The same batches at every evaluation, so values are comparable.
        every: evaluation period in optimizer steps (>= 1).
        log_dir: TensorBoard directory for the scalars, or None.
        print_fn: where the log line goes (`print`).
    """

    def __init__(self, episodes, every, log_dir=None, print_fn=print):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be an integer >= 1; received every={every!r}.")
        self.episodes = episodes
        self.every = every
        self.log_dir = log_dir
        self.print_fn = print_fn
        self._writer = None
        self._term_gradients = None

    def _trace_term_gradients(self):
        model = self.model

        @tf.function
        def term_gradients(batch):
            variables = model.trainable_variables
            with tf.GradientTape(persistent=True) as tape:
                terms = model.compute_loss_terms(batch, training=True)
            losses = [terms["student_loss"], terms["teacher_loss"], terms["distill_loss"]]
            flat = []
            for loss in losses:
                gradients = tape.gradient(loss, variables)
                pieces = [
                    tf.zeros([int(np.prod(v.shape))], tf.float64)
                    if g is None
                    else tf.reshape(tf.cast(g, tf.float64), [-1])
                    for g, v in zip(gradients, variables)
                ]
                flat.append(tf.concat(pieces, 0))
            return flat, tf.cast(terms["beta2"], tf.float64)

        return term_gradients

    def _adam(self):
        """The model's Adam, unwrapped from a `LossScaleOptimizer` (mixed precision); `ValueError` for another."""
        optimizer = self.model.optimizer
        adam = getattr(optimizer, "inner_optimizer", optimizer)
        if not isinstance(adam, keras.optimizers.Adam) or adam.amsgrad:
            raise ValueError(
                "BootstrapDiagnostics needs a model compiled with keras.optimizers.Adam without amsgrad (its step "
                f"divides by the root of the velocity); received optimizer={optimizer!r}."
            )
        return adam

    def _velocity(self):
        optimizer = self._adam()
        pieces = [
            optimizer._velocities[optimizer._get_variable_index(variable)].numpy().astype(np.float64).ravel()
            for variable in self.model.trainable_variables
        ]
        return np.concatenate(pieces), float(optimizer.epsilon)

    def compute(self):
        """The diagnostics now, as a dict `{name: float}`; the model's non-trainable state is kept."""
        if self._term_gradients is None:
            self._term_gradients = self._trace_term_gradients()
        kept = [variable.numpy() for variable in self.model.non_trainable_variables]
        sums, batches, beta2 = None, 0, 0.0
        try:
            for batch in self.episodes:
                flat, beta2 = self._term_gradients(batch)
                flat = [gradient.numpy() for gradient in flat]
                sums = flat if sums is None else [s + g for s, g in zip(sums, flat)]
                batches += 1
        finally:
            for variable, value in zip(self.model.non_trainable_variables, kept):
                variable.assign(value)
        if not batches:
            raise ValueError("`episodes` of BootstrapDiagnostics holds no batch.")
        student, teacher, distill = (s / batches for s in sums)
        velocity, epsilon = self._velocity()
        model = self.model
        return diagnostics_from_gradients(
            student, teacher, distill, model.beta1, float(beta2), model.beta3, velocity, epsilon
        )

    def on_train_begin(self, logs=None):
        self._adam()

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % self.every:
            return
        values = self.compute()
        self.print_fn(
            f"bootstrap diagnostics, step {step}: " + ", ".join(f"{name} {value:.4g}" for name, value in values.items())
        )
        if self.log_dir is not None:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(self.log_dir)
            with self._writer.as_default():
                for name, value in values.items():
                    tf.summary.scalar(f"bootstrap_diagnostics/{name}", value, step=step)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


DIAGNOSTIC_BATCHES = 4
DIAGNOSTIC_START_BATCH = 10**7
"""The diagnostics' episodes: batches 10^7.. of the run's training stream, which training never reaches."""


def diagnostics_callback(config, output_dir, print_fn=print):
    """The `BootstrapDiagnostics` of a run configuration (`config["diagnostics_every"]` > 0).

    Its episodes are `DIAGNOSTIC_BATCHES` batches of the run's own training stream (same source,
    split, spec and seed) from batch `DIAGNOSTIC_START_BATCH`; the scalars go to
    `output_dir/logs/bootstrap_diagnostics`.
    """
    from kerasrwm.data import load_source
    from kerasrwm.training.experiment import training_stream

    store = load_source(config["data"], **config["data_options"]).split("train")
    episodes = training_stream(config, store, start_batch=DIAGNOSTIC_START_BATCH).take(DIAGNOSTIC_BATCHES).cache()
    return BootstrapDiagnostics(
        episodes,
        config["diagnostics_every"],
        log_dir=f"{output_dir}/logs/bootstrap_diagnostics",
        print_fn=print_fn,
    )

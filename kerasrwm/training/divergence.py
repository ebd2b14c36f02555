"""`StopOnDivergence`: a training run whose losses or weights stop being finite is an error."""

import math

import keras
import numpy as np


class TrainingDiverged(ValueError):
    """Raised when training produces a NaN or infinite loss or metric."""


def _non_finite(logs):
    """Names of the numeric `logs` entries that are NaN or infinite, sorted."""
    names = []
    for name, value in (logs or {}).items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(value):
            names.append(name)
    return sorted(names)


class StopOnDivergence(keras.callbacks.Callback):
    """Raises `TrainingDiverged` at the first batch or epoch end with a non-finite log.

    Unlike `keras.callbacks.TerminateOnNaN`, which ends `fit` as if training were done, this
    raises, so the run is not marked finished. Put it first among the callbacks, so that the
    epoch end that sees a NaN saves nothing.
    """

    def _check(self, logs, moment):
        """Raises if a log is not finite; `moment()` describes when (called only then)."""
        names = _non_finite(logs)
        if names:
            raise TrainingDiverged(
                f"training diverged: {', '.join(names)} not finite at {moment()}; the run is not finished. "
                "Lower `learning_rate` (or the loss weights) and train into a new run directory."
            )

    def on_train_batch_end(self, batch, logs=None):
        # The step is read only on divergence: a distributed optimizer's counter is a per-replica variable.
        self._check(logs, lambda: f"step {int(keras.ops.convert_to_numpy(self.model.optimizer.iterations.value))}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, lambda: f"the end of epoch {epoch + 1}")


def check_finite_weights(model, source):
    """Raises `ValueError` naming the first variable of `model` with NaN or infinite values."""
    for variable in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(variable))):
            raise ValueError(f"{source} holds non-finite weights (NaN or Inf) in {variable.path!r}: the run diverged.")

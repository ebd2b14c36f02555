"""The fused SRWM custom op (C++ / CUDA): lazy loading, gradient registration and wrapper.

The op library is built on first use (`kerasrwm.ops.build`) and loaded once per process. If it
cannot be built or loaded, one warning says why and `implementation="auto"` falls back to the
loop. Setting `KERASRWM_DISABLE_FUSED=1` makes the fused op unavailable without trying.

Import `kerasrwm` before `tf.saved_model.load` of a graph that contains the op, so that the
op is registered in the process. The op has no XLA lowering: do not call it under
`jit_compile=True` (layers using it set `supports_jit = False`).
"""

import os
import warnings

import tensorflow as tf

from kerasrwm.ops import build

DISABLE_ENV = "KERASRWM_DISABLE_FUSED"

# Weights are checkpointed every this many steps for the backward, which reverts the
# updates in between; this bounds the float32 error of the reversal at long sequences.
DEFAULT_CHECKPOINT_INTERVAL = 256


class _LazyLibrary:
    """Builds and loads the op library on first request; remembers a failure."""

    def __init__(self):
        self._module = None
        self._error = None

    def get(self):
        """The loaded op module, or None (after one warning) if it cannot be had."""
        if self._module is None and self._error is None:
            try:
                self._module = self._load()
            except (build.BuildError, tf.errors.OpError, OSError) as error:
                self._error = str(error)
                warnings.warn(
                    f"kerasrwm: the fused SRWM op is unavailable, the loop implementation is "
                    f"used instead. Reason: {error}",
                    RuntimeWarning,
                    stacklevel=4,
                )
        return self._module

    @property
    def error(self):
        return self._error

    @staticmethod
    def _load():
        library = build.ensure_library()
        try:
            return tf.load_op_library(str(library))
        except tf.errors.NotFoundError:
            # A library that does not load (built by another toolchain, damaged) is rebuilt once.
            return tf.load_op_library(str(build.ensure_library(force=True)))


_LIBRARY = _LazyLibrary()


def _disabled():
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def is_available():
    """True if the fused op can run here (building it on the first call)."""
    return not _disabled() and _LIBRARY.get() is not None


def unavailable_reason():
    if _disabled():
        return f"the fused op is disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}."
    return _LIBRARY.error


def srwm_fused(x, w_y, w_q, w_k, w_b, checkpoint_interval=DEFAULT_CHECKPOINT_INTERVAL):
    """Runs the SRWM recurrence with the fused op.

    Args:
        x: `[batch, length, heads, head_dim]` inputs, float32 or float64.
        w_y, w_q, w_k: `[batch, heads, head_dim, head_dim]` initial weights.
        w_b: `[batch, heads, head_dim, 4]` initial learning-rate weights.
        checkpoint_interval: steps between the weight checkpoints kept for the backward.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))` as `kerasrwm.ops.srwm`.
    """
    if not is_available():
        raise RuntimeError(f"the fused SRWM op is unavailable: {unavailable_reason()}")
    y, w_y, w_q, w_k, w_b, _, _ = _LIBRARY.get().keras_rwm_srwm_forward(
        x, w_y, w_q, w_k, w_b, checkpoint_interval=checkpoint_interval
    )
    return y, (w_y, w_q, w_k, w_b)


@tf.RegisterGradient("KerasRwm>SrwmForward")
def _srwm_forward_gradient(op, grad_y, *grad_outputs):
    """Gradients of x and the four initial weights; trace and checkpoints get none."""
    finals = op.outputs[1:5]
    grad_finals = [tf.zeros_like(w) if g is None else g for g, w in zip(grad_outputs[:4], finals)]
    if grad_y is None:
        grad_y = tf.zeros_like(op.outputs[0])
    return _LIBRARY.get().keras_rwm_srwm_backward(
        op.inputs[0],
        op.outputs[5],
        op.outputs[6],
        grad_y,
        *grad_finals,
        checkpoint_interval=op.get_attr("checkpoint_interval"),
    )


tf.no_gradient("KerasRwm>SrwmBackward")

"""The fused SRWM custom op (C++ / CUDA): lazy loading, gradient registration and wrapper.

The op library is built on first use (`kerasrwm.ops.build`) and loaded once per process. If it
cannot be built or loaded, one warning says why and `implementation="auto"` falls back to the
loop. Setting `KERASRWM_DISABLE_FUSED=1` makes the fused op unavailable without trying.

When TensorFlow sees a GPU, loading also checks the GPU side once: a library without GPU kernels
(built with CPU kernels only, see `kerasrwm build-ops`) gets one warning, since the op then runs
on the CPU in a GPU model; a library with GPU kernels runs one tiny forward on the GPU, and if
that fails the op is unavailable (one warning, the loop is used). Shapes whose head_dim needs more
shared memory than a visible GPU allows (`gpu_limits`) run the loop, with one warning per shape.

Import `kerasrwm` before `tf.saved_model.load` of a graph that contains the op, so that the
op is registered in the process. The op has no XLA lowering: do not call it under
`jit_compile=True` (layers using it set `supports_jit = False`).
"""

import os
import warnings

import tensorflow as tf
from tensorflow.python.framework import kernels as tf_kernels

from kerasrwm.ops import build
from kerasrwm.ops import gpu_limits
from kerasrwm.ops.srwm_loop import srwm_loop

DISABLE_ENV = "KERASRWM_DISABLE_FUSED"

# Weights are checkpointed every this many steps for the backward, which reverts the
# updates in between; this bounds the float32 error of the reversal at long sequences.
DEFAULT_CHECKPOINT_INTERVAL = 256


class GpuKernelError(RuntimeError):
    """The op library's GPU kernels do not run on this machine's GPU."""


def _warn(message):
    warnings.warn(f"kerasrwm: {message}", RuntimeWarning, stacklevel=4)


def _visible_gpus():
    return tf.config.list_physical_devices("GPU")


def _has_gpu_kernels():
    """True if the loaded op library registered GPU kernels."""
    registered = tf_kernels.get_registered_kernels_for_op("KerasRwm>SrwmForward").kernel
    return any(kernel.device_type == "GPU" for kernel in registered)


def _check_gpu(module):
    """Warns if TensorFlow sees a GPU the library has no kernels for; else runs a tiny forward on it.

    Raises:
        GpuKernelError: the GPU kernels fail on the first visible GPU.
    """
    gpus = _visible_gpus()
    if not gpus:
        return
    if not _has_gpu_kernels():
        _warn(
            f"TensorFlow sees {len(gpus)} GPU(s) but the SRWM op library has CPU kernels only "
            f"({build.BuildConfig().cuda.reason}), so the fused op runs on the CPU and copies its "
            f"tensors to and from the GPU at every call. implementation='loop' stays on the GPU."
        )
        return
    with tf.init_scope(), tf.device("/GPU:0"):
        head_dim = gpu_limits.NUM_RATES  # so that w_b has the shape of the other weights
        x, w = tf.ones([1, 2, 1, head_dim]), tf.fill([1, 1, head_dim, head_dim], 0.1)
        try:
            outputs = module.keras_rwm_srwm_forward(x, w, w, w, w, checkpoint_interval=1)
            outputs[0].numpy()
        except tf.errors.OpError as error:
            raise GpuKernelError(f"its GPU kernels fail on {gpus[0].name}: {error.message}") from error


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
            except (build.BuildError, GpuKernelError, tf.errors.OpError, OSError) as error:
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
            module = tf.load_op_library(str(library))
        except tf.errors.NotFoundError:
            # A library that does not load (built by another toolchain, damaged) is rebuilt once.
            module = tf.load_op_library(str(build.ensure_library(force=True)))
        _check_gpu(module)
        return module


_LIBRARY = _LazyLibrary()


class _GpuShapeLimit:
    """Decides, from the visible GPUs' shared memory, which head_dims the GPU kernels can take."""

    def __init__(self):
        self._limit = None
        self._warned = set()

    def limit(self):
        """The smallest opt-in shared memory per block of the visible GPUs (None: no GPU kernels used)."""
        if self._limit is None:
            gpus = _visible_gpus() if _has_gpu_kernels() else []
            limits = [
                gpu_limits.shared_memory_limit(
                    tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
                )
                for gpu in gpus
            ]
            self._limit = min(limits) if limits else 0
        return self._limit or None

    def fits(self, head_dim, dtype):
        """True if the op can run `head_dim` here; warns once per head_dim and dtype if not."""
        limit = self.limit()
        if limit is None or gpu_limits.kernels_fit(head_dim, dtype.size, limit):
            return True
        if (head_dim, dtype.name) not in self._warned:
            self._warned.add((head_dim, dtype.name))
            needed = gpu_limits.backward_shared_bytes(head_dim, dtype.size)
            _warn(
                f"head_dim {head_dim} ({dtype.name}) needs {needed} bytes of GPU shared memory per "
                f"block; the GPU allows {limit}. The loop implementation is used for this shape."
            )
        return False


_GPU_SHAPES = _GpuShapeLimit()


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
        `(y, (w_y, w_q, w_k, w_b))` as `kerasrwm.ops.srwm`; computed by the loop when the GPU
        kernels cannot take this head_dim (one warning).
    """
    if not is_available():
        raise RuntimeError(f"the fused SRWM op is unavailable: {unavailable_reason()}")
    if not _GPU_SHAPES.fits(x.shape[-1], tf.as_dtype(x.dtype)):
        return srwm_loop(x, w_y, w_q, w_k, w_b)
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

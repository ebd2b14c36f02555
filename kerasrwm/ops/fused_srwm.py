"""The fused SRWM custom op (C++ / CUDA): lazy loading, gradient registration and wrapper.

The op library is built on first use (`kerasrwm.ops.build`) and loaded once per process. If it
cannot be built or loaded, one warning says why and `implementation="auto"` falls back to the
loop. Setting `KERASRWM_DISABLE_FUSED=1` makes the fused op unavailable without trying.

The GPU side never costs the CPU kernels. A library whose GPU part fails to build or to load is
replaced by one with CPU kernels only (`build.ensure_library`); when TensorFlow sees a GPU, the
GPU kernels run one tiny forward and backward on every visible GPU at load time, and if that
fails the failure is recorded (later processes build CPU kernels only) and this process runs the
op on the CPU. Either way one warning says what failed and how to fix it. While TensorFlow sees a
GPU that the op has no working kernels for, `implementation="auto"` runs the loop, on the GPU;
`"fused"` runs the CPU kernels. Shapes that the GPU kernels cannot launch on a visible GPU
(threads per block and shared memory, asked of the compiled kernels: `gpu_limits`) run the loop,
with one warning per shape.

float16 and bfloat16 inputs (mixed precision) are computed in float32 and returned in their
dtype; the gradients flow through the casts.

Import `kerasrwm` before `tf.saved_model.load` of a graph that contains the op, so that the
op is registered in the process. The op has no XLA lowering: do not call it under
`jit_compile=True` (layers using it set `supports_jit = False`).
"""

import contextlib
import os
import warnings

import tensorflow as tf
from tensorflow.python.framework import kernels as tf_kernels

from kerasrwm.ops import build
from kerasrwm.ops import gpu_limits
from kerasrwm.ops.srwm_loop import srwm_loop

DISABLE_ENV = "KERASRWM_DISABLE_FUSED"
KERNEL_DTYPES = (tf.float32, tf.float64)  # the op's kernels; other floating dtypes compute in float32

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


def _probe_gpus(module, gpus):
    """Runs a tiny forward and backward on every visible GPU.

    Raises:
        GpuKernelError: naming the GPU and TensorFlow's error.
    """
    head_dim = gpu_limits.NUM_RATES  # so that w_b has the shape of the other weights
    for index, gpu in enumerate(gpus):
        with tf.init_scope(), tf.device(f"/GPU:{index}"):
            x, w = tf.ones([1, 2, 1, head_dim]), tf.fill([1, 1, head_dim, head_dim], 0.1)
            try:
                y, *finals, trace, checkpoints = module.keras_rwm_srwm_forward(x, w, w, w, w, checkpoint_interval=1)
                gradients = module.keras_rwm_srwm_backward(
                    x, trace, checkpoints, tf.ones_like(y), *map(tf.ones_like, finals), checkpoint_interval=1
                )
                [gradient.numpy() for gradient in gradients]
            except tf.errors.OpError as error:
                raise GpuKernelError(f"its GPU kernels fail on {gpu.name}: {error.message}") from error


def _no_gpu_kernels_message(problem, gpus):
    if gpus:
        effect = (
            f"TensorFlow sees {len(gpus)} GPU(s): implementation='auto' runs the loop on the GPU, and "
            "implementation='fused' runs the CPU kernels (copying its tensors to and from the GPU at every call)"
        )
    else:
        effect = "The CPU kernels are used"
    return f"the SRWM op library has no GPU kernels that run here: {problem}.\n{effect}."


class _LazyLibrary:
    """Builds and loads the op library on first request; remembers a failure and the GPU kernels' state."""

    def __init__(self):
        self._module = None
        self._error = None
        self.gpu_kernels_work = False  # the loaded library's GPU kernels passed the probe on every GPU

    def get(self):
        """The loaded op module, or None (after one warning) if it cannot be had."""
        if self._module is None and self._error is None:
            try:
                self._module = self._load()
            except (build.BuildError, tf.errors.OpError, OSError) as error:
                self._error = str(error)
                _warn(f"the fused SRWM op is unavailable, the loop implementation is used instead. Reason: {error}")
        return self._module

    @property
    def error(self):
        return self._error

    def _load(self):
        library, module = self._load_library()
        gpus = _visible_gpus()
        if library.gpu_kernels and gpus:
            try:
                _probe_gpus(module, gpus)
                self.gpu_kernels_work = True
            except GpuKernelError as error:
                build.record_gpu_failure(build.BuildConfig(), f"the first run on the GPU failed: {error}")
                _warn(
                    _no_gpu_kernels_message(
                        f"{error}. This is recorded: later processes build CPU kernels only until "
                        "`kerasrwm build-ops --force`",
                        gpus,
                    )
                )
        elif not library.gpu_kernels and (gpus or library.gpu_failed):
            _warn(_no_gpu_kernels_message(library.cpu_only_reason, gpus))
        return module

    @staticmethod
    def _load_library():
        """`(build.Library, module)`. A library that does not load is rebuilt once; if it still does
        not and has GPU kernels, that failure is recorded and the CPU-kernel library is loaded."""
        library = build.ensure_library()
        try:
            return library, tf.load_op_library(str(library.path))
        except tf.errors.NotFoundError:
            library = build.ensure_library(force=True)
        try:
            return library, tf.load_op_library(str(library.path))
        except tf.errors.NotFoundError as error:
            if not library.gpu_kernels:
                raise
            build.record_gpu_failure(build.BuildConfig(), f"loading the library failed: {error.message}")
        library = build.ensure_library()
        return library, tf.load_op_library(str(library.path))


_LIBRARY = _LazyLibrary()


class _GpuShapeLimit:
    """Decides, from what the compiled kernels can launch with on the visible GPUs, which shapes they take."""

    def __init__(self):
        self._limits = {}
        self._warned = set()

    def limits(self, dtype):
        """`gpu_limits.DeviceLimits` of every visible GPU for `dtype` ([] when the GPU kernels are not used)."""
        if dtype.name not in self._limits:
            gpus = _visible_gpus() if _has_gpu_kernels() and _LIBRARY.gpu_kernels_work else []
            self._limits[dtype.name] = [self._query(index, dtype) for index in range(len(gpus))]
        return self._limits[dtype.name]

    @staticmethod
    def _query(index, dtype):
        with tf.init_scope(), tf.device(f"/GPU:{index}"):
            values = _LIBRARY.get().keras_rwm_srwm_gpu_limits(T=dtype).numpy()
        return gpu_limits.DeviceLimits(*(gpu_limits.KernelLimits(*map(int, row)) for row in values))

    def fits(self, head_dim, dtype):
        """True if the op can run `head_dim` in `dtype` here; warns once per head_dim and dtype if not."""
        refusals = [
            reason for limits in self.limits(dtype) if (reason := gpu_limits.refusal(head_dim, dtype.size, limits))
        ]
        if not refusals:
            return True
        if (head_dim, dtype.name) not in self._warned:
            self._warned.add((head_dim, dtype.name))
            _warn(f"head_dim {head_dim} ({dtype.name}): {refusals[0]} The loop implementation is used for this shape.")
        return False


_GPU_SHAPES = _GpuShapeLimit()


def _disabled():
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def is_available():
    """True if the fused op can run here (building it on the first call)."""
    return not _disabled() and _LIBRARY.get() is not None


def suits_visible_devices():
    """False if TensorFlow sees a GPU that the op has no working kernels for (then the loop is faster)."""
    return not _visible_gpus() or (_has_gpu_kernels() and _LIBRARY.gpu_kernels_work)


def unavailable_reason():
    if _disabled():
        return f"the fused op is disabled by {DISABLE_ENV}={os.environ[DISABLE_ENV]}."
    return _LIBRARY.error


def _op_device():
    """Pins the op to the CPU where its registered GPU kernels failed the probe."""
    if _visible_gpus() and _has_gpu_kernels() and not _LIBRARY.gpu_kernels_work:
        return tf.device("/CPU:0")
    return contextlib.nullcontext()


def srwm_fused(x, w_y, w_q, w_k, w_b, checkpoint_interval=DEFAULT_CHECKPOINT_INTERVAL):
    """Runs the SRWM recurrence with the fused op.

    Args:
        x: `[batch, length, heads, head_dim]` inputs: float32 or float64, or float16 or bfloat16
            (computed in float32, returned in their dtype).
        w_y, w_q, w_k: `[batch, heads, head_dim, head_dim]` initial weights, in the dtype of `x`.
        w_b: `[batch, heads, head_dim, 4]` initial learning-rate weights, in the dtype of `x`.
        checkpoint_interval: steps between the weight checkpoints kept for the backward.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))` as `kerasrwm.ops.srwm`; computed by the loop when the GPU
        kernels cannot take this head_dim (one warning).
    """
    if not is_available():
        raise RuntimeError(f"the fused SRWM op is unavailable: {unavailable_reason()}")
    dtype = tf.as_dtype(x.dtype)
    compute_dtype = dtype if dtype in KERNEL_DTYPES else tf.float32
    if not _GPU_SHAPES.fits(x.shape[-1], compute_dtype):
        return srwm_loop(x, w_y, w_q, w_k, w_b)
    inputs = [tf.cast(tensor, compute_dtype) for tensor in (x, w_y, w_q, w_k, w_b)]
    with _op_device():
        y, *finals, _, _ = _LIBRARY.get().keras_rwm_srwm_forward(*inputs, checkpoint_interval=checkpoint_interval)
    y, w_y, w_q, w_k, w_b = (tf.cast(tensor, dtype) for tensor in (y, *finals))
    return y, (w_y, w_q, w_k, w_b)


@tf.RegisterGradient("KerasRwm>SrwmForward")
def _srwm_forward_gradient(op, grad_y, *grad_outputs):
    """Gradients of x and the four initial weights; trace and checkpoints get none."""
    finals = op.outputs[1:5]
    grad_finals = [tf.zeros_like(w) if g is None else g for g, w in zip(grad_outputs[:4], finals)]
    if grad_y is None:
        grad_y = tf.zeros_like(op.outputs[0])
    with _op_device():
        return _LIBRARY.get().keras_rwm_srwm_backward(
            op.inputs[0],
            op.outputs[5],
            op.outputs[6],
            grad_y,
            *grad_finals,
            checkpoint_interval=op.get_attr("checkpoint_interval"),
        )


tf.no_gradient("KerasRwm>SrwmBackward")
tf.no_gradient("KerasRwm>SrwmGpuLimits")

"""`kerasrwm.ops.srwm`: the SRWM recurrence with a choice of implementation."""

import contextlib
import threading

import tensorflow as tf

from kerasrwm.ops.srwm_loop import srwm_loop
from kerasrwm.validation import check_choice

IMPLEMENTATIONS = ("auto", "loop", "fused")
HAND_OFF_GRADIENTS = ("exact", "reference")
MIN_HEAD_DIM = 4
FUSED_DTYPES = ("float32", "float64", "float16", "bfloat16")  # half precision computes in float32
_portable = threading.local()


@contextlib.contextmanager
def portable_graphs():
    """Within this block (in this thread) every `srwm` call runs the loop, whatever it asks for.

    The loop uses built-in TensorFlow ops only, so a graph traced inside the block (a SavedModel
    signature) loads in any TensorFlow process, without kerasrwm or its op library. Both
    implementations compute the same function, so the traced model is the same model.
    """
    previous = getattr(_portable, "active", False)
    _portable.active = True
    try:
        yield
    finally:
        _portable.active = previous


def check_implementation(implementation):
    """Raises `ValueError` unless `implementation` is one of `IMPLEMENTATIONS`; never builds the op."""
    return check_choice("implementation", implementation, IMPLEMENTATIONS)


def check_hand_off_gradient(hand_off_gradient):
    """Raises `ValueError` unless `hand_off_gradient` is one of `HAND_OFF_GRADIENTS`."""
    return check_choice("hand_off_gradient", hand_off_gradient, HAND_OFF_GRADIENTS)


@tf.custom_gradient
def _hand_off_as_reference(initial_weights, final_weights):
    """`final_weights`, whose incoming gradient also goes straight to `initial_weights` (bug B2)."""

    def gradient(upstream):
        return upstream, upstream

    return tf.identity(final_weights), gradient


def resolve_implementation(implementation, dtype=None):
    """Maps `"auto" | "loop" | "fused"` to the implementation that will run.

    `"auto"` is `"fused"` when the custom-op library is available (built on first use), `dtype` is
    one of `FUSED_DTYPES` (float16 and bfloat16 compute in float32 inside the op's wrapper) and the
    op has working kernels for every device TensorFlow sees; otherwise `"loop"`: on a machine whose
    GPU the library has no working kernels for, the loop runs on the GPU. `"fused"` requires the
    library and such a dtype, and raises otherwise.

    Args:
        implementation: `"auto"`, `"loop"` or `"fused"`.
        dtype: the compute dtype (name or `tf.DType`), or None if not known yet.
    """
    check_implementation(implementation)
    if implementation == "loop":
        return "loop"
    dtype_name = None if dtype is None else tf.as_dtype(dtype).name
    if dtype_name is not None and dtype_name not in FUSED_DTYPES:
        if implementation == "fused":
            raise ValueError(
                f"implementation='fused' computes in {FUSED_DTYPES}; received dtype {dtype_name}. "
                "Use 'auto' (which then runs the loop) or 'loop'."
            )
        return "loop"
    from kerasrwm.ops import fused_srwm

    if fused_srwm.is_available():
        if implementation == "fused" or fused_srwm.suits_visible_devices():
            return "fused"
        return "loop"
    if implementation == "fused":
        raise RuntimeError(
            "implementation='fused' was requested but the SRWM op library is unavailable: "
            f"{fused_srwm.unavailable_reason()}"
        )
    return "loop"


def _check_floating(name, tensor):
    if not tensor.dtype.is_floating:
        raise ValueError(f"`{name}` must have a floating dtype; received dtype {tensor.dtype.name}.")


def _check_shape(name, tensor, expected, description):
    """Checks rank and every statically known dimension against `expected` (None = any)."""
    shape = tensor.shape
    if shape.rank != len(expected):
        raise ValueError(f"`{name}` must have rank {len(expected)} ({description}); received shape {shape}.")
    for actual, wanted in zip(shape, expected):
        if actual is not None and wanted is not None and actual != wanted:
            raise ValueError(f"`{name}` must have shape {description} = {list(expected)}; received shape {shape}.")


def validate_srwm_inputs(x, w_y, w_q, w_k, w_b):
    """Converts to tensors and checks shapes and dtypes; raises `ValueError` naming the argument."""
    tensors = {}
    for name, value in (("x", x), ("w_y", w_y), ("w_q", w_q), ("w_k", w_k), ("w_b", w_b)):
        tensor = tf.convert_to_tensor(value)
        _check_floating(name, tensor)
        tensors[name] = tensor
    x = tensors["x"]
    _check_shape("x", x, [None] * 4, "[batch, length, heads, head_dim]")
    batch, length, heads, head_dim = x.shape
    if head_dim is None:
        raise ValueError(f"`x` must have a statically known head_dim (last axis); received shape {x.shape}.")
    if head_dim < MIN_HEAD_DIM:
        raise ValueError(f"head_dim must be at least {MIN_HEAD_DIM}; received x with head_dim {head_dim}.")
    if length == 0:
        raise ValueError(f"`x` must hold at least one time step; received shape {x.shape}.")
    for name in ("w_y", "w_q", "w_k"):
        _check_shape(name, tensors[name], [batch, heads, head_dim, head_dim], "[batch, heads, head_dim, head_dim]")
    _check_shape("w_b", tensors["w_b"], [batch, heads, head_dim, 4], "[batch, heads, head_dim, 4]")
    for name, tensor in tensors.items():
        if tensor.dtype != x.dtype:
            raise ValueError(f"`{name}` must have the dtype of `x` ({x.dtype.name}); received {tensor.dtype.name}.")
    return tuple(tensors.values())


def srwm(x, w_y, w_q, w_k, w_b, implementation="loop", input_softmax=False, hand_off_gradient="exact"):
    """Runs self-referential weight matrices over a sequence, one independent SRWM per head.

    At every step t, with row vectors and the weights before the update:
    `y_t = x_t W_y`, `q_t = softmax(x_t W_q)`, `k_t = softmax(x_t W_k)`,
    `beta_t = sigmoid(x_t W_b)` (4 rates, order y, q, k, b), and each matrix `W_i` is rewritten
    with the delta rule `W_i += beta_t[i] * outer(k_t, q_t W_i - k_t W_i)`.
    Irie et al., "A Modern Self-Referential Weight Matrix That Learns to Modify Itself" (2022).

    Args:
        x: `[batch, length, heads, head_dim]` inputs.
        w_y, w_q, w_k: `[batch, heads, head_dim, head_dim]` initial weights per episode.
        w_b: `[batch, heads, head_dim, 4]` initial learning-rate weights per episode.
        implementation: `"loop"` (`tf.while_loop`, XLA-compilable), `"fused"` (custom op,
            C++/CUDA; float32 and float64 kernels, float16 and bfloat16 computed in float32) or
            `"auto"` (fused when available and it has working kernels for the visible devices,
            else the loop; see `resolve_implementation`). Inside
            `portable_graphs()` the loop runs whatever is asked.
        input_softmax: apply a softmax over each head's features of `x` first.
        hand_off_gradient: `"exact"` (default): the true gradient. `"reference"`: a
            reproduction of the authors' stateful CUDA op (bug B2 of
            `docs/srwm_reference.md`, section 9.1), not a recommendation: the gradient of each
            initial weight tensor is the true one plus the incoming gradient `U` of the
            corresponding returned final weights, `dL/dW_0 + U`. The outputs are unchanged, and
            so is every gradient when the final weights are unused (`U = 0`). Both
            implementations share it.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))`: `y` is `[batch, length, heads, head_dim]`; the final weights
        have the shapes of the initial ones and include the update of the last step.
        Differentiable with respect to `x` and all four initial weights, also through the
        returned final weights.
    """
    check_hand_off_gradient(hand_off_gradient)
    x, w_y, w_q, w_k, w_b = validate_srwm_inputs(x, w_y, w_q, w_k, w_b)
    if getattr(_portable, "active", False):
        implementation = "loop"
    implementation = resolve_implementation(implementation, x.dtype)
    if input_softmax:
        x = tf.nn.softmax(x, axis=-1)
    if implementation == "fused":
        from kerasrwm.ops import fused_srwm

        y, final_weights = fused_srwm.srwm_fused(x, w_y, w_q, w_k, w_b)
    else:
        y, final_weights = srwm_loop(x, w_y, w_q, w_k, w_b)
    if hand_off_gradient == "reference":
        initial_weights = (w_y, w_q, w_k, w_b)
        final_weights = tuple(map(_hand_off_as_reference, initial_weights, final_weights))
    return y, final_weights

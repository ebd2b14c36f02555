"""Standalone check of the SRWM CUDA kernels, without TensorFlow: needs nvcc, a GPU and NumPy.

Compiles `kerasrwm/ops/kernels/srwm_cuda.cu` with the C entry point `srwm_cuda_capi.cu` into a
shared library (nvcc + ctypes), then checks, against a float64 NumPy reference, the outputs y,
the final weights and the gradients of x and of the four initial weights for a loss that uses
both y and the final weights (float64 and float32 kernels; head_dim 4..64; L up to 1000 and
beyond the checkpoint interval), and times one forward+backward at the paper shape
B=16, H=16, E=16, L=76.

    python tf_ops/cuda_harness.py [--arch sm_90] [--repeats 100]

Exit status 0 when every check passes.
"""

import argparse
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
KERNELS = REPOSITORY / "kerasrwm" / "ops" / "kernels"
sys.path.insert(0, str(REPOSITORY))

from tests.reference import srwm_numpy  # noqa: E402
from tests.reference.problems import NUM_RATES  # noqa: E402
from tests.reference.problems import random_problem  # noqa: E402

DEFAULT_CHECKPOINT_INTERVAL = 256


def compile_library(arch, work):
    """Builds the kernels and the C entry point with nvcc; returns the ctypes library."""
    library = Path(work) / "libsrwm_cuda_harness.so"
    command = [
        "nvcc", "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC", f"-arch={arch}", f"-I{KERNELS}",
        str(Path(__file__).with_name("srwm_cuda_capi.cu")), str(KERNELS / "srwm_cuda.cu"), "-o", str(library),
    ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    handle = ctypes.CDLL(str(library))
    for name in ("srwm_forward_backward_f32", "srwm_forward_backward_f64"):
        function = getattr(handle, name)
        function.restype = ctypes.c_int
        function.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_void_p),
                             ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    handle.srwm_last_error.restype = ctypes.c_char_p
    return handle


def run_kernels(handle, x, weights, grad_y, grad_finals, checkpoint_interval, repeats=0):
    """Forward + backward on the GPU: `(y, finals, grad_x, grad_weights, milliseconds)`."""
    dtype = x.dtype
    inputs = [np.ascontiguousarray(a, dtype) for a in (x, *weights, grad_y, *grad_finals)]
    outputs = [np.empty_like(a) for a in (x, *weights, x, *weights)]
    shape = (ctypes.c_int64 * 5)(*x.shape[:1], x.shape[1], x.shape[2], x.shape[3], checkpoint_interval)
    pointers = lambda arrays: (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])  # noqa: E731
    milliseconds = ctypes.c_float(0.0)
    function = handle.srwm_forward_backward_f64 if dtype == np.float64 else handle.srwm_forward_backward_f32
    if function(shape, pointers(inputs), pointers(outputs), repeats, ctypes.byref(milliseconds)) != 0:
        raise RuntimeError(handle.srwm_last_error().decode())
    y, *rest = outputs
    return y, rest[:4], rest[4], rest[5:], milliseconds.value


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def backward_single_head(x, weights, grad_y, grad_finals):
    """Float64 reverse-mode gradient of one head, keeping every intermediate weight matrix."""
    head_dim = x.shape[-1]
    rates_of_columns = np.repeat(np.arange(NUM_RATES), [head_dim, head_dim, head_dim, NUM_RATES])
    w = np.concatenate(weights, axis=1)
    history = []
    for x_t in x:
        reads = x_t @ w
        q = _softmax(reads[head_dim:2 * head_dim])
        k = _softmax(reads[2 * head_dim:3 * head_dim])
        beta = 1.0 / (1.0 + np.exp(-reads[3 * head_dim:]))
        difference = (q - k) @ w
        update = beta[rates_of_columns] * difference
        history.append((w, q, k, beta, difference, update))
        w = w + np.outer(k, update)
    g = np.concatenate(grad_finals, axis=1)
    grad_x = np.zeros_like(x)
    for t in reversed(range(len(x))):
        w, q, k, beta, difference, update = history[t]
        grad_update = k @ g
        grad_key_outer = g @ update
        grad_difference = beta[rates_of_columns] * grad_update
        grad_beta = np.bincount(rates_of_columns, grad_update * difference, NUM_RATES)
        through_w = w @ grad_difference
        grad_query, grad_key = through_w, grad_key_outer - through_w
        grad_reads = np.concatenate([
            grad_y[t],
            q * (grad_query - q @ grad_query),
            k * (grad_key - k @ grad_key),
            grad_beta * beta * (1 - beta),
        ])
        grad_x[t] = w @ grad_reads
        g = g + np.outer(q - k, grad_difference) + np.outer(x[t], grad_reads)
    return grad_x, np.split(g, [head_dim, 2 * head_dim, 3 * head_dim], axis=1)


def backward_reference(x, weights, grad_y, grad_finals):
    """Batched `backward_single_head` with the layout of the op."""
    grad_x = np.zeros_like(x)
    grad_weights = [np.zeros_like(w) for w in weights]
    for b in range(x.shape[0]):
        for h in range(x.shape[2]):
            grad_x[b, :, h], head_grads = backward_single_head(
                x[b, :, h], [w[b, h] for w in weights], grad_y[b, :, h], [g[b, h] for g in grad_finals]
            )
            for grad, head_grad in zip(grad_weights, head_grads):
                grad[b, h] = head_grad
    return grad_x, grad_weights


def check_reference_backward(rng):
    """The NumPy backward against central differences of the NumPy forward."""
    x, weights, grad_y, grad_finals = random_problem(1, 5, 1, 4, rng)

    def loss(x, weights):
        y, finals = srwm_numpy.srwm(x, *weights)
        return np.sum(y * grad_y) + sum(np.sum(f * g) for f, g in zip(finals, grad_finals))

    grad_x, grad_weights = backward_reference(x, weights, grad_y, grad_finals)
    arrays = [x, *weights]
    worst = 0.0
    for array, analytic in zip(arrays, [grad_x, *grad_weights]):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            original = array[index]
            array[index] = original + 1e-6
            plus = loss(arrays[0], arrays[1:])
            array[index] = original - 1e-6
            minus = loss(arrays[0], arrays[1:])
            array[index] = original
            numeric[index] = (plus - minus) / 2e-6
        worst = max(worst, np.max(np.abs(analytic - numeric)) / np.max(np.abs(numeric)))
    return worst


def relative_error(actual, expected):
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected)) / max(np.max(np.abs(expected)), 1e-30))


def check_kernels(handle, rng):
    """Every case against the float64 reference; returns the number of failed checks."""
    failures = 0
    cases = [(e, length, DEFAULT_CHECKPOINT_INTERVAL) for e in (4, 8, 16, 32, 64) for length in (1, 2, 76, 1000)]
    cases += [(16, 300, 7), (8, 1000, 64)]
    for head_dim, length, interval in cases:
        batch, heads = (2, 3) if length < 1000 else (1, 2)
        x, weights, grad_y, grad_finals = random_problem(batch, length, heads, head_dim, rng)
        expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
        expected_grad_x, expected_grad_weights = backward_reference(x, weights, grad_y, grad_finals)
        expected = [expected_y, *expected_finals, expected_grad_x, *expected_grad_weights]
        for dtype, tolerance in ((np.float64, 1e-9), (np.float32, 2e-3)):
            y, finals, grad_x, grad_weights, _ = run_kernels(
                handle, x.astype(dtype), [w.astype(dtype) for w in weights], grad_y.astype(dtype),
                [g.astype(dtype) for g in grad_finals], interval,
            )
            errors = [relative_error(a, b) for a, b in zip([y, *finals, grad_x, *grad_weights], expected)]
            worst = max(errors)
            passed = worst <= tolerance
            failures += not passed
            print(f"{'ok  ' if passed else 'FAIL'} {np.dtype(dtype).name} E={head_dim:<3d} L={length:<5d} "
                  f"C={interval:<4d} worst relative error {worst:.2e} "
                  f"(y {errors[0]:.1e}, finals {max(errors[1:5]):.1e}, grad x {errors[5]:.1e}, "
                  f"grad W {max(errors[6:]):.1e})", flush=True)
    return failures


def time_paper_shape(handle, rng, repeats):
    x, weights, grad_y, grad_finals = random_problem(16, 76, 16, 16, rng)
    cast = lambda arrays: [a.astype(np.float32) for a in arrays]  # noqa: E731
    *_, milliseconds = run_kernels(handle, x.astype(np.float32), cast(weights), grad_y.astype(np.float32),
                                   cast(grad_finals), DEFAULT_CHECKPOINT_INTERVAL, repeats=repeats)
    return milliseconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="native", help="nvcc -arch value (default: the local GPU)")
    parser.add_argument("--repeats", type=int, default=100, help="timed forward+backward calls")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    reference_error = check_reference_backward(rng)
    print(f"NumPy backward vs finite differences: relative error {reference_error:.2e}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        handle = compile_library(args.arch, work)
        failures = check_kernels(handle, rng) + (reference_error > 1e-6)
        milliseconds = time_paper_shape(handle, rng, args.repeats)
    print(f"float32 forward+backward at B=16 H=16 E=16 L=76: {milliseconds:.3f} ms per call "
          f"(mean of {args.repeats})")
    print("all checks passed" if failures == 0 else f"{failures} checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

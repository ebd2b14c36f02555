"""Standalone check of the SRWM CUDA kernels, without TensorFlow: needs nvcc, a GPU and NumPy.

Compiles `kerasrwm/ops/kernels/srwm_cuda.cu` with the C entry point `srwm_cuda_capi.cu` into a
shared library (nvcc + ctypes), then checks, against a float64 NumPy reference, the outputs y,
the final weights and the gradients of x and of the four initial weights for a loss that uses
both y and the final weights (float64 and float32 kernels; head_dim 4, 5, 7, 16, 32, 64; L up
to 1000 and beyond the checkpoint interval, partial packs), times one float32 forward+backward
at the paper shape B=16, H=16, E=16, L=76 and at L=1000, and, when `compute-sanitizer` is on
PATH, runs its racecheck and memcheck tools over one small case. The device check of the
project, in one command (a few minutes on one GPU):

    python tf_ops/cuda_harness.py [--arch sm_90] [--repeats 100]

Exit status 0 when every check passes.
"""

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
KERNELS = REPOSITORY / "kerasrwm" / "ops" / "kernels"
sys.path.insert(0, str(REPOSITORY))

from reference import srwm_numpy  # noqa: E402
from reference.problems import random_problem  # noqa: E402

DEFAULT_CHECKPOINT_INTERVAL = 256


def compile_library(arch, work):
    """Builds the kernels and the C entry point with nvcc; returns the library's path."""
    library = Path(work) / "libsrwm_cuda_harness.so"
    command = [
        "nvcc",
        "-O3",
        "-std=c++17",
        "-shared",
        "-Xcompiler",
        "-fPIC",
        f"-arch={arch}",
        f"-I{KERNELS}",
        str(Path(__file__).with_name("srwm_cuda_capi.cu")),
        str(KERNELS / "srwm_cuda.cu"),
        "-o",
        str(library),
    ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return library


def load_library(library):
    """The ctypes handle of a library built by `compile_library`."""
    handle = ctypes.CDLL(str(library))
    for name in ("srwm_forward_backward_f32", "srwm_forward_backward_f64"):
        function = getattr(handle, name)
        function.restype = ctypes.c_int
        function.argtypes = [
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_float),
        ]
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


def check_reference_backward(rng):
    """The NumPy backward against central differences of the NumPy forward."""
    x, weights, grad_y, grad_finals = random_problem(1, 5, 1, 4, rng)

    def loss(x, weights):
        y, finals = srwm_numpy.srwm(x, *weights)
        return np.sum(y * grad_y) + sum(np.sum(f * g) for f, g in zip(finals, grad_finals))

    grad_x, grad_weights = srwm_numpy.srwm_backward(x, weights, grad_y, grad_finals)
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


SMALL_CASE = (5, 7, 3)  # head_dim, length, checkpoint interval


def check_kernels(handle, rng, cases=None):
    """Every case `(head_dim, length, interval)` against the float64 reference; returns the failures."""
    failures = 0
    if cases is None:
        cases = [(e, length, DEFAULT_CHECKPOINT_INTERVAL) for e in (4, 5, 7, 16, 32, 64) for length in (1, 2, 76, 1000)]
        cases += [(16, 300, 7), (8, 1000, 64), SMALL_CASE]
    for head_dim, length, interval in cases:
        batch, heads = (2, 5) if length < 1000 else (1, 2)  # 10 sequences: partial packs
        x, weights, grad_y, grad_finals = random_problem(batch, length, heads, head_dim, rng)
        expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
        expected_grad_x, expected_grad_weights = srwm_numpy.srwm_backward(x, weights, grad_y, grad_finals)
        expected = [expected_y, *expected_finals, expected_grad_x, *expected_grad_weights]
        for dtype, tolerance in ((np.float64, 1e-9), (np.float32, 2e-3)):
            y, finals, grad_x, grad_weights, _ = run_kernels(
                handle,
                x.astype(dtype),
                [w.astype(dtype) for w in weights],
                grad_y.astype(dtype),
                [g.astype(dtype) for g in grad_finals],
                interval,
            )
            errors = [relative_error(a, b) for a, b in zip([y, *finals, grad_x, *grad_weights], expected)]
            worst = max(errors)
            passed = worst <= tolerance
            failures += not passed
            print(
                f"{'ok  ' if passed else 'FAIL'} {np.dtype(dtype).name} E={head_dim:<3d} L={length:<5d} "
                f"C={interval:<4d} worst relative error {worst:.2e} "
                f"(y {errors[0]:.1e}, finals {max(errors[1:5]):.1e}, grad x {errors[5]:.1e}, "
                f"grad W {max(errors[6:]):.1e})",
                flush=True,
            )
    return failures


def time_shape(handle, rng, length, repeats):
    """Milliseconds of one float32 forward+backward at B=16, H=16, E=16 and `length` steps."""
    x, weights, grad_y, grad_finals = random_problem(16, length, 16, 16, rng)
    cast = lambda arrays: [a.astype(np.float32) for a in arrays]  # noqa: E731
    *_, milliseconds = run_kernels(
        handle,
        x.astype(np.float32),
        cast(weights),
        grad_y.astype(np.float32),
        cast(grad_finals),
        DEFAULT_CHECKPOINT_INTERVAL,
        repeats=repeats,
    )
    return milliseconds


def run_sanitizer(library):
    """compute-sanitizer racecheck and memcheck over the small case; returns the failures."""
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        print("compute-sanitizer: not on PATH, skipped", flush=True)
        return 0
    failures = 0
    for tool in ("racecheck", "memcheck"):
        command = [
            sanitizer,
            "--tool",
            tool,
            "--error-exitcode",
            "1",
            sys.executable,
            __file__,
            "--small-case-only",
            "--library",
            str(library),
        ]
        print("$", " ".join(command), flush=True)
        failed = subprocess.run(command).returncode != 0
        print(f"{'FAIL' if failed else 'ok  '} compute-sanitizer {tool}", flush=True)
        failures += failed
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="native", help="nvcc -arch value (default: the local GPU)")
    parser.add_argument("--repeats", type=int, default=100, help="timed forward+backward calls")
    parser.add_argument(
        "--small-case-only", action="store_true", help="check one small case only (what compute-sanitizer runs)"
    )
    parser.add_argument("--library", help="an already built harness library (skips nvcc)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.small_case_only:
        handle = load_library(args.library or compile_library(args.arch, tempfile.mkdtemp()))
        return 1 if check_kernels(handle, rng, [SMALL_CASE]) else 0
    reference_error = check_reference_backward(rng)
    print(f"NumPy backward vs finite differences: relative error {reference_error:.2e}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        library = args.library or compile_library(args.arch, work)
        handle = load_library(library)
        failures = check_kernels(handle, rng) + (reference_error > 1e-6)
        for length in (76, 1000):
            milliseconds = time_shape(handle, rng, length, args.repeats)
            print(
                f"float32 forward+backward at B=16 H=16 E=16 L={length}: {milliseconds:.3f} ms per call "
                f"(mean of {args.repeats})",
                flush=True,
            )
        failures += run_sanitizer(library)
    print("all checks passed" if failures == 0 else f"{failures} checks FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Standalone check of the SRWM CUDA kernels, without TensorFlow: needs nvcc, a GPU and NumPy.

Compiles `kerasrwm/ops/kernels/srwm_cuda.cu` with the C entry point `srwm_cuda_capi.cu` into a
shared library (nvcc + ctypes; ptxas's register and spill report printed), then:

- checks, against a float64 NumPy reference, the outputs y, the final weights and the gradients
  of x and of the four initial weights for a loss that uses both y and the final weights (float64
  and float32 kernels; head_dim 4, 5, 7, 16, 32, 64; L up to 1000 and beyond the checkpoint
  interval, partial packs); every case runs, each failure (wrong numbers or a launch error) is
  recorded and the run goes on;
- asks the device what the compiled kernels can launch with (`cudaFuncGetAttributes` and the
  opt-in shared memory), runs the largest head_dim that `kerasrwm/ops/gpu_limits.py` allows for
  each dtype (it must pass) and the next one (the launcher must refuse it with a message);
- times float32 forward+backward over a table of shapes, the paper's B=16, H=16, E=16, L=76 first;
- runs `compute-sanitizer` racecheck and memcheck over one small case when the tool is on PATH.

The device check of the project, in one command (a few minutes on one GPU; `tf_ops/device_check.sh`
runs it with the machine's details):

    python tf_ops/cuda_harness.py [--arch native] [--repeats 100] [--json results.json]

Exit status 0 when every check passes.
"""

import argparse
import ctypes
import importlib.util
import json
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


def _load_gpu_limits():
    """`kerasrwm/ops/gpu_limits.py` alone (TensorFlow-free; the kerasrwm package would load TensorFlow)."""
    spec = importlib.util.spec_from_file_location("gpu_limits", REPOSITORY / "kerasrwm" / "ops" / "gpu_limits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_limits = _load_gpu_limits()

DEFAULT_CHECKPOINT_INTERVAL = 256
TOLERANCES = {np.float64: 1e-9, np.float32: 2e-3}
# (batch, heads, head_dim, length) of the timing table; the paper's shape first.
TIMED_SHAPES = [(16, 16, 16, 76), (16, 16, 16, 1000), (16, 16, 32, 76), (16, 16, 64, 76), (64, 16, 16, 76)]


def compile_library(arch, work):
    """Builds the kernels and the C entry point with nvcc, printing ptxas's registers and spills per kernel.

    Returns the library's path.
    """
    library = Path(work) / "libsrwm_cuda_harness.so"
    command = [
        "nvcc",
        "-O3",
        "-std=c++17",
        "-shared",
        "-Xcompiler",
        "-fPIC",
        "-Xptxas",
        "-v",
        f"-arch={arch}",
        f"-I{KERNELS}",
        str(Path(__file__).with_name("srwm_cuda_capi.cu")),
        str(KERNELS / "srwm_cuda.cu"),
        "-o",
        str(library),
    ]
    print("$", " ".join(command), flush=True)
    completed = subprocess.run(command, capture_output=True, text=True)
    print(completed.stdout, end="")
    summary = ptxas_summary(completed.stderr)
    print("\n".join(summary) if summary and completed.returncode == 0 else completed.stderr, flush=True)
    completed.check_returncode()
    return library


def ptxas_summary(report):
    """One line per SRWM kernel from `nvcc -Xptxas -v` output: registers, spills, stack."""
    lines, kernel, spills = [], None, ""
    for line in report.splitlines():
        if "Compiling entry function" in line:
            name = line.split("'")[1] if "'" in line else line
            kind = next((k for k in ("Forward", "Backward") if f"Srwm{k}Kernel" in name), None)
            dtype = "float64" if f"{kind}KernelId" in name else "float32" if kind else None
            kernel = f"{kind.lower()} {dtype}" if kind else None
        elif kernel and "spill" in line:
            spills = line.strip()
        elif kernel and "Used" in line and "registers" in line:
            lines.append(f"ptxas {kernel}: {line.split('info    :')[-1].strip()}; {spills}")
            kernel = None
    return lines


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
    handle.srwm_kernel_limits.restype = ctypes.c_int
    handle.srwm_kernel_limits.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64)]
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


def check_case(handle, rng, head_dim, length, interval, batch=None, heads=None, dtypes=tuple(TOLERANCES)):
    """One case in `dtypes` (float64 and float32) against the float64 reference; returns its failures.

    A launch error fails the dtype's check instead of ending the run.
    """
    if batch is None:
        batch, heads = (2, 5) if length < 1000 else (1, 2)  # 10 sequences: partial packs
    x, weights, grad_y, grad_finals = random_problem(batch, length, heads, head_dim, rng)
    expected_y, expected_finals = srwm_numpy.srwm(x, *weights)
    expected_grad_x, expected_grad_weights = srwm_numpy.srwm_backward(x, weights, grad_y, grad_finals)
    expected = [expected_y, *expected_finals, expected_grad_x, *expected_grad_weights]
    failures = []
    for dtype in dtypes:
        tolerance = TOLERANCES[dtype]
        name = f"{np.dtype(dtype).name} E={head_dim:<3d} L={length:<5d} C={interval:<4d}"
        try:
            y, finals, grad_x, grad_weights, _ = run_kernels(
                handle,
                x.astype(dtype),
                [w.astype(dtype) for w in weights],
                grad_y.astype(dtype),
                [g.astype(dtype) for g in grad_finals],
                interval,
            )
        except RuntimeError as error:
            print(f"FAIL {name} launch error: {error}", flush=True)
            failures.append(f"{name}: {error}")
            continue
        errors = [relative_error(a, b) for a, b in zip([y, *finals, grad_x, *grad_weights], expected)]
        worst = max(errors)
        passed = worst <= tolerance  # False for NaN too
        print(
            f"{'ok  ' if passed else 'FAIL'} {name} worst relative error {worst:.2e} "
            f"(y {errors[0]:.1e}, finals {max(errors[1:5]):.1e}, grad x {errors[5]:.1e}, "
            f"grad W {max(errors[6:]):.1e})",
            flush=True,
        )
        if not passed:
            failures.append(f"{name}: worst relative error {worst:.2e} > {tolerance:.0e}")
    return failures


def default_cases():
    cases = [(e, length, DEFAULT_CHECKPOINT_INTERVAL) for e in (4, 5, 7, 16, 32, 64) for length in (1, 2, 76, 1000)]
    return cases + [(16, 300, 7), (8, 1000, 64), SMALL_CASE]


def check_kernels(handle, rng, cases=None):
    """Every case `(head_dim, length, interval)`, each failure recorded and the run continued; returns the failures."""
    failures = []
    for head_dim, length, interval in cases or default_cases():
        failures += check_case(handle, rng, head_dim, length, interval)
    return failures


def kernel_limits(handle, itemsize):
    """`gpu_limits.DeviceLimits` of the compiled kernels of `itemsize` on this GPU."""
    values = (ctypes.c_int64 * 6)()
    if handle.srwm_kernel_limits(itemsize, values) != 0:
        raise RuntimeError(handle.srwm_last_error().decode())
    return gpu_limits.DeviceLimits(gpu_limits.KernelLimits(*values[:3]), gpu_limits.KernelLimits(*values[3:]))


def largest_head_dim(limits, itemsize, ceiling=1024):
    """The largest head_dim the kernels can launch with `limits` (`gpu_limits.refusal` is None)."""
    fitting = [e for e in range(4, ceiling) if gpu_limits.refusal(e, itemsize, limits) is None]
    return max(fitting)


def check_limits(handle, rng):
    """At the edge of the device's limits: the largest head_dim per dtype runs correctly and the next one
    is refused by the launcher with a message. Returns `(failures, figures)`."""
    failures, figures = [], {}
    for dtype in TOLERANCES:
        itemsize = np.dtype(dtype).itemsize
        limits = kernel_limits(handle, itemsize)
        largest = largest_head_dim(limits, itemsize)
        name = np.dtype(dtype).name
        figures[name] = {"limits": [list(limits.forward), list(limits.backward)], "largest_head_dim": largest}
        print(
            f"{name}: forward kernel {limits.forward}, backward kernel {limits.backward}; largest head_dim {largest}",
            flush=True,
        )
        failures += check_case(handle, rng, largest, 5, 2, batch=1, heads=2, dtypes=(dtype,))
        beyond = largest + 1
        x, weights, grad_y, grad_finals = random_problem(1, 2, 1, beyond, rng)
        try:
            run_kernels(
                handle,
                x.astype(dtype),
                [w.astype(dtype) for w in weights],
                grad_y.astype(dtype),
                [g.astype(dtype) for g in grad_finals],
                2,
            )
            failures.append(f"{name} head_dim {beyond} launched although gpu_limits refuses it")
            print(f"FAIL {name} head_dim {beyond} launched although gpu_limits refuses it", flush=True)
        except RuntimeError as error:
            refused = f"head_dim {beyond} needs" in str(error)
            print(f"{'ok  ' if refused else 'FAIL'} {name} head_dim {beyond} refused: {error}", flush=True)
            if not refused:
                failures.append(f"{name} head_dim {beyond}: unexpected error {error}")
    return failures, figures


def time_shape(handle, rng, shape, repeats):
    """Milliseconds of one float32 forward+backward at `shape` = (batch, heads, head_dim, length)."""
    batch, heads, head_dim, length = shape
    x, weights, grad_y, grad_finals = random_problem(batch, length, heads, head_dim, rng)
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


def timing_table(handle, rng, repeats):
    """The Markdown timing table of `TIMED_SHAPES` and its rows; a shape that fails is recorded and skipped."""
    rows, lines = [], ["| B | H | E | L | float32 fwd+bwd, ms per call |", "|---|---|---|---|---|"]
    for shape in TIMED_SHAPES:
        try:
            milliseconds = time_shape(handle, rng, shape, repeats)
            cell = f"{milliseconds:.3f}"
        except RuntimeError as error:
            milliseconds, cell = None, f"failed: {error}"
        rows.append({"shape": list(shape), "milliseconds": milliseconds})
        lines.append("| " + " | ".join(map(str, shape)) + f" | {cell} |")
    return rows, lines


SANITIZER_SECONDS = 150


def run_sanitizer(library):
    """compute-sanitizer racecheck and memcheck over the small case; returns the failures."""
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None:
        print("compute-sanitizer: not on PATH, skipped", flush=True)
        return []
    failures = []
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
        try:
            failed = subprocess.run(command, timeout=SANITIZER_SECONDS).returncode != 0
        except subprocess.TimeoutExpired:
            print(f"compute-sanitizer {tool}: stopped after {SANITIZER_SECONDS} s", flush=True)
            failed = True
        print(f"{'FAIL' if failed else 'ok  '} compute-sanitizer {tool}", flush=True)
        if failed:
            failures.append(f"compute-sanitizer {tool}")
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="native", help="nvcc -arch value (default: the local GPU)")
    parser.add_argument("--repeats", type=int, default=100, help="timed forward+backward calls per shape")
    parser.add_argument(
        "--small-case-only", action="store_true", help="check one small case only (what compute-sanitizer runs)"
    )
    parser.add_argument("--library", help="an already built harness library (skips nvcc)")
    parser.add_argument("--json", help="also write the failures and figures to this JSON file")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.small_case_only:
        handle = load_library(args.library or compile_library(args.arch, tempfile.mkdtemp()))
        return 1 if check_kernels(handle, rng, [SMALL_CASE]) else 0
    reference_error = check_reference_backward(rng)
    print(f"NumPy backward vs finite differences: relative error {reference_error:.2e}", flush=True)
    failures = [f"NumPy backward vs finite differences: {reference_error:.2e}"] if reference_error > 1e-6 else []
    with tempfile.TemporaryDirectory() as work:
        library = args.library or compile_library(args.arch, work)
        handle = load_library(library)
        failures += check_kernels(handle, rng)
        limit_failures, limits = check_limits(handle, rng)
        failures += limit_failures
        rows, table = timing_table(handle, rng, args.repeats)
        print(f"timing (mean of {args.repeats} calls each):", *table, sep="\n", flush=True)
        failures += run_sanitizer(library)
    print("all checks passed" if not failures else f"{len(failures)} checks FAILED:", *failures, sep="\n  ")
    if args.json:
        Path(args.json).write_text(json.dumps({"failures": failures, "limits": limits, "timing": rows}, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

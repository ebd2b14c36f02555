"""A/B timing of the CPU kernels: the working tree's against a git revision's, in one process.

The float32 forward and backward of `kerasrwm/ops/kernels/srwm_cpu.h` run on one core over all
packs, without TensorFlow. Each version is compiled with the op library's optimisation flags
into its own shared library (through `srwm_cpu_capi.cc` and ctypes), both get the same random
problem, and every repetition runs A then B, so that a change of the machine's speed during the
run (frequent on a shared host) affects both alike. It prints the medians and the median over
repetitions of the ratio B / A, and fails if the two versions' outputs differ by more than
`--tolerance` (a kernel change must not change the results beyond rounding).

    python tf_ops/cpu_ab_bench.py [--baseline HEAD] [--repeats 100] [--shape 16,76,16,16]

A is `--baseline` (a git revision, default HEAD), B is the working tree; `--baseline-dir` and
`--candidate-dir` take kernel folders instead. Exit status 0 when the outputs agree.
"""

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
KERNELS = Path("kerasrwm") / "ops" / "kernels"
sys.path.insert(0, str(REPOSITORY))

from reference.problems import random_problem  # noqa: E402

OUTPUT_NAMES = (
    "y",
    "w_y_final",
    "w_q_final",
    "w_k_final",
    "w_b_final",
    "grad_x",
    "grad_w_y",
    "grad_w_q",
    "grad_w_k",
    "grad_w_b",
)


def checkout_kernels(revision, work):
    """Extracts the kernel folder of git `revision` into `work`; returns its path."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", revision, str(KERNELS)], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    return Path(work) / KERNELS


def _optimization_flags():
    from kerasrwm.ops.build import OPTIMIZATION_FLAGS  # the op library's own flags (imports TensorFlow)

    return list(OPTIMIZATION_FLAGS)


class KernelLibrary:
    """The kernels of one folder, compiled with the C entry point and loaded with ctypes."""

    def __init__(self, kernels, output):
        command = [
            os.environ.get("CXX", "g++"),
            *_optimization_flags(),
            "-std=c++17",
            "-shared",
            "-fPIC",
            f"-I{kernels}",
            str(Path(__file__).with_name("srwm_cpu_capi.cc")),
            "-o",
            str(output),
        ]
        subprocess.run(command, check=True)
        self._handle = ctypes.CDLL(str(output))
        self._handle.srwm_cpu_new.restype = ctypes.c_void_p
        self._handle.srwm_cpu_new.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_void_p)]
        for name in ("srwm_cpu_run", "srwm_cpu_outputs"):
            getattr(self._handle, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._handle.srwm_cpu_delete.argtypes = [ctypes.c_void_p]

    def context(self, problem, checkpoint_interval):
        return KernelContext(self._handle, problem, checkpoint_interval)


class KernelContext:
    """Buffers for one problem; `run()` times one forward and one backward in milliseconds."""

    def __init__(self, handle, problem, checkpoint_interval):
        self._handle = handle
        x, weights, grad_y, grad_finals = problem
        self._shapes = [x.shape, *(w.shape for w in weights), x.shape, *(w.shape for w in weights)]
        inputs = [np.ascontiguousarray(a, np.float32) for a in (x, *weights, grad_y, *grad_finals)]
        shape = (ctypes.c_int64 * 5)(*x.shape, checkpoint_interval)
        self._context = handle.srwm_cpu_new(shape, (ctypes.c_void_p * len(inputs))(*[a.ctypes.data for a in inputs]))

    def run(self):
        milliseconds = (ctypes.c_double * 2)()
        self._handle.srwm_cpu_run(self._context, milliseconds)
        return milliseconds[0], milliseconds[1]

    def outputs(self):
        arrays = [np.empty(shape, np.float32) for shape in self._shapes]
        self._handle.srwm_cpu_outputs(self._context, (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays]))
        return dict(zip(OUTPUT_NAMES, arrays))

    def __del__(self):
        self._handle.srwm_cpu_delete(self._context)


def _relative_difference(reference, other):
    """Largest absolute difference relative to the largest absolute value of `reference`."""
    return float(np.max(np.abs(other - reference)) / max(float(np.max(np.abs(reference))), 1e-30))


def compare(baseline_kernels, candidate_kernels, shape, repeats, checkpoint_interval=256, warmup=3):
    """Times the two kernel folders in alternation; returns the figures as a dict."""
    # Weights at the layer's initial scale 1 / sqrt(head_dim).
    problem = random_problem(*shape, np.random.default_rng(0), weight_scale=1.0 / np.sqrt(shape[-1]))
    with tempfile.TemporaryDirectory() as work:
        contexts = [
            KernelLibrary(kernels, Path(work) / f"lib{name}.so").context(problem, checkpoint_interval)
            for name, kernels in (("a", baseline_kernels), ("b", candidate_kernels))
        ]
        for _ in range(warmup):
            for context in contexts:
                context.run()
        times = [[context.run() for context in contexts] for _ in range(repeats)]
        outputs = [context.outputs() for context in contexts]
    difference = {name: _relative_difference(outputs[0][name], outputs[1][name]) for name in OUTPUT_NAMES}
    median = lambda values: float(statistics.median(values))  # noqa: E731
    figures = {"shape": dict(zip(("batch", "length", "heads", "head_dim"), shape)), "repeats": repeats}
    for index, part in enumerate(("forward", "backward")):
        figures[f"a_{part}_ms"] = median(run[0][index] for run in times)
        figures[f"b_{part}_ms"] = median(run[1][index] for run in times)
        figures[f"b_over_a_{part}"] = median(run[1][index] / run[0][index] for run in times)
    figures["b_over_a_total"] = median(sum(run[1]) / sum(run[0]) for run in times)
    figures["largest_relative_output_difference"] = max(difference.values())
    return figures


def _shape(text):
    values = tuple(int(value) for value in text.split(","))
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--shape must be batch,length,heads,head_dim >= 1; received {text!r}.")
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision of A (default HEAD)")
    parser.add_argument("--baseline-dir", type=Path, help="kernel folder of A instead of --baseline")
    parser.add_argument("--candidate-dir", type=Path, default=REPOSITORY / KERNELS, help="kernel folder of B")
    parser.add_argument("--shape", type=_shape, default=(16, 76, 16, 16), help="batch,length,heads,head_dim")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative output difference allowed")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1; received {args.repeats}.")
    if not args.tolerance >= 0:
        parser.error(f"--tolerance must be a number >= 0; received {args.tolerance}.")
    cores = sorted(os.sched_getaffinity(0))
    if args.core is not None and args.core not in cores:
        parser.error(f"--core must be one of this process's cores {cores}; received {args.core}.")
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    with tempfile.TemporaryDirectory() as work:
        baseline = args.baseline_dir or checkout_kernels(args.baseline, work)
        figures = compare(baseline, args.candidate_dir, args.shape, args.repeats)
    for name, value in figures.items():
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}")
    if figures["largest_relative_output_difference"] > args.tolerance:
        print(f"The outputs differ by more than --tolerance {args.tolerance}.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

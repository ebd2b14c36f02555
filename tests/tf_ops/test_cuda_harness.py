"""`tf_ops/cuda_harness.py` without a GPU: every case runs and each failure is recorded, ptxas's
report is read, and the head_dim at the edge of the device's limits is the one `gpu_limits` allows."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reference import srwm_numpy

REPOSITORY = Path(__file__).resolve().parents[2]

# What `nvcc -Xptxas -v` printed for the kernels with nvcc 13.0 for sm_90 (abridged).
PTXAS_REPORT = """\
ptxas info    : Compiling entry function '_ZN8kerasrwm4cuda12_GLOBAL__N_118SrwmBackwardKernelIdEEvNS_9SrwmSizesENS_16SrwmBackwardArgsIT_EE' for 'sm_90'
ptxas info    : Function properties for _ZN8kerasrwm4cuda12_GLOBAL__N_118SrwmBackwardKernelIdEEvNS_9SrwmSizesENS_16SrwmBackwardArgsIT_EE
    104 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 182 registers, used 1 barriers, 104 bytes cumulative stack size
ptxas info    : Compiling entry function '_ZN8kerasrwm4cuda12_GLOBAL__N_117SrwmForwardKernelIfEEvNS_9SrwmSizesENS_15SrwmForwardArgsIT_EE' for 'sm_90'
ptxas info    : Function properties for _ZN8kerasrwm4cuda12_GLOBAL__N_117SrwmForwardKernelIfEEvNS_9SrwmSizesENS_15SrwmForwardArgsIT_EE
    96 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 72 registers, used 1 barriers, 96 bytes cumulative stack size
"""


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("cuda_harness", REPOSITORY / "tf_ops" / "cuda_harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_kernels(x, weights, grad_y, grad_finals):
    """What correct kernels return: the float64 reference of the inputs."""
    as64 = [np.asarray(a, np.float64) for a in (x, *weights)]
    y, finals = srwm_numpy.srwm(as64[0], *as64[1:])
    grad_x, grad_weights = srwm_numpy.srwm_backward(
        as64[0], as64[1:], np.asarray(grad_y, np.float64), [np.asarray(g, np.float64) for g in grad_finals]
    )
    return y, finals, grad_x, grad_weights, 0.0


@pytest.mark.parametrize("launcher_limit, failures", [(None, 0), (22, 1)])
def test_limits_check_runs_the_largest_head_dim_and_expects_the_next_refused(
    harness, monkeypatch, launcher_limit, failures
):
    """Limits of 64 threads allow head_dim 20 (3E + 4 = 64 columns); a launcher that refuses 21 passes the
    check, one that launches 21 fails it (once per dtype)."""
    kernel = harness.gpu_limits.KernelLimits(64, 0, 10**6)
    monkeypatch.setattr(
        harness, "kernel_limits", lambda handle, itemsize: harness.gpu_limits.DeviceLimits(kernel, kernel)
    )
    largest = launcher_limit or 20

    def fake_run_kernels(handle, x, weights, grad_y, grad_finals, interval, repeats=0):
        if x.shape[-1] > largest:
            raise RuntimeError(f"head_dim {x.shape[-1]} needs 96 threads; this kernel allows 64")
        return reference_kernels(x, weights, grad_y, grad_finals)

    monkeypatch.setattr(harness, "run_kernels", fake_run_kernels)
    found, figures = harness.check_limits(None, np.random.default_rng(0))
    assert figures["float32"]["largest_head_dim"] == figures["float64"]["largest_head_dim"] == 20
    assert len(found) == 2 * failures


def test_every_case_runs_and_each_failure_is_recorded(harness, monkeypatch):
    """head_dim 5 fails to launch, head_dim 7 gives wrong float32 numbers; the run goes on to head_dim 8."""
    ran = []

    def fake_run_kernels(handle, x, weights, grad_y, grad_finals, interval, repeats=0):
        head_dim = x.shape[-1]
        ran.append((head_dim, x.dtype.name))
        if head_dim == 5:
            raise RuntimeError("too many resources requested for launch")
        y, finals, grad_x, grad_weights, _ = reference_kernels(x, weights, grad_y, grad_finals)
        if head_dim == 7 and x.dtype == np.float32:
            y = y + 1.0
        return y, finals, grad_x, grad_weights, 0.0

    monkeypatch.setattr(harness, "run_kernels", fake_run_kernels)
    failures = harness.check_kernels(None, np.random.default_rng(0), [(5, 3, 2), (7, 3, 2), (8, 3, 2)])
    assert ran == [(e, d) for e in (5, 7, 8) for d in ("float64", "float32")]
    assert len(failures) == 3
    assert all("too many resources" in f for f in failures[:2]) and failures[0].startswith("float64 E=5")
    assert failures[2].startswith("float32 E=7") and "worst relative error" in failures[2]


def test_ptxas_report_gives_registers_and_spills_per_kernel(harness):
    assert harness.ptxas_summary(PTXAS_REPORT) == [
        "ptxas backward float64: Used 182 registers, used 1 barriers, 104 bytes cumulative stack size; "
        "104 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads",
        "ptxas forward float32: Used 72 registers, used 1 barriers, 96 bytes cumulative stack size; "
        "96 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads",
    ]


@pytest.mark.parametrize("itemsize, largest", [(4, 95), (8, 67)])
def test_largest_head_dim_at_the_edge_of_an_h100s_shared_memory(harness, itemsize, largest):
    kernel = harness.gpu_limits.KernelLimits(1024, 0, 232448)
    assert harness.largest_head_dim(harness.gpu_limits.DeviceLimits(kernel, kernel), itemsize) == largest


@pytest.mark.slow
def test_harness_loads_and_parses_its_arguments_without_tensorflow():
    """In a process where importing tensorflow or keras fails (a GPU machine without them)."""
    script = (
        "import sys, runpy; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
        f"sys.argv = ['cuda_harness.py', '--help']; runpy.run_path({str(REPOSITORY / 'tf_ops' / 'cuda_harness.py')!r}, "
        "run_name='__main__')"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "--arch" in completed.stdout and "--json" in completed.stdout

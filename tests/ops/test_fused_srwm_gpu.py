"""GPU decisions of `kerasrwm.ops.fused_srwm`, with a fake GPU (no GPU is needed)."""

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops import build
from kerasrwm.ops import fused_srwm
from kerasrwm.ops import gpu_limits
from kerasrwm.ops import resolve_implementation
from kerasrwm.ops import srwm
from reference import srwm_numpy

FAKE_GPU = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
GPU_LIBRARY = build.Library(Path("gpu/libkerasrwm_srwm.so"), gpu_kernels=True)
CPU_ONLY_REASON = "nvcc 12.5 failed: unsupported GNU version. Run `kerasrwm build-ops --force`"


def kernel_limits(threads=1024, shared=65536):
    """`DeviceLimits` of both kernels: like a T4 (64 KB opt-in) unless told otherwise."""
    kernel = gpu_limits.KernelLimits(threads, 0, shared)
    return gpu_limits.DeviceLimits(kernel, kernel)


@pytest.fixture
def real_module():
    if not fused_srwm.is_available():
        pytest.skip(f"the op library is unavailable: {fused_srwm.unavailable_reason()}")
    return fused_srwm._LIBRARY.get()


@pytest.fixture
def fake_gpu(monkeypatch, real_module):
    """TensorFlow "sees" one GPU; the build gives `GPU_LIBRARY`, whose module is the real one, just loaded.

    `fused_srwm._LIBRARY` is a fresh lazy library; GPU failures recorded go to `recorded`.
    """
    monkeypatch.setattr(fused_srwm, "_visible_gpus", lambda: [FAKE_GPU])
    monkeypatch.setattr(build, "ensure_library", lambda force=False: GPU_LIBRARY)
    monkeypatch.setattr(tf, "load_op_library", lambda path: real_module)
    monkeypatch.setattr(fused_srwm, "_LIBRARY", fused_srwm._LazyLibrary())
    monkeypatch.setattr(fused_srwm, "_GPU_SHAPES", fused_srwm._GpuShapeLimit())
    recorded = []
    monkeypatch.setattr(build, "BuildConfig", lambda: "gpu config")
    monkeypatch.setattr(build, "record_gpu_failure", lambda config, what: recorded.append((config, what)))
    return recorded


def _load_with_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = fused_srwm._LIBRARY.get()
        fused_srwm._LIBRARY.get()
    return module, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def _problem(head_dim, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, 3, 2, head_dim))
    weights = [rng.normal(scale=0.3, size=(1, 2, head_dim, width)) for width in (head_dim, head_dim, head_dim, 4)]
    return x.astype(dtype), [w.astype(dtype) for w in weights]


def test_registered_gpu_kernels_are_those_the_build_gave(real_module):
    assert fused_srwm._has_gpu_kernels() == build.ensure_library().gpu_kernels


def test_gpu_without_gpu_kernels_warns_once_and_auto_runs_the_loop_on_the_gpu(fake_gpu, monkeypatch, real_module):
    cpu_library = build.Library(Path("cpu.so"), gpu_kernels=False, cpu_only_reason=CPU_ONLY_REASON, gpu_failed=True)
    monkeypatch.setattr(build, "ensure_library", lambda force=False: cpu_library)
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: False)
    module, messages = _load_with_warnings()
    assert module is real_module
    assert len(messages) == 1
    assert "no GPU kernels" in messages[0] and "unsupported GNU version" in messages[0]
    assert "build-ops --force" in messages[0] and "'auto' runs the loop on the GPU" in messages[0]
    assert resolve_implementation("auto") == "loop" and resolve_implementation("fused") == "fused"
    assert fake_gpu == []  # nothing to record: the build already knows


def test_machine_without_gpu_keeps_the_fused_op_and_stays_quiet_about_a_missing_toolkit(monkeypatch, real_module):
    library = build.Library(Path("cpu.so"), gpu_kernels=False, cpu_only_reason="no CUDA 12.x toolkit")
    monkeypatch.setattr(fused_srwm, "_visible_gpus", lambda: [])
    monkeypatch.setattr(build, "ensure_library", lambda force=False: library)
    monkeypatch.setattr(tf, "load_op_library", lambda path: real_module)
    monkeypatch.setattr(fused_srwm, "_LIBRARY", fused_srwm._LazyLibrary())
    module, messages = _load_with_warnings()
    assert module is real_module and messages == []
    assert resolve_implementation("auto") == "fused"


class _FailingModule:
    """The real op module whose forward or backward fails as GPU kernels without a cubin would."""

    def __init__(self, module, failing):
        self._module, self._failing = module, failing

    def __getattr__(self, name):
        if name == f"keras_rwm_srwm_{self._failing}":

            def fail(*args, **kwargs):
                raise tf.errors.InternalError(None, None, "SRWM CUDA kernel: no kernel image is available")

            return fail
        return getattr(self._module, name)


@pytest.mark.parametrize("failing", ["forward", "backward"])
def test_gpu_kernels_that_fail_their_first_run_are_recorded_and_the_cpu_kernels_kept(
    fake_gpu, monkeypatch, real_module, failing
):
    broken = _FailingModule(real_module, failing)
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    monkeypatch.setattr(tf, "load_op_library", lambda path: broken)
    module, messages = _load_with_warnings()
    assert module is broken  # still the op, on the CPU
    assert len(messages) == 1 and "no kernel image is available" in messages[0] and "GPU:0" in messages[0]
    assert "build-ops --force" in messages[0]
    assert len(fake_gpu) == 1 and fake_gpu[0][0] == "gpu config" and "no kernel image" in fake_gpu[0][1]
    assert resolve_implementation("auto") == "loop"
    assert not isinstance(fused_srwm._op_device(), contextlib.nullcontext)  # pinned to the CPU
    assert not fused_srwm.suits_visible_devices()


def test_gpu_kernels_that_pass_their_first_forward_and_backward_are_used(fake_gpu, monkeypatch, real_module):
    # The fake GPU does not exist, so soft placement runs the probe on the CPU kernels.
    calls = []

    class Counting:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real_module, name)

    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    monkeypatch.setattr(tf, "load_op_library", lambda path: Counting())
    _, messages = _load_with_warnings()
    assert messages == [] and fake_gpu == []
    assert calls == ["keras_rwm_srwm_forward", "keras_rwm_srwm_backward"]
    assert fused_srwm.suits_visible_devices() and resolve_implementation("auto") == "fused"


def test_library_whose_gpu_part_does_not_load_is_replaced_by_the_cpu_kernels(fake_gpu, monkeypatch, real_module):
    cpu_library = build.Library(Path("cpu.so"), gpu_kernels=False, cpu_only_reason="loading failed", gpu_failed=True)
    libraries = iter([GPU_LIBRARY, GPU_LIBRARY, cpu_library])
    forced = []

    def ensure_library(force=False):
        forced.append(force)
        return next(libraries)

    def load(path):
        if path == str(GPU_LIBRARY.path):
            raise tf.errors.NotFoundError(None, None, "libcudart.so.12: cannot open shared object file")
        return real_module

    monkeypatch.setattr(build, "ensure_library", ensure_library)
    monkeypatch.setattr(tf, "load_op_library", load)
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: False)
    module, messages = _load_with_warnings()
    assert module is real_module and forced == [False, True, False]
    assert len(fake_gpu) == 1 and "libcudart.so.12" in fake_gpu[0][1]
    assert len(messages) == 1 and "loading failed" in messages[0]


def _gpu_kernels_in_use(monkeypatch, limits):
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    fused_srwm._LIBRARY.get()
    queried = []

    def query(index, dtype):
        queried.append((index, dtype.name))
        return limits

    monkeypatch.setattr(fused_srwm._GpuShapeLimit, "_query", staticmethod(query))
    return queried


def _run_counting_loop(monkeypatch, shapes, dtype=np.float32):
    loop_calls, loop = [], fused_srwm.srwm_loop

    def counting_loop(*args):
        loop_calls.append(args[0].shape[-1])
        return loop(*args)

    monkeypatch.setattr(fused_srwm, "srwm_loop", counting_loop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for head_dim in shapes:
            x, weights = _problem(head_dim, dtype)
            y, _ = srwm(x, *weights, implementation="fused")
            expected, _ = srwm_numpy.srwm(x.astype(np.float64), *[w.astype(np.float64) for w in weights])
            np.testing.assert_allclose(np.asarray(y, np.float64), expected, rtol=1e-2, atol=1e-2)
    return loop_calls, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_head_dim_over_the_shared_memory_of_the_kernels_runs_the_loop_with_one_warning(fake_gpu, monkeypatch):
    queried = _gpu_kernels_in_use(monkeypatch, kernel_limits(shared=65536))
    loop_calls, messages = _run_counting_loop(monkeypatch, (51, 51, 50))  # 64 KB: float32 head_dim up to 50
    assert loop_calls == [51, 51]
    assert len(messages) == 1 and "head_dim 51 (float32)" in messages[0] and "65536 bytes" in messages[0]
    assert queried == [(0, "float32")]


def test_head_dim_over_the_threads_the_kernels_registers_allow_runs_the_loop(fake_gpu, monkeypatch):
    _gpu_kernels_in_use(monkeypatch, kernel_limits(threads=128, shared=232448))
    loop_calls, messages = _run_counting_loop(monkeypatch, (41, 42))  # 3E + 4 = 127 and 130 columns
    assert loop_calls == [42]
    assert len(messages) == 1 and "160 threads" in messages[0] and "can launch 128 threads" in messages[0]


def test_half_precision_is_checked_against_the_float32_kernels(fake_gpu, monkeypatch):
    queried = _gpu_kernels_in_use(monkeypatch, kernel_limits(shared=65536))
    loop_calls, messages = _run_counting_loop(monkeypatch, (50, 51), dtype=np.float16)
    assert loop_calls == [51] and queried == [(0, "float32")]
    assert "head_dim 51 (float32)" in messages[0]


def test_without_gpu_kernels_every_head_dim_takes_the_op(monkeypatch):
    monkeypatch.setattr(fused_srwm, "_visible_gpus", lambda: [FAKE_GPU])
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: False)
    assert fused_srwm._GpuShapeLimit().fits(200, tf.float64)

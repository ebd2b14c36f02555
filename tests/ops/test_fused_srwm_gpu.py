"""GPU decisions of `kerasrwm.ops.fused_srwm`, with a fake GPU (no GPU is needed)."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm.ops import build
from kerasrwm.ops import fused_srwm
from kerasrwm.ops import srwm
from reference import srwm_numpy

FAKE_GPU = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")


@pytest.fixture
def real_module():
    if not fused_srwm.is_available():
        pytest.skip(f"the op library is unavailable: {fused_srwm.unavailable_reason()}")
    return fused_srwm._LIBRARY.get()


@pytest.fixture
def fake_gpu(monkeypatch, real_module):
    """TensorFlow "sees" one T4 (compute capability 7.5); the library is the real one, just loaded."""
    monkeypatch.setattr(fused_srwm, "_visible_gpus", lambda: [FAKE_GPU])
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: {"compute_capability": (7, 5)})
    monkeypatch.setattr(build, "ensure_library", lambda force=False: "libkerasrwm_srwm.so")
    monkeypatch.setattr(tf, "load_op_library", lambda path: real_module)
    return real_module


def _load_with_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        library = fused_srwm._LazyLibrary()
        module = library.get()
        library.get()
    return library, module, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def test_registered_gpu_kernels_are_those_the_build_chose(real_module):
    assert fused_srwm._has_gpu_kernels() == (build.BuildConfig().nvcc is not None)


def test_gpu_without_gpu_kernels_warns_once_and_says_how_to_get_them(fake_gpu, monkeypatch):
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: False)
    _, module, messages = _load_with_warnings()
    assert module is fake_gpu
    assert len(messages) == 1
    assert "CPU kernels only" in messages[0] and "build-ops --force" in messages[0]


def test_gpu_kernels_that_fail_their_first_run_make_the_op_unavailable(fake_gpu, monkeypatch):
    class BrokenModule:
        def keras_rwm_srwm_forward(self, *args, **kwargs):
            raise tf.errors.InternalError(None, None, "SRWM CUDA kernel: no kernel image is available")

    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    monkeypatch.setattr(tf, "load_op_library", lambda path: BrokenModule())
    library, module, messages = _load_with_warnings()
    assert module is None
    assert len(messages) == 1 and "no kernel image is available" in messages[0]
    assert "loop implementation" in messages[0] and "GPU:0" in library.error


def test_gpu_kernels_that_run_their_first_forward_are_used(fake_gpu, monkeypatch):
    # The fake GPU does not exist, so soft placement runs the check's forward on the CPU kernels.
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    _, module, messages = _load_with_warnings()
    assert module is fake_gpu and messages == []


def test_head_dim_over_the_gpu_limit_runs_the_loop_with_one_warning(fake_gpu, monkeypatch):
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: True)
    monkeypatch.setattr(fused_srwm, "_GPU_SHAPES", fused_srwm._GpuShapeLimit())
    loop_calls, loop = [], fused_srwm.srwm_loop

    def counting_loop(*args):
        loop_calls.append(args[0].shape)
        return loop(*args)

    monkeypatch.setattr(fused_srwm, "srwm_loop", counting_loop)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for head_dim in (51, 51, 50):  # a T4 allows float32 head_dim up to 50
            x = rng.normal(size=(1, 2, 1, head_dim)).astype(np.float32)
            weights = [
                rng.normal(scale=0.3, size=(1, 1, head_dim, w)).astype(np.float32)
                for w in (head_dim, head_dim, head_dim, 4)
            ]
            y, _ = srwm(x, *weights, implementation="fused")
            expected, _ = srwm_numpy.srwm(x, *weights)
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-4)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert loop_calls == [(1, 2, 1, 51)] * 2
    assert len(messages) == 1 and "head_dim 51" in messages[0] and "65536" in messages[0]


def test_without_gpu_kernels_every_head_dim_takes_the_op(monkeypatch):
    monkeypatch.setattr(fused_srwm, "_visible_gpus", lambda: [FAKE_GPU])
    monkeypatch.setattr(fused_srwm, "_has_gpu_kernels", lambda: False)
    assert fused_srwm._GpuShapeLimit().fits(200, tf.float64)

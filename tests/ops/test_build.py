"""Build-on-first-use of the op library: cache, stale library, env switch, missing compiler."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from kerasrwm import cli
from kerasrwm.ops import build
from kerasrwm.ops import fused_srwm
from kerasrwm.ops import resolve_implementation
from kerasrwm.ops import srwm

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built_library():
    """The library of the normal cache (built once for the whole test session)."""
    return build.ensure_library()


@pytest.fixture
def private_cache(tmp_path, monkeypatch, built_library):
    """An empty cache whose "compiler" copies the already built library, counting calls."""
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path))
    compiles = []

    def fake_compile(config, output):
        compiles.append(output)
        shutil.copyfile(built_library, output)

    monkeypatch.setattr(build, "_compile", fake_compile)
    return compiles


def test_library_is_built_once_and_then_reused(private_cache):
    first = build.ensure_library()
    second = build.ensure_library()
    assert first == second and build.is_valid(first)
    assert len(private_cache) == 1
    assert first.parent.name.startswith(f"tf{tf.__version__}-")


def test_truncated_library_is_rebuilt(private_cache):
    library = build.ensure_library()
    size = library.stat().st_size
    with open(library, "r+b") as handle:
        handle.truncate(size // 2)
    assert not build.is_valid(library)
    assert build.ensure_library() == library
    assert build.is_valid(library) and library.stat().st_size == size
    assert len(private_cache) == 2


def test_library_without_checksum_is_rebuilt(private_cache):
    library = build.ensure_library()
    library.with_name(library.name + ".sha256").unlink()
    build.ensure_library()
    assert len(private_cache) == 2


def test_changed_sources_get_a_new_cache_folder(tmp_path, monkeypatch):
    sources = tmp_path / "kernels"
    shutil.copytree(build.SOURCE_DIR, sources)
    monkeypatch.setattr(build, "SOURCE_DIR", sources)
    before = build.library_path()
    with open(sources / "srwm_kernels.cc", "a") as handle:
        handle.write("\n// changed\n")
    assert build.library_path() != before


def test_library_that_fails_to_load_is_rebuilt_once(monkeypatch):
    calls = []

    def fake_ensure_library(force=False):
        calls.append(force)
        return Path("/nonexistent/libkerasrwm_srwm.so")

    loads = []

    def fake_load(path):
        loads.append(path)
        if len(loads) == 1:
            raise tf.errors.NotFoundError(None, None, "undefined symbol")
        return "module"

    monkeypatch.setattr(build, "ensure_library", fake_ensure_library)
    monkeypatch.setattr(tf, "load_op_library", fake_load)
    assert fused_srwm._LazyLibrary().get() == "module"
    assert calls == [False, True]


def test_environment_variable_forces_the_loop(monkeypatch):
    monkeypatch.setenv(fused_srwm.DISABLE_ENV, "1")
    assert not fused_srwm.is_available()
    assert fused_srwm.DISABLE_ENV in fused_srwm.unavailable_reason()
    assert resolve_implementation("auto") == "loop"
    with pytest.raises(RuntimeError, match=fused_srwm.DISABLE_ENV):
        resolve_implementation("fused")


@pytest.mark.slow
def test_missing_compiler_warns_once_and_falls_back_to_the_loop(tmp_path):
    """In a fresh process with an empty cache and a compiler that does not exist."""
    script = """
import json, warnings
import numpy as np
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from kerasrwm.ops import resolve_implementation, srwm
    resolved = [resolve_implementation("auto") for _ in range(3)]
    x = np.ones((1, 3, 2, 4), np.float32)
    w = np.zeros((1, 2, 4, 4), np.float32)
    y, _ = srwm(x, w, w, w, np.zeros((1, 2, 4, 4), np.float32), implementation="auto")
messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(json.dumps({"resolved": resolved, "messages": messages, "y_shape": list(y.shape)}))
"""
    environment = {
        **os.environ,
        "CXX": str(tmp_path / "no-such-compiler"),
        build.CACHE_ENV: str(tmp_path / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPOSITORY),
    }
    environment.pop(fused_srwm.DISABLE_ENV, None)
    completed = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["resolved"] == ["loop"] * 3
    assert result["y_shape"] == [1, 3, 2, 4]
    assert len(result["messages"]) == 1
    assert "no-such-compiler" in result["messages"][0] and "loop implementation" in result["messages"][0]


def test_build_ops_command_prints_the_library(built_library, capsys):
    assert cli.main(["build-ops"]) == 0
    out = capsys.readouterr().out
    assert f"library: {built_library}" in out
    assert f"tensorflow: {tf.__version__}" in out and "gpu kernels: " in out


def test_fused_implementation_runs_after_build(built_library):
    x = tf.ones([1, 2, 1, 4])
    w = tf.zeros([1, 1, 4, 4])
    y, _ = srwm(x, w, w, w, w, implementation="fused")
    assert y.shape == (1, 2, 1, 4)


def _fake_toolkit(folder, version):
    """A folder that looks like a CUDA toolkit whose nvcc reports `version`."""
    (folder / "bin").mkdir(parents=True)
    (folder / "lib64").mkdir()
    (folder / "lib64" / "libcudart_static.a").write_bytes(b"!<arch>\n")
    nvcc = folder / "bin" / "nvcc"
    nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools, release {version}, V{version}.1'\n")
    nvcc.chmod(0o755)
    return folder


@pytest.fixture
def tensorflow_cuda_12_5(monkeypatch):
    monkeypatch.setattr(build, "tensorflow_cuda_version", lambda: "12.5.1")
    monkeypatch.delenv("CUDA_PATH", raising=False)


def test_toolkit_of_tensorflows_cuda_major_version_is_chosen(tmp_path, monkeypatch, tensorflow_cuda_12_5):
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(tmp_path / "cuda-13", "13.0")))
    monkeypatch.setenv("CUDA_PATH", str(_fake_toolkit(tmp_path / "cuda-12.2", "12.2")))
    choice = build.find_cuda_toolkit()
    assert choice.toolkit == build.CudaToolkit((tmp_path / "cuda-12.2").resolve(), "12.2")
    assert "12.5.1" in choice.reason


def test_exact_minor_version_is_preferred(tmp_path, monkeypatch, tensorflow_cuda_12_5):
    monkeypatch.setenv("CUDA_HOME", str(_fake_toolkit(tmp_path / "cuda-12.2", "12.2")))
    monkeypatch.setenv("CUDA_PATH", str(_fake_toolkit(tmp_path / "cuda-12.5", "12.5")))
    assert build.find_cuda_toolkit().toolkit.version == "12.5"


def test_other_major_version_only_builds_cpu_kernels_and_says_why(tmp_path, monkeypatch, tensorflow_cuda_12_5):
    monkeypatch.setattr(build, "_toolkit_candidates", lambda: [_fake_toolkit(tmp_path / "cuda-13", "13.0")])
    choice = build.find_cuda_toolkit()
    assert choice.toolkit is None
    assert "nvcc 13.0" in choice.reason and "CUDA 12.x toolkit" in choice.reason
    monkeypatch.setattr(build, "find_cuda_toolkit", lambda: choice)
    config = build.BuildConfig()
    assert config.nvcc is None and all(source.suffix != ".cu" for source in config.sources)
    assert any("gpu kernels: no" in line and "nvcc 13.0" in line for line in build.describe(config))


def test_matching_toolkit_builds_every_architecture(tmp_path, monkeypatch, tensorflow_cuda_12_5):
    toolkit = _fake_toolkit(tmp_path / "cuda-12.5", "12.5")
    monkeypatch.setattr(build, "_toolkit_candidates", lambda: [toolkit])
    config = build.BuildConfig()
    assert config.nvcc == str(toolkit / "bin" / "nvcc")
    assert "-DKERASRWM_WITH_CUDA=1" in config.compile_flags
    flags = build.cuda_gencode_flags()
    for arch in ("75", "80", "86", "89", "90"):
        assert f"-gencode=arch=compute_{arch},code=sm_{arch}" in flags
    assert "-gencode=arch=compute_75,code=compute_75" in flags
    lines = build.describe(config)
    assert any(line.startswith("gpu kernels: yes") and "12.5" in line for line in lines)
    assert "cuda architectures: sm_75, sm_80, sm_86, sm_89, sm_90 + PTX compute_75" in lines


def test_tensorflow_without_cuda_builds_cpu_kernels(monkeypatch):
    monkeypatch.setattr(build, "tensorflow_cuda_version", lambda: None)
    assert build.find_cuda_toolkit() == build.CudaChoice(None, "TensorFlow is not a CUDA build")

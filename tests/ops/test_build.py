"""Build-on-first-use of the op library: cache, stale library, env switch, missing compiler."""

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from kerasrwm import cli
from kerasrwm.ops import build
from kerasrwm.ops import fused_srwm
from kerasrwm.ops import resolve_implementation
from kerasrwm.ops import srwm
from reference import srwm_numpy
from tests.ops.fake_cuda import WRITE_EMPTY_OBJECT
from tests.ops.fake_cuda import nvcc_calls
from tests.ops.fake_cuda import prefix_toolkit
from tests.training import faults

REPOSITORY = Path(__file__).resolve().parents[2]
CXX = shutil.which("g++") or "g++"


@pytest.fixture(scope="module")
def built_library():
    """The library of the normal cache (built once for the whole test session)."""
    return build.ensure_library()


@pytest.fixture
def private_cache(tmp_path, monkeypatch, built_library):
    """An empty cache whose "compiler" runs the real nvcc commands of a GPU build (fake nvcc scripts
    in these tests) and the real link of their objects, then copies the already built library."""
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "cache"))
    compiles = []

    def fake_compile(config, output):
        compiles.append(config)
        if config.nvcc:
            objects = [str(output.parent / "srwm_cuda.cu.o")]
            build._run_all(
                [[config.nvcc, "-c", str(build.SOURCE_DIR / "srwm_cuda.cu"), "-o", objects[0], *config.nvcc_flags]],
                "compiling the SRWM op library",
            )
            build._run_all([[CXX, "-shared", "-o", str(output), *objects]], "linking the SRWM op library")
        shutil.copyfile(built_library.path, output)

    monkeypatch.setattr(build, "_compile", fake_compile)
    return compiles


def test_library_is_built_once_and_then_reused(private_cache):
    first = build.ensure_library()
    second = build.ensure_library()
    assert first == second and build.is_valid(first.path)
    assert len(private_cache) == 1
    assert first.path.parent.name.startswith(f"tf{tf.__version__}-")


def test_truncated_library_is_rebuilt(private_cache):
    library = build.ensure_library().path
    size = library.stat().st_size
    with open(library, "r+b") as handle:
        handle.truncate(size // 2)
    assert not build.is_valid(library)
    assert build.ensure_library().path == library
    assert build.is_valid(library) and library.stat().st_size == size
    assert len(private_cache) == 2


def test_library_without_checksum_is_rebuilt(private_cache):
    library = build.ensure_library().path
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
        return build.Library(Path("/nonexistent/libkerasrwm_srwm.so"), gpu_kernels=False)

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


def _unwritable_cache(kind, tmp_path, monkeypatch):
    """A cache path that is a file, or a folder whose writes fail as on a read-only disk (we run as root, whom
    permissions do not stop: the failure is injected)."""
    if kind == "a file":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
        return cache, "cannot be a folder (it is a file); choose a folder"
    cache = tmp_path / "read-only"
    cache.mkdir()
    faults.refuse_files_in(lambda f: monkeypatch.setattr(tempfile, "mkstemp", f), cache)
    return cache, f"cannot be written ({os.strerror(errno.EROFS)}); choose a writable folder"


@pytest.mark.parametrize("kind", ["a file", "read-only"])
def test_a_cache_that_cannot_be_written_is_named_and_auto_runs_the_loop(kind, tmp_path, monkeypatch, capsys):
    cache, reason = _unwritable_cache(kind, tmp_path, monkeypatch)
    monkeypatch.setenv(build.CACHE_ENV, str(cache))
    monkeypatch.delenv(fused_srwm.DISABLE_ENV, raising=False)
    monkeypatch.setattr(build, "_compile", lambda config, output: pytest.fail("compiled into an unwritable cache"))
    expected = f"the op library cannot be built: {build.CACHE_ENV} {str(cache)!r} {reason}."
    with pytest.raises(build.BuildError) as refused:
        build.ensure_library()
    assert str(refused.value) == expected
    monkeypatch.setattr(fused_srwm, "_LIBRARY", fused_srwm._LazyLibrary())
    with pytest.warns(RuntimeWarning) as warned:
        assert [resolve_implementation("auto") for _ in range(3)] == ["loop"] * 3
    assert [str(warning.message) for warning in warned] == [
        f"kerasrwm: the fused SRWM op is unavailable, the loop implementation is used instead. Reason: {expected}"
    ]
    with pytest.raises(RuntimeError, match=f"implementation='fused' was requested .*{build.CACHE_ENV} "):
        resolve_implementation("fused")
    assert cli.main(["build-ops"]) == 2
    assert capsys.readouterr().err == f"kerasrwm: error: {expected}\n"


def test_build_ops_command_prints_the_library(built_library, capsys):
    assert cli.main(["build-ops"]) == 0
    out = capsys.readouterr().out
    assert f"library: {built_library.path}" in out
    assert f"tensorflow: {tf.__version__}" in out and "gpu kernels: " in out


def test_fused_implementation_runs_after_build(built_library):
    x = tf.ones([1, 2, 1, 4])
    w = tf.zeros([1, 1, 4, 4])
    y, _ = srwm(x, w, w, w, w, implementation="fused")
    assert y.shape == (1, 2, 1, 4)


@pytest.fixture
def tensorflow_cuda_12_5(monkeypatch):
    monkeypatch.setattr(build, "tensorflow_cuda_version", lambda: "12.5.1")


def _toolkit_at_cuda_home(root, monkeypatch, compile_script=WRITE_EMPTY_OBJECT):
    nvcc = prefix_toolkit(root / "cuda-12.5", "12.5", compile_script=compile_script)
    monkeypatch.setenv("CUDA_HOME", str(root / "cuda-12.5"))
    return nvcc


def test_matching_toolkit_builds_every_architecture_with_ptx_of_the_newest(
    isolated_discovery, monkeypatch, tensorflow_cuda_12_5
):
    nvcc = _toolkit_at_cuda_home(isolated_discovery, monkeypatch)
    config = build.BuildConfig()
    assert config.nvcc == str(nvcc)
    assert "-DKERASRWM_WITH_CUDA=1" in config.compile_flags
    assert [source.name for source in config.sources if source.suffix == ".cu"] == ["srwm_cuda.cu"]
    for arch in ("70", "75", "80", "86", "89", "90"):
        assert f"-gencode=arch=compute_{arch},code=sm_{arch}" in config.nvcc_flags
    assert "-gencode=arch=compute_90,code=compute_90" in config.nvcc_flags
    assert "-ccbin" not in config.nvcc_flags
    assert [flag for flag in config.link_flags if "cudart" in flag] == ["-lcudart_static"]
    lines = build.describe(build.Library(Path("lib.so"), gpu_kernels=True), config)
    assert any(line.startswith("gpu kernels: yes") and "12.5" in line for line in lines)
    assert "cuda architectures: sm_70, sm_75, sm_80, sm_86, sm_89, sm_90 + PTX compute_90" in lines
    assert f"cuda toolkit: nvcc 12.5 at {nvcc} ($CUDA_HOME): chosen" in lines


@pytest.mark.parametrize("variables", [{"NVCC_CCBIN": "/opt/gcc-12/bin/g++"}, {"CUDAHOSTCXX": "/opt/gcc-12/bin/g++"}])
def test_host_compiler_from_the_environment(isolated_discovery, monkeypatch, tensorflow_cuda_12_5, variables):
    _toolkit_at_cuda_home(isolated_discovery, monkeypatch)
    before = build.BuildConfig().key
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    config = build.BuildConfig()
    index = config.nvcc_flags.index("-ccbin")
    assert config.nvcc_flags[index + 1] == "/opt/gcc-12/bin/g++"
    assert config.key != before


def test_architectures_the_toolkit_cannot_compile_are_left_out(isolated_discovery, monkeypatch, tensorflow_cuda_12_5):
    """A CUDA 13 nvcc lists no compute_70: sm_70 is dropped, not a failed build."""
    prefix_toolkit(isolated_discovery / "cuda-12.5", "12.5", architectures=("75", "80", "86", "89", "90", "100"))
    monkeypatch.setenv("CUDA_HOME", str(isolated_discovery / "cuda-12.5"))
    config = build.BuildConfig()
    assert config.architectures == ("75", "80", "86", "89", "90")
    assert not any("compute_70" in flag for flag in config.nvcc_flags)
    assert "-gencode=arch=compute_90,code=compute_90" in config.nvcc_flags


def test_nvcc_ccbin_wins_over_cudahostcxx(monkeypatch):
    monkeypatch.setenv("NVCC_CCBIN", "g++-12")
    monkeypatch.setenv("CUDAHOSTCXX", "g++-13")
    assert build.host_compiler_flags() == ["-ccbin", "g++-12"]


def test_other_major_version_only_builds_cpu_kernels_and_says_why(
    isolated_discovery, monkeypatch, tensorflow_cuda_12_5, private_cache
):
    prefix_toolkit(isolated_discovery / "cuda-13", "13.0")
    monkeypatch.setenv("CUDA_HOME", str(isolated_discovery / "cuda-13"))
    library = build.ensure_library()
    assert not library.gpu_kernels and not library.gpu_failed
    assert [config.nvcc for config in private_cache] == [None]
    assert all(source.suffix != ".cu" for source in private_cache[0].sources)
    lines = build.describe(library, build.BuildConfig())
    assert any(line.startswith("gpu kernels: no") and "nvcc 13.0" in line for line in lines)
    assert any("rejected: CUDA 13.0, TensorFlow needs a CUDA 12.x toolkit" in line for line in lines)


# How a fake nvcc fails: the compile itself (an unsupported host compiler), or an object that the
# link cannot use.
NVCC_FAILURES = {
    "compile": (
        "echo 'crt/host_config.h:143:2: error: #error -- unsupported GNU version! gcc versions later than 13 "
        "are not supported!' >&2; exit 1",
        "compiling the SRWM op library failed",
        "unsupported gnu version",
    ),
    "link": (
        'while [ "$1" != "-o" ]; do shift; done; echo "not an object" > "$2"; exit 0',
        "linking the SRWM op library failed",
        "ld returned 1 exit status",
    ),
}


@pytest.mark.parametrize("failure", sorted(NVCC_FAILURES))
def test_failing_cuda_build_gives_the_cpu_kernels_records_why_and_force_retries(
    isolated_discovery, monkeypatch, tensorflow_cuda_12_5, private_cache, failure
):
    script, stage, detail = NVCC_FAILURES[failure]
    nvcc = _toolkit_at_cuda_home(isolated_discovery, monkeypatch, compile_script=script)
    library = build.ensure_library()
    assert not library.gpu_kernels and library.gpu_failed
    assert stage in library.cpu_only_reason and detail in library.cpu_only_reason.lower()
    assert f"nvcc 12.5 at {nvcc}" in library.cpu_only_reason
    assert "kerasrwm build-ops --force" in library.cpu_only_reason and "CUDA_HOME" in library.cpu_only_reason
    assert [config.nvcc is not None for config in private_cache] == [True, False]
    assert build.is_valid(library.path)
    compiles_of_cuda = len([line for line in nvcc_calls(nvcc) if "-c" in line.split()])

    again = build.ensure_library()  # the failure is recorded: no second try at the CUDA build
    assert again == library and len(private_cache) == 2
    assert len([line for line in nvcc_calls(nvcc) if "-c" in line.split()]) == compiles_of_cuda

    build.ensure_library(force=True)  # tries the GPU build again, and rebuilds the CPU one
    assert [config.nvcc is not None for config in private_cache] == [True, False, True, False]


def test_recorded_gpu_failure_gives_the_cpu_kernels_until_force(
    isolated_discovery, monkeypatch, tensorflow_cuda_12_5, private_cache
):
    _toolkit_at_cuda_home(isolated_discovery, monkeypatch)
    first = build.ensure_library()
    assert first.gpu_kernels, first.cpu_only_reason
    build.record_gpu_failure(build.BuildConfig(), "the first run on the GPU failed: no kernel image is available")
    library = build.ensure_library()
    assert not library.gpu_kernels and library.gpu_failed and "no kernel image" in library.cpu_only_reason
    assert build.ensure_library(force=True).gpu_kernels


def test_cpu_compile_error_is_not_hidden_by_the_fallback(isolated_discovery, monkeypatch, tensorflow_cuda_12_5):
    """A failure of the C++ part fails the CPU-only build too: BuildError, and no GPU failure recorded."""
    _toolkit_at_cuda_home(isolated_discovery, monkeypatch)
    monkeypatch.setenv(build.CACHE_ENV, str(isolated_discovery / "cache"))

    def failing_compile(config, output):
        raise build.BuildError("compiling the SRWM op library failed:\nsrwm_kernels.cc:1: error: broken")

    monkeypatch.setattr(build, "_compile", failing_compile)
    with pytest.raises(build.BuildError, match="srwm_kernels.cc:1: error"):
        build.ensure_library()
    assert build._recorded_gpu_failure(build.BuildConfig()) is None


def test_tensorflow_without_cuda_builds_cpu_kernels(monkeypatch):
    monkeypatch.setattr(build, "tensorflow_cuda_version", lambda: None)
    assert build.find_cuda_toolkit() == build.cuda_toolkit.CudaChoice(None, "TensorFlow is not a CUDA build")


@pytest.mark.slow
def test_broken_nvcc_leaves_a_working_cpu_kernel_library_with_one_warning(tmp_path):
    """A fresh process, an empty cache, a CUDA 12.5 toolkit whose nvcc fails every compile: the real
    CPU kernels are built and used (`"auto"` is the fused op, its output the reference's), one warning."""
    nvcc = prefix_toolkit(
        tmp_path / "cuda-12.5", "12.5", compile_script="echo 'nvcc error : Unsupported gpu architecture' >&2; exit 1"
    )
    script = """
import json, warnings
import numpy as np
from tests.training import faults
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    from kerasrwm.ops import build, resolve_implementation, srwm
    from kerasrwm.ops import fused_srwm
    resolved = [resolve_implementation("auto") for _ in range(3)]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3, 4))
    weights = [rng.normal(scale=0.5, size=(2, 3, 4, n)) for n in (4, 4, 4, 4)]
    y, _ = srwm(x, *weights, implementation="auto")
messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
print(json.dumps({"resolved": resolved, "messages": messages, "y": y.numpy().tolist(),
                  "x": x.tolist(), "weights": [w.tolist() for w in weights],
                  "gpu_kernels": fused_srwm._has_gpu_kernels()}))
"""
    environment = {
        **os.environ,
        "CUDA_HOME": str(tmp_path / "cuda-12.5"),
        build.CACHE_ENV: str(tmp_path / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPOSITORY),
    }
    environment.pop(fused_srwm.DISABLE_ENV, None)
    completed = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, timeout=900
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["resolved"] == ["fused"] * 3 and result["gpu_kernels"] is False
    expected, _ = srwm_numpy.srwm(np.array(result["x"]), *map(np.array, result["weights"]))
    np.testing.assert_allclose(np.array(result["y"]), expected, rtol=1e-10, atol=1e-12)
    assert len(result["messages"]) == 1, result["messages"]
    message = result["messages"][0]
    assert "no GPU kernels" in message and "Unsupported gpu architecture" in message
    assert f"nvcc 12.5 at {nvcc}" in message and "kerasrwm build-ops --force" in message
    assert any("-c" in line.split() for line in nvcc_calls(nvcc))

"""Fake CUDA toolkits for the build tests: folders laid out as real ones, with an `nvcc` script."""

import platform
from pathlib import Path

import pytest

from kerasrwm.ops import cuda_toolkit
from tests.fake_tools import fake_tool

# What a working fake nvcc does with a compile: writes an empty file as the object (which links).
WRITE_EMPTY_OBJECT = 'while [ $# -gt 0 ] && [ "$1" != "-o" ]; do shift; done; : > "$2"'
ALL_ARCHITECTURES = ("70", "75", "80", "86", "89", "90", "100")


def write_nvcc(path, version, compile_script=WRITE_EMPTY_OBJECT, architectures=ALL_ARCHITECTURES):
    """An executable `nvcc` at `path` that reports `version` (None: fails) and `architectures`
    (`--list-gpu-arch`), and runs `compile_script` otherwise.

    Every call appends its arguments to `calls.log` beside it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    log = path.parent / "calls.log"
    version_line = f"echo 'Cuda compilation tools, release {version}, V{version}.1'" if version else "exit 1"
    return fake_tool(
        path.parent,
        path.name,
        f'echo "$@" >> "{log}"\n'
        'if [ "$1" = "--version" ]; then\n'
        f"  {version_line}\n"
        "  exit 0\n"
        "fi\n"
        'if [ "$1" = "--list-gpu-arch" ]; then\n'
        f"  echo '{' '.join('compute_' + a for a in architectures)}'\n"
        "  exit 0\n"
        "fi\n"
        f"{compile_script}",
    )


def nvcc_calls(nvcc):
    """The argument lines of every call of a fake `nvcc` so far."""
    log = Path(nvcc).parent / "calls.log"
    return log.read_text().splitlines() if log.is_file() else []


def prefix_toolkit(
    prefix,
    version,
    library_dir="lib64",
    runtime="libcudart_static.a",
    compile_script=WRITE_EMPTY_OBJECT,
    architectures=ALL_ARCHITECTURES,
):
    """A toolkit under `prefix`: bin/nvcc and the runtime in `prefix/library_dir` (None: no runtime)."""
    nvcc = write_nvcc(Path(prefix) / "bin" / "nvcc", version, compile_script, architectures)
    if runtime:
        (Path(prefix) / library_dir).mkdir(parents=True, exist_ok=True)
        (Path(prefix) / library_dir / runtime).write_bytes(b"!<arch>\n")
    return nvcc


def pip_toolkit(site, version, major=12):
    """The pip wheels nvidia-cuda-nvcc-cuN and nvidia-cuda-runtime-cuN installed into `site`."""
    nvcc = write_nvcc(Path(site) / "nvidia" / "cuda_nvcc" / "bin" / "nvcc", version)
    runtime = Path(site) / "nvidia" / "cuda_runtime"
    (runtime / "lib").mkdir(parents=True)
    (runtime / "include").mkdir()
    (runtime / "lib" / f"libcudart.so.{major}").write_bytes(b"\x7fELF")
    return nvcc


def multiarch():
    return f"{platform.machine()}-linux-gnu"


@pytest.fixture
def isolated_discovery(tmp_path, monkeypatch):
    """Toolkit discovery that sees only what a test creates: no environment, nvcc on PATH, /usr or site-packages."""
    for name in ("CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX", "NVCC_CCBIN", "CUDAHOSTCXX"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(cuda_toolkit, "nvcc_on_path", lambda: None)
    monkeypatch.setattr(cuda_toolkit, "LOCAL_ROOT", empty)
    monkeypatch.setattr(cuda_toolkit, "SYSTEM_PREFIX", empty)
    monkeypatch.setattr(cuda_toolkit, "site_dirs", lambda: [])
    return tmp_path

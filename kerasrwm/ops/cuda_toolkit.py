"""Finds the CUDA toolkits of a machine and chooses the one the op library's GPU kernels are built with.

A toolkit is an `nvcc` that reports its version plus a CUDA runtime library to link: the static
`libcudart_static.a`, or the shared `libcudart.so.<major>` (all the pip wheels ship). Where it is
looked for, in order (`candidates`):

- `$CUDA_HOME`, `$CUDA_PATH`, `$CONDA_PREFIX` and the folder above the `nvcc` on PATH, each as a
  prefix `P` with `P/bin/nvcc` and the runtime in `P/lib64` (NVIDIA's installers), `P/lib`
  (conda), `P/lib/<machine>-linux-gnu` (Debian's `nvidia-cuda-toolkit`) or
  `P/targets/*/lib` (conda's CUDA 12 packages);
- `/usr/local/cuda` and `/usr/local/cuda-*` (newest first) and `/usr` (Debian), the same way;
- the pip wheels of every folder on `sys.path`: `nvidia/cuda_nvcc/bin/nvcc` (`nvidia-cuda-nvcc-cu12`)
  with the runtime and its headers from `nvidia/cuda_runtime` (`nvidia-cuda-runtime-cu12`), both of
  which `pip install tensorflow[and-cuda]` installs.

Only a toolkit of TensorFlow's CUDA major version is used (kernels of another major version would
need a driver that TensorFlow's own CUDA runtime does not ask for), the closest minor version
first. Every candidate is kept with the reason it was rejected, for `kerasrwm build-ops`.
"""

import functools
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

# The system prefixes looked at after the environment (module constants so tests can move them).
LOCAL_ROOT = Path("/usr/local")
SYSTEM_PREFIX = Path("/usr")
STATIC_RUNTIME = "libcudart_static.a"


class CudaToolkit(NamedTuple):
    """A usable toolkit: `nvcc`, its version, the runtime library to link and extra header folders."""

    nvcc: Path
    version: str  # "major.minor" as `nvcc --version` reports it
    runtime: Path  # libcudart_static.a or libcudart.so.<major>
    include_dirs: tuple = ()  # headers nvcc does not find by itself (the pip runtime wheel's)

    @property
    def link_flags(self):
        """g++ flags that link the runtime (a shared one by its versioned name, found again at run time)."""
        folder = self.runtime.parent
        if self.runtime.name == STATIC_RUNTIME:
            return [f"-L{folder}", "-lcudart_static", "-ldl", "-lrt", "-lpthread"]
        return [f"-L{folder}", f"-l:{self.runtime.name}", f"-Wl,-rpath,{folder}"]


class Candidate(NamedTuple):
    """One place a toolkit was looked for: what was found there and why it is not used (None: usable)."""

    origin: str  # "$CUDA_HOME", "pip wheel", ...
    nvcc: Path
    version: "str | None"
    toolkit: "CudaToolkit | None"
    problem: "str | None"

    def describe(self):
        return f"nvcc {self.version or '(no version)'} at {self.nvcc} ({self.origin})"


class CudaChoice(NamedTuple):
    """The toolkit the GPU kernels are built with (None: CPU kernels only), why, and every candidate."""

    toolkit: "CudaToolkit | None"
    reason: str
    candidates: tuple = ()  # (Candidate, verdict) pairs


def major_minor(version):
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int(minor)


@functools.lru_cache(maxsize=None)
def nvcc_version(nvcc):
    """`major.minor` of an `nvcc`, or None if it does not run or prints no release."""
    try:
        output = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+\.\d+)", output)
    return match.group(1) if match else None


def nvcc_on_path():
    return shutil.which("nvcc")


def site_dirs():
    """Folders that may hold pip-installed packages: those on `sys.path`."""
    return [Path(entry) for entry in sys.path if entry and Path(entry).is_dir()]


def _runtime_in(folders, version):
    """The first CUDA runtime library in `folders` (static preferred), or None."""
    names = [STATIC_RUNTIME]
    if version:
        names.append(f"libcudart.so.{major_minor(version)[0]}")
    for name in names:
        for folder in folders:
            if (folder / name).is_file():
                return folder / name
    return None


def _candidate(origin, nvcc, library_dirs, include_dirs=()):
    version = nvcc_version(nvcc)
    if version is None:
        return Candidate(origin, nvcc, None, None, "nvcc does not run or prints no release version")
    runtime = _runtime_in(library_dirs, version)
    if runtime is None:
        major = major_minor(version)[0]
        folders = ", ".join(str(folder) for folder in library_dirs)
        problem = f"no CUDA runtime ({STATIC_RUNTIME} or libcudart.so.{major}) in {folders}"
        return Candidate(origin, nvcc, version, None, problem)
    return Candidate(origin, nvcc, version, CudaToolkit(nvcc, version, runtime, tuple(include_dirs)), None)


def _prefix_candidate(origin, prefix):
    """A toolkit laid out under `prefix` (bin/nvcc), or None if there is no nvcc there."""
    nvcc = prefix / "bin" / "nvcc"
    if not nvcc.is_file():
        return None
    library_dirs = [
        prefix / "lib64",
        prefix / "lib",
        prefix / "lib" / f"{platform.machine()}-linux-gnu",
        *sorted((prefix / "targets").glob("*/lib")),
    ]
    return _candidate(origin, nvcc, library_dirs)


def _pip_candidate(site):
    nvcc = site / "nvidia" / "cuda_nvcc" / "bin" / "nvcc"
    if not nvcc.is_file():
        return None
    runtime = site / "nvidia" / "cuda_runtime"
    headers = [folder for folder in (runtime / "include", nvcc.parent.parent / "include") if folder.is_dir()]
    return _candidate("pip wheel nvidia-cuda-nvcc", nvcc, [runtime / "lib"], headers)


def candidates():
    """Every toolkit found, in the order of preference of the module docstring, each nvcc once."""
    prefixes = [(f"${name}", os.environ.get(name)) for name in ("CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX")]
    nvcc = nvcc_on_path()
    if nvcc:  # where the link points, then where it is (Debian's /usr/bin/nvcc, lib in /usr/lib)
        prefixes.append(("nvcc on PATH", str(Path(nvcc).resolve().parent.parent)))
        prefixes.append(("nvcc on PATH", str(Path(nvcc).parent.parent)))
    locals_ = [LOCAL_ROOT / "cuda", *sorted(LOCAL_ROOT.glob("cuda-*"), reverse=True)]
    prefixes += [(str(path), str(path)) for path in locals_]
    prefixes.append((f"{SYSTEM_PREFIX} (Debian's nvidia-cuda-toolkit)", str(SYSTEM_PREFIX)))
    found = [_prefix_candidate(origin, Path(prefix)) for origin, prefix in prefixes if prefix]
    found += [_pip_candidate(site) for site in site_dirs()]
    unique = []
    for candidate in filter(None, found):
        same = [c for c in unique if c.nvcc.resolve() == candidate.nvcc.resolve()]
        if not any(c.problem is None or c.problem == candidate.problem for c in same):
            unique.append(candidate)
    return unique


def choose(tensorflow_cuda_version):
    """Chooses the toolkit of TensorFlow's CUDA major version, preferring its exact minor version.

    Args:
        tensorflow_cuda_version: the CUDA version TensorFlow was built with ("12.5.1"), or None.

    Returns:
        A `CudaChoice`: the toolkit, or None with the reason only CPU kernels can be built.
    """
    if tensorflow_cuda_version is None:
        return CudaChoice(None, "TensorFlow is not a CUDA build")
    wanted = major_minor(tensorflow_cuda_version)
    found = candidates()
    usable = [c for c in found if c.problem is None and major_minor(c.version)[0] == wanted[0]]
    best = min(usable, key=lambda c: abs(major_minor(c.version)[1] - wanted[1]), default=None)
    verdicts = []
    for candidate in found:
        if candidate is best:
            verdict = "chosen"
        elif candidate.problem is not None:
            verdict = f"rejected: {candidate.problem}"
        elif candidate in usable:
            verdict = f"not chosen: CUDA {best.version} is closer to TensorFlow's {tensorflow_cuda_version}"
        else:
            verdict = f"rejected: CUDA {candidate.version}, TensorFlow needs a CUDA {wanted[0]}.x toolkit"
        verdicts.append((candidate, verdict))
    if best is not None:
        reason = f"nvcc {best.version} at {best.nvcc} for TensorFlow's CUDA {tensorflow_cuda_version}"
        return CudaChoice(best.toolkit, reason, tuple(verdicts))
    seen = "; ".join(f"{c.describe()}, {verdict}" for c, verdict in verdicts) or "none"
    major = wanted[0]
    reason = (
        f"TensorFlow is a CUDA {tensorflow_cuda_version} build and no usable CUDA {major}.x toolkit was "
        f"found (toolkits found: {seen}). Install a CUDA {major}.x toolkit (or `pip install "
        f"nvidia-cuda-nvcc-cu{major} nvidia-cuda-runtime-cu{major}`), set CUDA_HOME to it if it is "
        f"elsewhere, and run `kerasrwm build-ops --force`"
    )
    return CudaChoice(None, reason, tuple(verdicts))

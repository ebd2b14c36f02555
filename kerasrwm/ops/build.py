"""Builds the fused SRWM op library on first use, into a per-user cache.

The library is compiled against the installed TensorFlow (flags from `tf.sysconfig`) into
`$KERASRWM_OPS_CACHE` (default `~/.cache/kerasrwm/ops`), in a folder named after the TensorFlow
version and a hash of the sources and of the build configuration, so a build happens once per
configuration and never on import. A file lock keeps concurrent processes from building at the
same time; a SHA-256 written next to the library detects a truncated or replaced file, which is
then rebuilt. A cache that cannot be written (read-only, or a file) is a `BuildError` naming
`KERASRWM_OPS_CACHE`, raised before any compile; `implementation="auto"` then runs the loop, as for
any failed build (`fused_srwm`). The C++ compiler is `$CXX` (default `g++`).

The CUDA kernels are added when TensorFlow is a CUDA build and a CUDA toolkit of TensorFlow's CUDA
major version is found (`cuda_toolkit`). The GPU code holds a cubin for every architecture in
`CUDA_ARCHITECTURES` that its nvcc supports plus PTX of the newest, for later GPUs to compile; nvcc's host compiler is
`$NVCC_CCBIN` or `$CUDAHOSTCXX` when set (`-ccbin`). Any failure of the CUDA part (nvcc, the link
with the CUDA runtime, and, reported by `fused_srwm`, loading the library or its first run on the
GPU) is recorded in the GPU configuration's cache folder (`GPU_FAILURE_FILE`) and the library is
built with CPU kernels only: a GPU problem never costs the CPU kernels. `kerasrwm build-ops --force`
forgets the failure and tries the GPU build again.

The library is built for the CPU it is built on (`-march=native`); the cache key includes the
CPU's instruction-set flags, so a home folder shared by different machines holds one library
per CPU kind.

`kerasrwm build-ops` prebuilds it and prints where it is, what it holds and every CUDA toolkit it
looked at, with the reason each was not used.
"""

import contextlib
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import tensorflow as tf

from kerasrwm.ops import cuda_toolkit
from kerasrwm.training.atomic_files import WriteError
from kerasrwm.training.atomic_files import check_writable
from kerasrwm.training.atomic_files import write_atomically

LIBRARY_NAME = "libkerasrwm_srwm.so"
CACHE_ENV = "KERASRWM_OPS_CACHE"
GPU_FAILURE_FILE = "gpu-failure.txt"
HOST_COMPILER_ENVS = ("NVCC_CCBIN", "CUDAHOSTCXX")
SOURCE_DIR = Path(__file__).resolve().parent / "kernels"
CPU_SOURCES = ("srwm_ops.cc", "srwm_kernels.cc")
GPU_HOST_SOURCES = ("srwm_kernels_gpu.cc",)
CUDA_SOURCES = ("srwm_cuda.cu",)
# Volta (V100, the oldest GPU TensorFlow 2.21 supports) to Hopper: a cubin each, and PTX of the
# newest for any later GPU to compile.
CUDA_ARCHITECTURES = ("70", "75", "80", "86", "89", "90")
OPTIMIZATION_FLAGS = ("-O3", "-march=native", "-ffp-contract=fast")


class BuildError(RuntimeError):
    """The op library cannot be built: no compiler, missing headers or a compile error."""


class Library(NamedTuple):
    """A built op library and what it holds.

    Attributes:
        path: the shared library.
        gpu_kernels: whether it has GPU kernels.
        cpu_only_reason: why it has none (None when it has them).
        gpu_failed: a matching CUDA toolkit was found but the CUDA part failed (`cpu_only_reason` says how).
    """

    path: Path
    gpu_kernels: bool
    cpu_only_reason: "str | None" = None
    gpu_failed: bool = False


def tensorflow_cuda_version():
    """The CUDA version TensorFlow was built with ("12.5.1"), or None for a build without CUDA."""
    info = tf.sysconfig.get_build_info()
    return info.get("cuda_version") if info.get("is_cuda_build") else None


def find_cuda_toolkit():
    """The toolkit of TensorFlow's CUDA major version, as a `cuda_toolkit.CudaChoice`."""
    return cuda_toolkit.choose(tensorflow_cuda_version())


@functools.lru_cache(maxsize=None)
def cuda_architectures(nvcc):
    """The `CUDA_ARCHITECTURES` that `nvcc` can compile (`--list-gpu-arch`; CUDA 13 dropped sm_70), or all
    of them if it cannot say."""
    try:
        completed = subprocess.run([str(nvcc), "--list-gpu-arch"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return CUDA_ARCHITECTURES
    listed = set(re.findall(r"compute_(\d+)", completed.stdout)) if completed.returncode == 0 else set()
    return tuple(a for a in CUDA_ARCHITECTURES if a in listed) or CUDA_ARCHITECTURES


def cuda_gencode_flags(architectures=CUDA_ARCHITECTURES):
    """nvcc flags for a cubin per architecture and PTX of the newest."""
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in architectures]
    newest = architectures[-1]
    return flags + [f"-gencode=arch=compute_{newest},code=compute_{newest}"]


def host_compiler_flags():
    """`-ccbin` from `$NVCC_CCBIN` or `$CUDAHOSTCXX` (the first set), else none: nvcc's default."""
    for name in HOST_COMPILER_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return ["-ccbin", value]
    return []


def _cpu_fingerprint():
    """The CPU's instruction-set flags (what `-march=native` depends on)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    return platform.processor() or platform.machine()


class BuildConfig:
    """Compilers and flags of one build; `key` names its cache folder.

    Args:
        cuda: the `cuda_toolkit.CudaChoice` to build with; None finds the toolkit. A choice without
            a toolkit builds the CPU kernels only.
    """

    def __init__(self, cuda=None):
        self.cxx = os.environ.get("CXX", "g++")
        self.cuda = cuda or find_cuda_toolkit()
        toolkit = self.cuda.toolkit
        self.nvcc = str(toolkit.nvcc) if toolkit else None
        self.compile_flags = [
            *tf.sysconfig.get_compile_flags(),
            *OPTIMIZATION_FLAGS,
            "-fPIC",
            "-Wno-deprecated-declarations",
        ]
        self.link_flags = list(tf.sysconfig.get_link_flags())
        self.nvcc_flags = []
        self.architectures = cuda_architectures(toolkit.nvcc) if toolkit else ()
        if toolkit:
            self.compile_flags += ["-DKERASRWM_WITH_CUDA=1", *(f"-I{d}" for d in toolkit.include_dirs)]
            self.link_flags += toolkit.link_flags
            self.nvcc_flags = [
                "-O3",
                "-std=c++17",
                "-Xcompiler",
                "-fPIC",
                *host_compiler_flags(),
                *(f"-I{d}" for d in toolkit.include_dirs),
                *cuda_gencode_flags(self.architectures),
            ]

    @property
    def sources(self):
        names = CPU_SOURCES + (GPU_HOST_SOURCES + CUDA_SOURCES if self.nvcc else ())
        return [SOURCE_DIR / name for name in names]

    @property
    def key(self):
        digest = hashlib.sha256()
        for path in sorted(SOURCE_DIR.iterdir()):
            if path.suffix in (".h", ".cc", ".cu"):
                digest.update(path.name.encode() + path.read_bytes())
        gpu_parts = (self.nvcc, self.cuda.toolkit.version, *self.nvcc_flags) if self.nvcc else ()
        for part in (self.cxx, *gpu_parts, *self.compile_flags, *self.link_flags, _cpu_fingerprint()):
            digest.update(part.encode() + b"\0")
        return f"tf{tf.__version__}-{digest.hexdigest()[:16]}"


def cache_root():
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kerasrwm" / "ops"


def library_path(config=None):
    """Where the library of this configuration lives (whether or not it is built yet)."""
    config = config or BuildConfig()
    return cache_root() / config.key / LIBRARY_NAME


def _checksum_path(library):
    return library.with_name(library.name + ".sha256")


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def is_valid(library):
    """True if `library` exists and matches the checksum recorded when it was built."""
    checksum = _checksum_path(library)
    if not (library.is_file() and checksum.is_file()):
        return False
    return checksum.read_text().strip() == _sha256(library)


@contextlib.contextmanager
def _exclusive_lock(path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_all(commands, what):
    """Runs the commands in parallel; raises `BuildError` naming `what` with the output of a failed one."""
    processes = []
    for command in commands:
        try:
            processes.append(
                (command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            )
        except OSError as error:
            raise BuildError(f"{what} failed: cannot run {command[0]!r}: {error}") from error
    failures = []
    for command, process in processes:
        output, _ = process.communicate()
        if process.returncode != 0:
            errors = [line for line in output.splitlines() if "error" in line.lower()] or output.splitlines()
            failures.append(f"$ {' '.join(command)}\n" + "\n".join(errors[-20:]))
    if failures:
        raise BuildError(f"{what} failed:\n" + "\n".join(failures))


def _compile(config, output):
    """Compiles the sources of `config` into the shared library `output`."""
    if shutil.which(config.cxx) is None:
        raise BuildError(f"compiler {config.cxx!r} not found (set CXX, or install g++).")
    work = output.parent
    commands, objects = [], []
    for source in config.sources:
        obj = work / (source.name + ".o")
        objects.append(str(obj))
        if source.suffix == ".cu":
            commands.append([config.nvcc, "-c", str(source), "-o", str(obj), *config.nvcc_flags])
        else:
            commands.append([config.cxx, "-c", str(source), "-o", str(obj), *config.compile_flags])
    _run_all(commands, "compiling the SRWM op library")
    _run_all([[config.cxx, "-shared", "-o", str(output), *objects, *config.link_flags]], "linking the SRWM op library")


def _build(config, force):
    """The path of a valid library of `config`, built first if needed (or if `force`)."""
    library = library_path(config)
    if not force and is_valid(library):
        return library
    try:
        check_writable(cache_root(), CACHE_ENV)
    except WriteError as error:
        raise BuildError(f"the op library cannot be built: {error}") from None
    with _exclusive_lock(library.parent.with_name(library.parent.name + ".lock")):
        if not force and is_valid(library):
            return library
        library.parent.mkdir(parents=True, exist_ok=True)
        if force:
            reason = "rebuild asked for"
        elif library.exists():
            reason = "the cached copy is damaged"
        else:
            reason = "first use with this compiler and TensorFlow"
        kernels = "CPU and GPU kernels" if config.nvcc else "CPU kernels"
        print(
            f"kerasrwm: building the fused SRWM op library, {kernels} ({reason}; about a minute) in "
            f"{library.parent} ...",
            file=sys.stderr,
            flush=True,
        )
        with tempfile.TemporaryDirectory(dir=library.parent, prefix="build-") as work:
            built = Path(work) / LIBRARY_NAME
            _compile(config, built)
            checksum = _sha256(built)
            os.replace(built, library)
        write_atomically(str(_checksum_path(library)), lambda path: Path(path).write_text(checksum + "\n"))
    return library


def _gpu_failure_path(config):
    return cache_root() / config.key / GPU_FAILURE_FILE


def record_gpu_failure(config, what):
    """Records that the CUDA part of `config`'s library failed (`what`: the stage and the error).

    Later builds of `config` then give a CPU-kernel library at once, until `ensure_library(force=True)`.
    """
    path = _gpu_failure_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(str(path), lambda temporary: Path(temporary).write_text(what))


def _recorded_gpu_failure(config):
    with contextlib.suppress(OSError):
        return _gpu_failure_path(config).read_text()
    return None


def _cpu_only_reason(config, failure):
    """What failed in the CUDA part of `config` and how to fix it."""
    toolkit = config.cuda.toolkit
    host = " ".join(host_compiler_flags()) or "nvcc's default host compiler"
    return (
        f"the GPU kernels built with nvcc {toolkit.version} at {toolkit.nvcc} ({host}) failed: {failure.strip()}\n"
        f"Fix the toolkit (TensorFlow needs CUDA {tensorflow_cuda_version()}; CUDA_HOME chooses the "
        f"toolkit, NVCC_CCBIN or CUDAHOSTCXX a host compiler nvcc supports), then run "
        f"`kerasrwm build-ops --force` to try the GPU build again"
    )


def ensure_library(force=False):
    """Returns a valid library, building it first if needed (or if `force`).

    A matching CUDA toolkit gives a library with GPU kernels; if its build fails, or a failure of
    it was recorded (`record_gpu_failure`), a library with CPU kernels only. `force` rebuilds and
    forgets a recorded failure.

    Returns:
        A `Library`.

    Raises:
        BuildError: not even the CPU kernels can be built here, or the cache cannot be written.
    """
    config = BuildConfig()
    if config.nvcc is None:
        return Library(_build(config, force), gpu_kernels=False, cpu_only_reason=config.cuda.reason)
    if force:
        with contextlib.suppress(FileNotFoundError):
            _gpu_failure_path(config).unlink()
    failure = _recorded_gpu_failure(config)
    if failure is None:
        try:
            return Library(_build(config, force), gpu_kernels=True)
        except BuildError as error:
            failure = str(error)
            cpu_library = _cpu_only_library(config, failure, force)
            record_gpu_failure(config, failure)
            return cpu_library
    return _cpu_only_library(config, failure, force)


def _cpu_only_library(config, failure, force):
    reason = _cpu_only_reason(config, failure)
    cpu_config = BuildConfig(cuda_toolkit.CudaChoice(None, reason, config.cuda.candidates))
    return Library(_build(cpu_config, force), gpu_kernels=False, cpu_only_reason=reason, gpu_failed=True)


def add_arguments(parser):
    parser.add_argument("--force", action="store_true", help="rebuild, and try the GPU kernels again after a failure")


def describe(library, config):
    """Lines saying what `library` holds, TensorFlow's CUDA, and every CUDA toolkit `config` looked at."""
    tf_cuda = tensorflow_cuda_version()
    lines = [f"tensorflow: {tf.__version__} ({f'CUDA {tf_cuda} build' if tf_cuda else 'no CUDA'})"]
    if library.gpu_kernels:
        architectures = config.architectures
        lines.append(f"gpu kernels: yes, {config.cuda.reason}")
        lines.append(
            f"cuda architectures: {', '.join('sm_' + a for a in architectures)} + PTX compute_{architectures[-1]}"
        )
    else:
        lines.append(f"gpu kernels: no (CPU kernels only): {library.cpu_only_reason}")
    for candidate, verdict in config.cuda.candidates:
        lines.append(f"cuda toolkit: {candidate.describe()}: {verdict}")
    return lines


def run(args):
    """`kerasrwm build-ops`: prebuilds the op library and reports where it is, what it holds and why.

    Raises:
        ValueError: the library cannot be built, with the reason (printed by the command line).
    """
    try:
        library = ensure_library(force=args.force)
    except BuildError as error:
        raise ValueError(str(error)) from None
    print(f"library: {library.path}")
    for line in describe(library, BuildConfig()):
        print(line)

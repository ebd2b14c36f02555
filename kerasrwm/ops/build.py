"""Builds the fused SRWM op library on first use, into a per-user cache.

The library is compiled against the installed TensorFlow (flags from `tf.sysconfig`) into
`$KERASRWM_OPS_CACHE` (default `~/.cache/kerasrwm/ops`), in a folder named after the TensorFlow
version and a hash of the sources and of the build configuration, so a build happens once per
configuration and never on import. A file lock keeps concurrent processes from building at the
same time; a SHA-256 written next to the library detects a truncated or replaced file, which is
then rebuilt. The CUDA kernels are added when TensorFlow is a CUDA build and a CUDA toolkit of
TensorFlow's CUDA major version is found (see `find_cuda_toolkit`): kernels of another major
version would need a driver that TensorFlow's own CUDA runtime does not ask for, so without a
matching toolkit only the CPU kernels are built and `kerasrwm build-ops` says why. The GPU code
holds cubins for every architecture in `CUDA_ARCHITECTURES` plus PTX for the lowest. The C++
compiler is `$CXX` (default `g++`).

The library is built for the CPU it is built on (`-march=native`); the cache key includes the
CPU's instruction-set flags, so a home folder shared by different machines holds one library
per CPU kind.

`kerasrwm build-ops` prebuilds it and prints where it is.
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

LIBRARY_NAME = "libkerasrwm_srwm.so"
CACHE_ENV = "KERASRWM_OPS_CACHE"
SOURCE_DIR = Path(__file__).resolve().parent / "kernels"
CPU_SOURCES = ("srwm_ops.cc", "srwm_kernels.cc")
GPU_HOST_SOURCES = ("srwm_kernels_gpu.cc",)
CUDA_SOURCES = ("srwm_cuda.cu",)
# Turing (T4) to Hopper: a cubin each, and PTX of the lowest for any later GPU to compile.
CUDA_ARCHITECTURES = ("75", "80", "86", "89", "90")
OPTIMIZATION_FLAGS = ("-O3", "-march=native", "-ffp-contract=fast")


class BuildError(RuntimeError):
    """The op library cannot be built: no compiler, missing headers or a compile error."""


class CudaToolkit(NamedTuple):
    """A CUDA toolkit with `nvcc` and the static CUDA runtime."""

    home: Path
    version: str  # "major.minor" as `nvcc --version` reports it


class CudaChoice(NamedTuple):
    """The toolkit the GPU kernels are built with (None: CPU kernels only) and why."""

    toolkit: "CudaToolkit | None"
    reason: str


def tensorflow_cuda_version():
    """The CUDA version TensorFlow was built with ("12.5.1"), or None for a build without CUDA."""
    info = tf.sysconfig.get_build_info()
    return info.get("cuda_version") if info.get("is_cuda_build") else None


def _major_minor(version):
    major, minor = (version.split(".") + ["0"])[:2]
    return int(major), int(minor)


@functools.lru_cache(maxsize=None)
def _toolkit_version(nvcc):
    """`major.minor` of an `nvcc`, or None if it does not run."""
    try:
        output = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"release (\d+\.\d+)", output)
    return match.group(1) if match else None


def _toolkit_candidates():
    """Toolkit folders to look at, in order: $CUDA_HOME, $CUDA_PATH, the `nvcc` on PATH, /usr/local/cuda*."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc_on_path = shutil.which("nvcc")
    if nvcc_on_path:
        candidates.append(str(Path(nvcc_on_path).resolve().parent.parent))
    candidates += ["/usr/local/cuda", *sorted(map(str, Path("/usr/local").glob("cuda-*")), reverse=True)]
    seen, toolkits = set(), []
    for candidate in filter(None, candidates):
        home = Path(candidate).resolve()
        if home in seen or not (home / "bin" / "nvcc").is_file():
            continue
        seen.add(home)
        if (home / "lib64" / "libcudart_static.a").is_file():
            toolkits.append(home)
    return toolkits


def find_cuda_toolkit():
    """Chooses the toolkit of TensorFlow's CUDA major version, preferring its exact minor version.

    Returns:
        A `CudaChoice`: the toolkit, or None with the reason only CPU kernels can be built.
    """
    tf_version = tensorflow_cuda_version()
    if tf_version is None:
        return CudaChoice(None, "TensorFlow is not a CUDA build")
    wanted = _major_minor(tf_version)
    found = [
        CudaToolkit(home, version)
        for home in _toolkit_candidates()
        if (version := _toolkit_version(home / "bin" / "nvcc"))
    ]
    matching = [t for t in found if _major_minor(t.version)[0] == wanted[0]]
    if matching:
        best = min(matching, key=lambda t: abs(_major_minor(t.version)[1] - wanted[1]))
        return CudaChoice(best, f"nvcc {best.version} in {best.home} for TensorFlow's CUDA {tf_version}")
    seen = ", ".join(f"nvcc {t.version} in {t.home}" for t in found) or "no CUDA toolkit with nvcc"
    major = wanted[0]
    return CudaChoice(
        None,
        (
            f"TensorFlow is a CUDA {tf_version} build and the toolkits found are: {seen}; kernels of "
            f"another CUDA major version cannot run through TensorFlow's CUDA {major} runtime. Install a "
            f"CUDA {major}.x toolkit, set CUDA_HOME to it and run `kerasrwm build-ops --force`"
        ),
    )


def cuda_gencode_flags():
    """nvcc flags for a cubin per `CUDA_ARCHITECTURES` and PTX of the lowest."""
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in CUDA_ARCHITECTURES]
    return flags + [f"-gencode=arch=compute_{CUDA_ARCHITECTURES[0]},code=compute_{CUDA_ARCHITECTURES[0]}"]


def _cpu_fingerprint():
    """The CPU's instruction-set flags (what `-march=native` depends on)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    return platform.processor() or platform.machine()


class BuildConfig:
    """Compilers and flags of one build; `key` names its cache folder."""

    def __init__(self):
        self.cxx = os.environ.get("CXX", "g++")
        self.cuda = find_cuda_toolkit()
        cuda_home = self.cuda.toolkit.home if self.cuda.toolkit else None
        self.nvcc = str(cuda_home / "bin" / "nvcc") if cuda_home else None
        self.compile_flags = [
            *tf.sysconfig.get_compile_flags(),
            *OPTIMIZATION_FLAGS,
            "-fPIC",
            "-Wno-deprecated-declarations",
        ]
        self.link_flags = list(tf.sysconfig.get_link_flags())
        if cuda_home:
            self.compile_flags += ["-DKERASRWM_WITH_CUDA=1"]
            self.link_flags += [f"-L{cuda_home / 'lib64'}", "-lcudart_static", "-ldl", "-lrt", "-lpthread"]

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
        gpu_parts = (self.nvcc, self.cuda.toolkit.version, *cuda_gencode_flags()) if self.nvcc else ()
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


def _run_all(commands):
    """Runs the commands in parallel; raises `BuildError` with the output of a failed one."""
    processes = [
        (command, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for command in commands
    ]
    failures = []
    for command, process in processes:
        output, _ = process.communicate()
        if process.returncode != 0:
            errors = [line for line in output.splitlines() if "error" in line.lower()] or output.splitlines()
            failures.append(f"$ {' '.join(command)}\n" + "\n".join(errors[-20:]))
    if failures:
        raise BuildError("compiling the SRWM op library failed:\n" + "\n".join(failures))


def _compile(config, output):
    """Compiles the sources of `config` into the shared library `output`."""
    for tool in filter(None, (config.cxx, config.nvcc)):
        if shutil.which(tool) is None:
            raise BuildError(f"compiler {tool!r} not found (set CXX, or install g++).")
    work = output.parent
    commands, objects = [], []
    for source in config.sources:
        obj = work / (source.name + ".o")
        objects.append(str(obj))
        if source.suffix == ".cu":
            commands.append(
                [
                    config.nvcc,
                    "-c",
                    str(source),
                    "-o",
                    str(obj),
                    "-O3",
                    "-std=c++17",
                    "-Xcompiler",
                    "-fPIC",
                    *cuda_gencode_flags(),
                ]
            )
        else:
            commands.append([config.cxx, "-c", str(source), "-o", str(obj), *config.compile_flags])
    _run_all(commands)
    _run_all([[config.cxx, "-shared", "-o", str(output), *objects, *config.link_flags]])


def ensure_library(force=False):
    """Returns the path of a valid library, building it first if needed (or if `force`).

    Raises:
        BuildError: the library cannot be built here.
    """
    config = BuildConfig()
    library = library_path(config)
    if not force and is_valid(library):
        return library
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
        print(
            f"kerasrwm: building the fused SRWM op library ({reason}; about a minute) in {library.parent} ...",
            file=sys.stderr,
            flush=True,
        )
        with tempfile.TemporaryDirectory(dir=library.parent, prefix="build-") as work:
            built = Path(work) / LIBRARY_NAME
            _compile(config, built)
            checksum = _sha256(built)
            os.replace(built, library)
        _checksum_path(library).write_text(checksum + "\n")
    return library


def add_arguments(parser):
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid library is cached")


def describe(config):
    """Lines saying what the library of `config` holds: TensorFlow's CUDA and the GPU kernels."""
    tf_cuda = tensorflow_cuda_version()
    lines = [f"tensorflow: {tf.__version__} ({f'CUDA {tf_cuda} build' if tf_cuda else 'no CUDA'})"]
    if config.nvcc:
        lower = CUDA_ARCHITECTURES[0]
        lines.append(f"gpu kernels: yes, {config.cuda.reason}")
        lines.append(f"cuda architectures: {', '.join('sm_' + a for a in CUDA_ARCHITECTURES)} + PTX compute_{lower}")
    else:
        lines.append(f"gpu kernels: no (CPU kernels only): {config.cuda.reason}")
    return lines


def run(args):
    """`kerasrwm build-ops`: prebuilds the op library and reports where it is and what it holds."""
    config = BuildConfig()
    library = ensure_library(force=args.force)
    print(f"library: {library}")
    for line in describe(config):
        print(line)

"""TensorFlow settings that kerasrwm chooses before TensorFlow starts: oneDNN on every x86-64 CPU,
and a quiet TensorFlow C++ log under the `kerasrwm` command.

TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512-class features; on
AVX2-only CPUs (most cloud machines) it uses its generic kernels, with which a Conv-4 training
step is 4-5x slower (`kerasrwm bench train`, oneDNN held to AVX2: 4.8x; AVX-512: 3.4x). The switch is read once, when TensorFlow loads, so kerasrwm sets it at
import when TensorFlow is not loaded yet and the user has not chosen; otherwise it tells the
user once. `TF_ENABLE_ONEDNN_OPTS=0` keeps oneDNN off.
"""

import contextlib
import os
import platform
import sys
import tempfile
import warnings

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
CLI_LOG_LEVEL = "3"  # errors too: on a CPU machine TensorFlow logs "failed call to cuInit" as one
X86_MACHINES = ("x86_64", "amd64", "i386", "i686")


def _is_x86():
    return platform.machine().lower() in X86_MACHINES


def enable_onednn():
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` if TensorFlow is not loaded, the CPU is x86 and it is unset.

    Returns:
        True if this call set the variable.
    """
    if "tensorflow" in sys.modules or not _is_x86() or ONEDNN_VARIABLE in os.environ:
        return False
    os.environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled():
    """Whether the loaded TensorFlow runs its oneDNN kernels."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def hint_if_onednn_off():
    """Warns once if oneDNN is off on an x86 CPU although the user did not turn it off.

    That happens when TensorFlow was imported before kerasrwm on a CPU without AVX-512.
    """
    if not _is_x86() or os.environ.get(ONEDNN_VARIABLE) == "0" or onednn_enabled():
        return
    warnings.warn(
        "TensorFlow's oneDNN kernels are off on this CPU because TensorFlow was imported before "
        "kerasrwm; a Conv-4 training step is then about 4-5x slower (4.8x measured with oneDNN held to AVX2). "
        "Restart Python and import kerasrwm first, or set "
        f"{ONEDNN_VARIABLE}=1 before importing TensorFlow ({ONEDNN_VARIABLE}=0 silences this).",
        RuntimeWarning,
        stacklevel=3,
    )


def requested_keras_backend():
    """The Keras backend in use, or the one `KERAS_BACKEND` asks for if Keras is not loaded yet."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def require_tensorflow_backend(backend):
    """Raises `ImportError` unless Keras runs on TensorFlow, which the package's ops and training need."""
    if backend != "tensorflow":
        raise ImportError(
            f"kerasrwm needs Keras's TensorFlow backend; Keras is set to use {backend!r}. Set the "
            "environment variable KERAS_BACKEND=tensorflow before importing keras (or kerasrwm)."
        )


# Interpreter options that take the next argument as their value.
_OPTIONS_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")


def module_run_as_main(interpreter_arguments):
    """The MODULE of `python [options] -m MODULE ...`, or None for a script, `-c` or the prompt.

    Args:
        interpreter_arguments: the interpreter's own command line, `sys.orig_argv`.
    """
    arguments = list(interpreter_arguments[1:])
    while arguments:
        argument = arguments.pop(0)
        if argument == "-m":
            return arguments[0] if arguments else None
        if argument.startswith("-m"):
            return argument[2:]
        if argument in _OPTIONS_WITH_VALUE:
            arguments = arguments[1:]
        elif argument == "-c" or not argument.startswith("-"):
            return None
    return None


def running_cli():
    """Whether this process is the `kerasrwm` console script or `python -m kerasrwm[.MODULE]`.

    While `python -m` imports the packages above the module it runs, `sys.argv[0]` is `"-m"`
    whatever the module, so the module is read from the interpreter's own arguments.
    """
    module = module_run_as_main(getattr(sys, "orig_argv", []))
    return os.path.basename(sys.argv[0]) == "kerasrwm" or (module or "").partition(".")[0] == "kerasrwm"


def quiet_tensorflow_for_cli():
    """Sets `TF_CPP_MIN_LOG_LEVEL=3` under the `kerasrwm` command, before TensorFlow loads.

    `kerasrwm.cli` is inside the package, so this runs from the package's `__init__`, the only
    place that comes before TensorFlow's import. A user's own `TF_CPP_MIN_LOG_LEVEL` (e.g. 0,
    to see everything) is kept. TensorFlow still prints the few lines it logs before its
    logging is set up.

    Returns:
        True if this call set the variable.
    """
    if "tensorflow" in sys.modules or not running_cli() or LOG_LEVEL_VARIABLE in os.environ:
        return False
    os.environ[LOG_LEVEL_VARIABLE] = CLI_LOG_LEVEL
    return True


def show_tensorflow_logs():
    """Undoes `quiet_tensorflow_for_cli` (the CLI's `--verbose`), if TensorFlow is not loaded yet."""
    if os.environ.get(LOG_LEVEL_VARIABLE) == CLI_LOG_LEVEL and "tensorflow" not in sys.modules:
        del os.environ[LOG_LEVEL_VARIABLE]


@contextlib.contextmanager
def native_stderr_silenced():
    """Sends what is written to file descriptor 2 while the block runs to a temporary file.

    TensorFlow's C++ runtime prints a few lines while it loads, before its logging is set up and
    so regardless of `TF_CPP_MIN_LOG_LEVEL` (the oneDNN notice, "Could not find cuda drivers").
    The CLI loads TensorFlow inside this block. What was written is replayed to stderr if the
    block raises, so a failing import still explains itself.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)

"""TensorFlow settings that kerasrwm chooses before TensorFlow starts: oneDNN on every x86-64 CPU.

TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512-class features; on
AVX2-only CPUs (most cloud machines) it uses its generic kernels, with which a Conv-4 training
step is 3-4x slower here. The switch is read once, when TensorFlow loads, so kerasrwm sets it at
import when TensorFlow is not loaded yet and the user has not chosen; otherwise it tells the
user once. `TF_ENABLE_ONEDNN_OPTS=0` keeps oneDNN off.
"""

import os
import platform
import sys
import warnings

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
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
        "kerasrwm; Conv-4 training is then about 3x slower. Import kerasrwm first, or set "
        f"{ONEDNN_VARIABLE}=1 before importing TensorFlow ({ONEDNN_VARIABLE}=0 silences this).",
        RuntimeWarning,
        stacklevel=3,
    )

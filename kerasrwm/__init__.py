"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3.

The sub-packages and `SRWM`, `SRWMBlock` and `BootstrappedLearner` load on first access, so that
`import kerasrwm` (and `kerasrwm --help`) does not load TensorFlow. Accessing one of them, or
importing a sub-package, registers the Keras classes that `keras.models.load_model` needs.
"""

import importlib
import sys

from kerasrwm import runtime

if "tensorflow" in sys.modules:
    runtime.hint_if_onednn_off()
else:  # both read by TensorFlow when it loads, so before any kerasrwm module loads it
    runtime.enable_onednn()
    runtime.quiet_tensorflow_for_cli()

SUBPACKAGES = ("data", "layers", "models", "ops", "training")
EXPORTS = {"SRWM": "kerasrwm.layers", "SRWMBlock": "kerasrwm.layers", "BootstrappedLearner": "kerasrwm.models"}
__all__ = [*SUBPACKAGES, *EXPORTS]


def __getattr__(name):
    if name in SUBPACKAGES:
        return importlib.import_module(f"kerasrwm.{name}")
    if name in EXPORTS:
        return getattr(importlib.import_module(EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasrwm' has no attribute {name!r}")

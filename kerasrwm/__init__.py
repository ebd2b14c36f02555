"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3.

`import kerasrwm` registers the package's Keras classes, so that `keras.models.load_model` finds
them, and loads TensorFlow. The `kerasrwm` command loads the sub-packages only on first access
(`kerasrwm --help` does not load TensorFlow); `data` and `training` always load that way.
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
if not runtime.running_cli():
    for _subpackage in ("layers", "models"):  # every registered Keras class lives in these two
        importlib.import_module(f"kerasrwm.{_subpackage}")
EXPORTS = {"SRWM": "kerasrwm.layers", "SRWMBlock": "kerasrwm.layers", "BootstrappedLearner": "kerasrwm.models"}
__all__ = [*SUBPACKAGES, *EXPORTS]


def __getattr__(name):
    if name in SUBPACKAGES:
        return importlib.import_module(f"kerasrwm.{name}")
    if name in EXPORTS:
        return getattr(importlib.import_module(EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasrwm' has no attribute {name!r}")

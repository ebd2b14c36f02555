"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3.

`import kerasrwm` loads TensorFlow (without its C++ start-up lines) and registers every Keras
class a saved learner refers to (layers, backbones, learners, the Noam schedule), so that
`keras.models.load_model` finds them. The `kerasrwm` command loads the sub-packages only on
first access (`kerasrwm --help` does not load TensorFlow); `data` and `training` always load that way.
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
REGISTERING_MODULES = ("kerasrwm.layers", "kerasrwm.models", "kerasrwm.training.schedules")
"""The modules that register the package's Keras classes."""
if not runtime.running_cli():
    runtime.require_tensorflow_backend(runtime.requested_keras_backend())  # before Keras fails on it
    with runtime.native_stderr_silenced():
        import keras
    runtime.require_tensorflow_backend(keras.backend.backend())
    for _module in REGISTERING_MODULES:
        importlib.import_module(_module)
EXPORTS = {"SRWM": "kerasrwm.layers", "SRWMBlock": "kerasrwm.layers", "BootstrappedLearner": "kerasrwm.models"}
__all__ = [*SUBPACKAGES, *EXPORTS]


def __getattr__(name):
    if name in SUBPACKAGES:
        return importlib.import_module(f"kerasrwm.{name}")
    if name in EXPORTS:
        return getattr(importlib.import_module(EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasrwm' has no attribute {name!r}")

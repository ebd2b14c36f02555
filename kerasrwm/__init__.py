"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3."""

from kerasrwm import runtime

runtime.enable_onednn()  # these two before anything below loads TensorFlow
runtime.quiet_tensorflow_for_cli()

from kerasrwm import layers  # noqa: E402
from kerasrwm import models  # noqa: E402
from kerasrwm import ops  # noqa: E402
from kerasrwm.layers import SRWM  # noqa: E402
from kerasrwm.layers import SRWMBlock  # noqa: E402
from kerasrwm.models import BootstrappedLearner  # noqa: E402

runtime.hint_if_onednn_off()

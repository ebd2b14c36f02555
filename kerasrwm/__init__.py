"""kerasrwm: self-referential weight matrices and bootstrapped few-shot learning for Keras 3."""

from kerasrwm import layers
from kerasrwm import models
from kerasrwm import ops
from kerasrwm.layers import SRWM
from kerasrwm.layers import SRWMBlock
from kerasrwm.models import BootstrappedLearner

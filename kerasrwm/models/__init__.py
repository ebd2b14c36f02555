"""Few-shot models: backbones, the SRWM sequence learner and the bootstrapped learner."""

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.bootstrapped_learner import BootstrappedLearner
from kerasrwm.models.sequence_learner import SequenceLearner

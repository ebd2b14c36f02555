"""Few-shot models: backbones, the sequence learner, the bootstrapped and the delayed-label learners."""

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.bootstrapped_learner import BootstrappedLearner
from kerasrwm.models.delayed_label_learner import DelayedLabelLearner
from kerasrwm.models.sequence_learner import SequenceLearner

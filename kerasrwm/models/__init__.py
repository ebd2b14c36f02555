"""Few-shot models: backbones, the sequence learner, the bootstrapped and the delayed-label learners."""

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.k_test_sweep import format_settings_table
from kerasrwm.models.k_test_sweep import format_sweep_table
from kerasrwm.models.k_test_sweep import k_test_sweep
from kerasrwm.models.k_test_sweep import summarize_over_seeds
from kerasrwm.models.bootstrapped_learner import BootstrappedLearner
from kerasrwm.models.sequence_learner import SequenceLearner
from kerasrwm.models.delayed_label_learner import DelayedLabelLearner

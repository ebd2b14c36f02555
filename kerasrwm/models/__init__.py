"""Few-shot models: backbones, the SRWM sequence learner and the bootstrapped learner."""

from kerasrwm.models import bootstrap_loss
from kerasrwm.models.k_test_sweep import format_settings_table
from kerasrwm.models.k_test_sweep import format_sweep_table
from kerasrwm.models.k_test_sweep import k_test_sweep
from kerasrwm.models.k_test_sweep import summarize_over_seeds
from kerasrwm.models.bootstrapped_learner import BootstrappedLearner
from kerasrwm.models.sequence_learner import SequenceLearner

"""Training recipe of the reference (the Noam schedule, the Adam settings), K_test evaluation and export."""

from kerasrwm.training.export import export_learner
from kerasrwm.training.k_test_sweep import format_settings_table
from kerasrwm.training.k_test_sweep import format_sweep_table
from kerasrwm.training.k_test_sweep import k_test_sweep
from kerasrwm.training.k_test_sweep import summarize_over_seeds
from kerasrwm.training.k_test_sweep_callback import KTestSweepCallback
from kerasrwm.training.optimizers import reference_adam
from kerasrwm.training.schedules import NoamSchedule

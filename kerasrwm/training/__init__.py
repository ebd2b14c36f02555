"""Training recipe of the reference: the Noam schedule and the Adam settings."""

from kerasrwm.training.optimizers import reference_adam
from kerasrwm.training.schedules import NoamSchedule
from kerasrwm.training.k_test_sweep_callback import KTestSweepCallback
from kerasrwm.training.export import export_adapt_and_predict
from kerasrwm.training.export import export_predict_sequence

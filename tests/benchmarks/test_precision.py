"""`kerasrwm bench precision`: float32 gradient error of the fused op against float64."""

import numpy as np
import pytest

from kerasrwm.benchmarks.precision import GRADIENT_NAMES
from kerasrwm.benchmarks.precision import float32_gradient_errors
from kerasrwm.cli import main


@pytest.mark.requires_fused
def test_errors_are_rounding_sized_and_not_zero():
    errors = float32_gradient_errors(batch=1, heads=2, head_dim=8, length=40)
    assert set(errors) == set(GRADIENT_NAMES)
    values = np.array(list(errors.values()))
    # float32 carries ~6e-8 relative rounding per operation: the errors are small but never exact.
    assert np.all(values > 1e-9) and np.all(values < 1e-4), errors


@pytest.mark.parametrize("lengths", ["0", ","])
def test_bad_lengths_name_the_argument(lengths, capsys):
    assert main(["bench", "precision", "--lengths", lengths]) == 2
    assert "`lengths`" in capsys.readouterr().err

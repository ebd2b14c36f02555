"""`kerasrwm.validation`: the shared argument checks."""

import numpy as np
import pytest

from kerasrwm.validation import check_choice


@pytest.mark.parametrize("value", ["kl", np.str_("ce")])
def test_check_choice_takes_a_choice_and_its_numpy_string(value):
    assert check_choice("distill", value, ("kl", "ce")) == value


@pytest.mark.parametrize("value", ["mse", ["kl"], np.array(["kl"]), 5, None])
def test_check_choice_refuses_anything_else_by_name(value):
    with pytest.raises(ValueError, match=r"`distill` must be one of \('kl', 'ce'\); received distill="):
        check_choice("distill", value, ("kl", "ce"))

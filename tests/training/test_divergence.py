"""`check_finite_weights`: a model holding NaN or infinite weights is refused, naming the variable."""

import keras
import numpy as np
import pytest

from kerasrwm.training.divergence import check_finite_weights


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_variable_and_the_file(bad):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")], name="net")
    check_finite_weights(model, "run/best.keras")
    bias = model.get_layer("head").bias
    bias.assign(np.array([0.0, bad], "float32"))
    with pytest.raises(
        ValueError,
        match=r"^run/best.keras holds non-finite weights \(NaN or Inf\) in 'net/head/bias': the run diverged.$",
    ):
        check_finite_weights(model, "run/best.keras")

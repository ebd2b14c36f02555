"""Initialisers matching the reference implementation's PyTorch defaults."""

import keras


def torch_linear_initializer():
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for `Linear` weights."""
    return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")

"""NumPy layer normalisation over the last axis (Keras `LayerNormalization` with affine parameters)."""

import numpy as np


def layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + epsilon) * gamma + beta

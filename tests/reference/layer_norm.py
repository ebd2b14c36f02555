"""LayerNorm over the last axis in NumPy: `(h - mean) / sqrt(variance + epsilon) * gamma + beta`."""

import numpy as np


def layer_norm(h, gamma, beta, epsilon):
    mean = h.mean(-1, keepdims=True)
    variance = h.var(-1, keepdims=True)
    return (h - mean) / np.sqrt(variance + epsilon) * gamma + beta

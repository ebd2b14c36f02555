"""Random SRWM problems and losses shared by the op tests."""

import numpy as np
import tensorflow as tf


def random_problem(batch, length, heads, head_dim, seed=0, dtype=np.float64):
    """Random inputs and random (not layer-initialised) initial weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, heads, head_dim))
    weights = [rng.normal(scale=0.6, size=(batch, heads, head_dim, head_dim)) for _ in range(3)]
    weights.append(rng.normal(scale=0.6, size=(batch, heads, head_dim, 4)))
    return x.astype(dtype), [w.astype(dtype) for w in weights]


def loss_coefficients(x, weights, seed=7):
    """Random weightings so that the loss depends on every output and every final weight."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=x.shape), [rng.normal(size=w.shape) for w in weights]


def loss_and_gradients(function, x, weights, y_coefficients, final_coefficients):
    """Loss over every output and every final weight, and its gradient w.r.t. all inputs."""
    variables = [tf.constant(a) for a in [x, *weights]]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        y, finals = function(*variables)
        loss = tf.reduce_sum(y * y_coefficients) + tf.add_n(
            [tf.reduce_sum(f * c) for f, c in zip(finals, final_coefficients)]
        )
    return y, finals, [g.numpy() for g in tape.gradient(loss, variables)]

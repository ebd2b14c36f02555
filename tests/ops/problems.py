"""Random SRWM problems and losses shared by the op tests."""

import numpy as np
import tensorflow as tf

from reference import problems as reference_problems


def random_problem(batch, length, heads, head_dim, seed=0, dtype=np.float64):
    """Random inputs and random (not layer-initialised) initial weights."""
    x, weights, _, _ = reference_problems.random_problem(batch, length, heads, head_dim, np.random.default_rng(seed))
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

"""The DeltaNet recurrence (delta-rule fast weights) as a `tf.while_loop`: XLA-compilable.

Schlag, Irie, Schmidhuber, "Linear Transformers Are Secretly Fast Weight Programmers", ICML 2021.
Row-vector convention: a fast matrix `W` is stored `[key_dim, value_dim]` and read as `k W`.
"""

import tensorflow as tf


def delta_net_loop(queries, keys, values, rates, fast_weights):
    """Runs the delta rule over time, one independent fast matrix per head.

    At every step t, per head: `v_old = k_t W`, `W <- W + outer(k_t, beta_t (v_t - v_old))`,
    and the output is read with the matrix *after* that write, `o_t = q_t W`.

    Args:
        queries: `[batch, length, heads, head_dim]` (feature-mapped) queries q.
        keys: `[batch, length, heads, head_dim]` (feature-mapped) keys k.
        values: `[batch, length, heads, value_dim]` values v.
        rates: `[batch, length, heads, 1]` learning rates beta.
        fast_weights: `[batch, heads, head_dim, value_dim]` fast matrices before step 1.

    Returns:
        `(outputs, fast_weights)`: outputs `[batch, length, heads, value_dim]` and the fast
        matrices after the last step. Differentiable with respect to every argument.
    """
    length = tf.shape(queries)[1]

    def time_major(tensor):
        return tf.TensorArray(tensor.dtype, size=length).unstack(tf.transpose(tensor, [1, 0, 2, 3]))

    steps = [time_major(tensor) for tensor in (queries, keys, values, rates)]
    step_shape = tf.TensorShape([values.shape[0], values.shape[2], values.shape[3]])

    def step(t, weights, outputs):
        q_t, k_t, v_t, beta_t = (inputs.read(t) for inputs in steps)
        stored = tf.einsum("bhe,bhem->bhm", k_t, weights)
        weights = weights + k_t[..., :, None] * (beta_t * (v_t - stored))[..., None, :]
        return t + 1, weights, outputs.write(t, tf.einsum("bhe,bhem->bhm", q_t, weights))

    _, fast_weights, outputs = tf.while_loop(
        lambda t, *_: t < length,
        step,
        (tf.constant(0), fast_weights, tf.TensorArray(values.dtype, size=length, element_shape=step_shape)),
        maximum_iterations=length,
    )
    return tf.transpose(outputs.stack(), [1, 0, 2, 3]), fast_weights

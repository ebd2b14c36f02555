"""The SRWM recurrence as a `tf.while_loop`: portable, differentiable, XLA-compilable.

The four per-head matrices are concatenated along their output axis into one fast-weight
matrix `[batch, heads, head_dim, 3 * head_dim + 4]` (columns: y, q, k, b), so each step is two
batched vector-matrix products and one rank-1 update.
"""

import tensorflow as tf


def _column_selector(head_dim, dtype):
    """`[4, 3 * head_dim + 4]` 0/1 matrix that spreads the 4 learning rates over their columns."""
    sizes = [head_dim, head_dim, head_dim, 4]
    rows = [
        tf.concat([tf.zeros([sum(sizes[:i])]), tf.ones([size]), tf.zeros([sum(sizes[i + 1 :])])], 0)
        for i, size in enumerate(sizes)
    ]
    return tf.cast(tf.stack(rows), dtype)


def srwm_loop(x, w_y, w_q, w_k, w_b):
    """Runs the recurrence with `tf.while_loop` over time.

    Args:
        x: `[batch, length, heads, head_dim]` inputs (already validated).
        w_y, w_q, w_k: `[batch, heads, head_dim, head_dim]` initial weights.
        w_b: `[batch, heads, head_dim, 4]` initial learning-rate weights.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))`: outputs `[batch, length, heads, head_dim]` and the final
        weights, updated at every step including the last.
    """
    head_dim = x.shape[-1]
    weights = tf.concat([w_y, w_q, w_k, w_b], axis=-1)
    selector = _column_selector(head_dim, x.dtype)
    inputs = tf.TensorArray(x.dtype, size=tf.shape(x)[1]).unstack(tf.transpose(x, [1, 0, 2, 3]))
    length = tf.shape(x)[1]
    step_shape = tf.TensorShape([x.shape[0], x.shape[2], head_dim])

    def step(t, weights, outputs):
        x_t = inputs.read(t)
        reads = tf.einsum("bhe,bhem->bhm", x_t, weights)
        y_t, q_logits, k_logits, b_logits = tf.split(reads, [head_dim, head_dim, head_dim, 4], -1)
        q_t = tf.nn.softmax(q_logits)
        k_t = tf.nn.softmax(k_logits)
        rates = tf.einsum("bhi,im->bhm", tf.sigmoid(b_logits), selector)
        difference = tf.einsum("bhe,bhem->bhm", q_t - k_t, weights)
        weights = weights + k_t[..., :, None] * (rates * difference)[..., None, :]
        return t + 1, weights, outputs.write(t, y_t)

    _, weights, outputs = tf.while_loop(
        lambda t, *_: t < length,
        step,
        (tf.constant(0), weights, tf.TensorArray(x.dtype, size=length, element_shape=step_shape)),
        maximum_iterations=length,
    )
    y = tf.transpose(outputs.stack(), [1, 0, 2, 3])
    finals = tf.split(weights, [head_dim, head_dim, head_dim, 4], axis=-1)
    return y, tuple(finals)

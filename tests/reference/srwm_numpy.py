"""Float64 NumPy forward of the SRWM recurrence, written from the per-step recurrence of
Irie et al., "A Modern Self-Referential Weight Matrix That Learns to Modify Itself" (ICML 2022), as
their kernel computes it: read y, softmax q and k, sigmoid beta with the old weights, then
`W_i += beta_i * outer(k, q W_i - k W_i)` for i in (y, q, k, b).

One head of one sequence is processed step by step with explicit vector-matrix products,
exactly as written above; the batched wrapper just loops over episodes and heads.
Row-vector convention: a read is `v = x @ W` with `W` stored `[input_dim, output_dim]`.
"""

import numpy as np


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def srwm_single_head(x, w_y, w_q, w_k, w_b):
    """Runs the recurrence for one head of one sequence.

    Args:
        x: `[length, head_dim]` inputs.
        w_y, w_q, w_k: `[head_dim, head_dim]` initial weights.
        w_b: `[head_dim, 4]` initial learning-rate weights.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))`: `y` is `[length, head_dim]`, read with the weights *before*
        the update of each step; the weights are the final ones, updated at every step.
    """
    weights = [np.array(w, dtype=np.float64) for w in (w_y, w_q, w_k, w_b)]
    x = np.asarray(x, dtype=np.float64)
    outputs = []
    for x_t in x:
        w_y_t, w_q_t, w_k_t, w_b_t = weights
        y_t = x_t @ w_y_t
        q_t = _softmax(x_t @ w_q_t)
        k_t = _softmax(x_t @ w_k_t)
        beta_t = _sigmoid(x_t @ w_b_t)
        updated = []
        for index, w in enumerate(weights):
            difference = q_t @ w - k_t @ w
            updated.append(w + beta_t[index] * np.outer(k_t, difference))
        weights = updated
        outputs.append(y_t)
    return np.stack(outputs), tuple(weights)


def srwm(x, w_y, w_q, w_k, w_b, input_softmax=False):
    """Batched reference with the layout of `kerasrwm.ops.srwm`.

    Args:
        x: `[batch, length, heads, head_dim]`.
        w_y, w_q, w_k: `[batch, heads, head_dim, head_dim]`.
        w_b: `[batch, heads, head_dim, 4]`.
        input_softmax: apply a softmax over each head's features of x first.

    Returns:
        `(y, (w_y, w_q, w_k, w_b))` with `y` of shape `[batch, length, heads, head_dim]`.
    """
    x = np.asarray(x, dtype=np.float64)
    if input_softmax:
        x = np.apply_along_axis(_softmax, -1, x)
    batch, length, heads, head_dim = x.shape
    y = np.zeros((batch, length, heads, head_dim))
    finals = [np.zeros(np.shape(w)) for w in (w_y, w_q, w_k, w_b)]
    for b in range(batch):
        for h in range(heads):
            y[b, :, h], head_finals = srwm_single_head(
                x[b, :, h], w_y[b, h], w_q[b, h], w_k[b, h], w_b[b, h]
            )
            for final, head_final in zip(finals, head_finals):
                final[b, h] = head_final
    return y, tuple(finals)

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
            y[b, :, h], head_finals = srwm_single_head(x[b, :, h], w_y[b, h], w_q[b, h], w_k[b, h], w_b[b, h])
            for final, head_final in zip(finals, head_finals):
                final[b, h] = head_final
    return y, tuple(finals)


def _rates_of_columns(head_dim):
    """Index of the learning rate of each column of the joined matrix `[W_y W_q W_k w_b]`."""
    return np.repeat(np.arange(4), [head_dim, head_dim, head_dim, 4])


def srwm_steps_single_head(x, weights):
    """The forward of one head with every intermediate, on the joined matrix `W = [W_y W_q W_k w_b]`.

    Args:
        x: `[length, head_dim]` inputs.
        weights: the initial w_y, w_q, w_k `[head_dim, head_dim]` and w_b `[head_dim, 4]`.

    Returns:
        A list with one dict per step t: `w` (`[head_dim, 3 head_dim + 4]`, before the update),
        `q`, `k` (`[head_dim]`), `beta` (`[4]`), `difference` (`(q - k) @ w`) and `w_after`.
    """
    head_dim = x.shape[-1]
    rates = _rates_of_columns(head_dim)
    w = np.concatenate([np.asarray(m, np.float64) for m in weights], axis=1)
    steps = []
    for x_t in np.asarray(x, np.float64):
        reads = x_t @ w
        q = _softmax(reads[head_dim : 2 * head_dim])
        k = _softmax(reads[2 * head_dim : 3 * head_dim])
        beta = _sigmoid(reads[3 * head_dim :])
        difference = (q - k) @ w
        w_after = w + np.outer(k, beta[rates] * difference)
        steps.append({"w": w, "q": q, "k": k, "beta": beta, "difference": difference, "w_after": w_after})
        w = w_after
    return steps


def srwm_backward_single_head(x, weights, grad_y, grad_finals):
    """Reverse-mode gradient of one head for the loss `sum(y * grad_y) + sum_i sum(final_i * grad_finals[i])`.

    Returns:
        `(grad_x, (grad_w_y, grad_w_q, grad_w_k, grad_w_b))` shaped as `x` and the weights.
    """
    head_dim = x.shape[-1]
    rates = _rates_of_columns(head_dim)
    steps = srwm_steps_single_head(x, weights)
    g = np.concatenate([np.asarray(m, np.float64) for m in grad_finals], axis=1)
    grad_x = np.zeros(np.shape(x))
    for t in reversed(range(len(steps))):
        step = steps[t]
        q, k, beta, w = step["q"], step["k"], step["beta"], step["w"]
        grad_update = k @ g
        grad_difference = beta[rates] * grad_update
        grad_beta = np.bincount(rates, grad_update * step["difference"], 4)
        through_w = w @ grad_difference
        grad_query, grad_key = through_w, g @ (beta[rates] * step["difference"]) - through_w
        grad_reads = np.concatenate(
            [
                grad_y[t],
                q * (grad_query - q @ grad_query),
                k * (grad_key - k @ grad_key),
                grad_beta * beta * (1 - beta),
            ]
        )
        grad_x[t] = w @ grad_reads
        g = g + np.outer(q - k, grad_difference) + np.outer(x[t], grad_reads)
    return grad_x, tuple(np.split(g, [head_dim, 2 * head_dim, 3 * head_dim], axis=1))


def srwm_backward(x, weights, grad_y, grad_finals):
    """Batched `srwm_backward_single_head` with the layout of `kerasrwm.ops.srwm`."""
    grad_x = np.zeros(np.shape(x))
    grad_weights = [np.zeros(np.shape(w)) for w in weights]
    for b in range(x.shape[0]):
        for h in range(x.shape[2]):
            grad_x[b, :, h], head_grads = srwm_backward_single_head(
                x[b, :, h], [w[b, h] for w in weights], grad_y[b, :, h], [g[b, h] for g in grad_finals]
            )
            for grad, head_grad in zip(grad_weights, head_grads):
                grad[b, h] = head_grad
    return grad_x, grad_weights

"""Float64 NumPy DeltaNet, written from the authors' per-step delta rule: `v_bar = k W`,
`W += outer(k, beta (v - v_bar))`, and the output `q W` read after the step's write.

One head of one sequence is processed step by step; the layer function follows the exact order
of the authors' `FastFFlayer`. Row-vector convention: a fast matrix `W` is `[key_dim, value_dim]`.
"""

import numpy as np

from reference.normalization import layer_norm


def _elu_plus_one(u):
    return np.where(u > 0, u + 1.0, np.exp(np.minimum(u, 0.0)))


def feature_map(u):
    """`elu(u) + 1` normalised to sum to one over the last axis."""
    positive = _elu_plus_one(u)
    return positive / positive.sum(-1, keepdims=True)


def delta_rule_single_head(q, k, v, beta, w):
    """The delta rule for one head of one sequence.

    Args:
        q, k: `[length, key_dim]` feature-mapped queries and keys.
        v: `[length, value_dim]` values.
        beta: `[length]` learning rates.
        w: `[key_dim, value_dim]` initial fast matrix.

    Returns:
        `(outputs [length, value_dim], final w)`; step t reads with the matrix after its write.
    """
    w = np.array(w, dtype=np.float64)
    outputs = []
    for q_t, k_t, v_t, beta_t in zip(q, k, v, beta):
        stored = k_t @ w
        w = w + np.outer(k_t, beta_t * (v_t - stored))
        outputs.append(q_t @ w)
    return np.stack(outputs), w


def delta_rule(q, k, v, beta, w):
    """Batched layout of `kerasrwm.ops.delta_net_loop.delta_net_loop`.

    Args:
        q, k, v: `[batch, length, heads, head_dim]`; beta `[batch, length, heads, 1]`;
        w: `[batch, heads, head_dim, head_dim]`.

    Returns:
        `(outputs [batch, length, heads, head_dim], final w [batch, heads, head_dim, head_dim])`.
    """
    batch, length, heads, _ = v.shape
    outputs = np.zeros(v.shape)
    finals = np.zeros(np.shape(w))
    for b in range(batch):
        for h in range(heads):
            outputs[b, :, h], finals[b, h] = delta_rule_single_head(
                q[b, :, h], k[b, :, h], v[b, :, h], beta[b, :, h, 0], w[b, h]
            )
    return outputs, finals


def delta_net_layer(x, gamma, beta_ln, slow_kernel, output_kernel, num_heads, w=None, epsilon=1e-5):
    """The whole layer: `x + (DeltaRule(split(LayerNorm(x) @ slow_kernel)) @ output_kernel)`.

    Args:
        x: `[batch, length, D]`; gamma, beta_ln: LayerNorm `[D]`;
        slow_kernel: `[D, num_heads * (3E + 1)]`, per head `q, k, v, beta` in that order;
        output_kernel: `[num_heads * E, D]`; w: initial fast matrices or None (zeros).

    Returns:
        `(outputs [batch, length, D], final w)`.
    """
    batch, length, _ = x.shape
    z = (layer_norm(x, gamma, beta_ln, epsilon) @ slow_kernel).reshape(batch, length, num_heads, -1)
    head_dim = (z.shape[-1] - 1) // 3
    q = feature_map(z[..., :head_dim])
    k = feature_map(z[..., head_dim : 2 * head_dim])
    v = z[..., 2 * head_dim : 3 * head_dim]
    rates = 1.0 / (1.0 + np.exp(-z[..., 3 * head_dim :]))
    if w is None:
        w = np.zeros((batch, num_heads, head_dim, head_dim))
    outputs, final = delta_rule(q, k, v, rates, w)
    return x + outputs.reshape(batch, length, -1) @ output_kernel, final

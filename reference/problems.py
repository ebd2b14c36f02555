"""Random SRWM problems in NumPy, shared by the op tests and the standalone kernel harnesses."""

NUM_RATES = 4


def random_problem(batch, length, heads, head_dim, rng, weight_scale=0.6):
    """Inputs, initial weights and upstream gradients, all float64.

    Returns `(x, weights, grad_y, grad_finals)`: x `[batch, length, heads, head_dim]` ~ N(0, 1);
    weights w_y, w_q, w_k `[batch, heads, head_dim, head_dim]` and w_b `[batch, heads, head_dim, 4]`
    ~ N(0, weight_scale^2); grad_y (shaped as x) and grad_finals (shaped as the weights) ~ N(0, 1).
    They are drawn from `rng` in that order, so the leading outputs do not depend on the others.
    """
    x = rng.normal(size=(batch, length, heads, head_dim))
    weights = [
        rng.normal(scale=weight_scale, size=(batch, heads, head_dim, width))
        for width in (head_dim, head_dim, head_dim, NUM_RATES)
    ]
    return x, weights, rng.normal(size=x.shape), [rng.normal(size=w.shape) for w in weights]

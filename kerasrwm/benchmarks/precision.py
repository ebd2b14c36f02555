"""`kerasrwm bench precision`: error of the fused op's float32 gradients against float64.

The backward recovers each step's weights by reverting the rank-1 updates from the nearest
checkpoint, so its float32 rounding error can grow with the sequence length. For each length,
the same problem (the `bench op` one, weights at the initial scale 1 / sqrt(head_dim)) is run
in float64 and in float32, and each gradient's largest absolute error is reported relative to
the largest absolute float64 value of that gradient.
"""

import numpy as np
import tensorflow as tf

from kerasrwm.argument_types import number_list
from kerasrwm.benchmarks.op import forward_backward_step
from kerasrwm.benchmarks.op import random_problem
from kerasrwm.ops import fused_srwm
from kerasrwm.validation import check_integer

GRADIENT_NAMES = ("x", "w_y", "w_q", "w_k", "w_b")


def add_arguments(parser):
    parser.add_argument("--lengths", type=number_list(int), default=[76, 1000, 5000], help="comma-separated L")
    parser.add_argument("--batch", type=int, default=2, help="episodes B")
    parser.add_argument("--heads", type=int, default=4, help="heads H")
    parser.add_argument("--head-dim", type=int, default=16, help="head_dim E")


def float32_gradient_errors(batch, heads, head_dim, length):
    """`{gradient name: relative error}` of float32 against float64 for one random problem."""
    x, weights = random_problem(batch, heads, head_dim, length, seed=length, dtype=np.float64)
    step = forward_backward_step("fused", jit_compile=False)
    _, (grad_x, grad_weights) = step(x, weights)
    _, (grad_x32, grad_weights32) = step(tf.cast(x, tf.float32), [tf.cast(w, tf.float32) for w in weights])
    errors = {}
    for name, reference, gradient in zip(GRADIENT_NAMES, [grad_x, *grad_weights], [grad_x32, *grad_weights32]):
        reference = reference.numpy()
        error = np.max(np.abs(gradient.numpy().astype(np.float64) - reference))
        errors[name] = float(error / max(np.max(np.abs(reference)), np.finfo(np.float64).tiny))
    return errors


def run(args):
    for name in ("batch", "heads", "head_dim"):
        check_integer(name, getattr(args, name))
    if not args.lengths or min(args.lengths) < 1:
        raise ValueError(f"`lengths` must be a comma-separated list of integers >= 1; received {args.lengths}.")
    if not fused_srwm.is_available():
        raise ValueError(f"the fused op is unavailable: {fused_srwm.unavailable_reason()}")
    figures = {"shape": {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim}}
    for length in args.lengths:
        errors = float32_gradient_errors(args.batch, args.heads, args.head_dim, length)
        figures[f"L{length}"] = {"max_relative_error": max(errors.values()), **errors}
    return figures

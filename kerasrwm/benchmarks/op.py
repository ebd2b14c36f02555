"""`kerasrwm bench op`: forward + backward time of the SRWM recurrence implementations."""

import numpy as np
import tensorflow as tf

from kerasrwm.benchmarks.timing import time_call
from kerasrwm.ops import srwm

PAPER_SHAPE = {"batch": 16, "heads": 16, "head_dim": 16, "length": 76}


def add_arguments(parser):
    parser.add_argument("--batch", type=int, default=PAPER_SHAPE["batch"], help="episodes B")
    parser.add_argument("--heads", type=int, default=PAPER_SHAPE["heads"], help="heads H")
    parser.add_argument("--head-dim", type=int, default=PAPER_SHAPE["head_dim"], help="head_dim E")
    parser.add_argument("--length", type=int, default=PAPER_SHAPE["length"], help="sequence length L")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per implementation")


def _random_problem(batch, heads, head_dim, length, seed=0):
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(head_dim)

    def normal(*shape, std=1.0):
        return tf.constant(rng.normal(scale=std, size=shape).astype(np.float32))

    x = normal(batch, length, heads, head_dim)
    weights = [normal(batch, heads, head_dim, head_dim, std=scale) for _ in range(3)]
    weights.append(normal(batch, heads, head_dim, 4, std=scale))
    return x, weights


def forward_backward_step(implementation, jit_compile):
    """A compiled function returning the loss and the gradients w.r.t. x and the weights.

    The loss uses both the outputs and the final weights, so both gradient paths are timed.
    """

    @tf.function(jit_compile=jit_compile, autograph=False)
    def step(x, weights):
        with tf.GradientTape() as tape:
            tape.watch([x, weights])
            y, finals = srwm(x, *weights, implementation=implementation)
            loss = tf.reduce_sum(y * y) + tf.add_n([tf.reduce_sum(w) for w in finals])
        return loss, tape.gradient(loss, [x, weights])

    return step


def time_forward_backward(implementation, jit_compile, x, weights, repeats):
    step = forward_backward_step(implementation, jit_compile)
    return time_call(lambda: tf.nest.map_structure(np.asarray, step(x, weights)), repeats)


def run(args):
    x, weights = _random_problem(args.batch, args.heads, args.head_dim, args.length)
    figures = {
        "shape": {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim, "length": args.length},
        "loop_graph_ms": time_forward_backward("loop", False, x, weights, args.repeats),
        "loop_xla_ms": time_forward_backward("loop", True, x, weights, args.repeats),
    }
    figures["xla_speedup_over_graph"] = figures["loop_graph_ms"] / figures["loop_xla_ms"]
    return figures

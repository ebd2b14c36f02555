"""`kerasrwm bench op`: forward + backward time of the SRWM recurrence implementations.

In one run: the loop implementation in graph mode and under XLA and the fused op, at the
requested shape (default: the paper's B=16, H=16, E=16, L=76) and at that shape with L=1000 and
with E=32, each with the speed-up of the fused op; and the peak memory of a fused forward +
backward at L=100 and L=1000. The implementations are timed in turn within each repetition
(medians), so that the ratios hold on a machine whose load changes during the run.

Each timed call of a `tf.function` also pays a fixed cost per call (Python's dispatch, waking the
thread pool, fetching the results: about 1-2 ms here), which a training step pays once for the
whole model, not once per layer. At the requested shape the implementations are therefore also
timed "in graph": one call runs `--steps-in-graph` dependent forward+backward passes and the time
is divided by their number, so that the fixed cost is spread over many passes.
"""

import functools
import time

import numpy as np
import tensorflow as tf

from kerasrwm.ops import fused_srwm
from kerasrwm.ops import srwm
from kerasrwm.validation import check_integer

PAPER_SHAPE = {"batch": 16, "heads": 16, "head_dim": 16, "length": 76}
MEMORY_LENGTHS = (100, 1000)


def add_arguments(parser):
    parser.add_argument("--batch", type=int, default=PAPER_SHAPE["batch"], help="episodes B")
    parser.add_argument("--heads", type=int, default=PAPER_SHAPE["heads"], help="heads H")
    parser.add_argument("--head-dim", type=int, default=PAPER_SHAPE["head_dim"], help="head_dim E")
    parser.add_argument("--length", type=int, default=PAPER_SHAPE["length"], help="sequence length L")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per implementation")
    parser.add_argument(
        "--steps-in-graph", type=int, default=32, help="forward+backward passes per call of the in-graph timing"
    )


def random_problem(batch, heads, head_dim, length, seed=0, dtype=np.float32):
    """`(x, [w_y, w_q, w_k, w_b])` constants: x ~ N(0, 1), weights ~ N(0, 1 / head_dim)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(head_dim)

    def normal(*shape, std=1.0):
        return tf.constant(rng.normal(scale=std, size=shape).astype(dtype))

    x = normal(batch, length, heads, head_dim)
    weights = [normal(batch, heads, head_dim, head_dim, std=scale) for _ in range(3)]
    weights.append(normal(batch, heads, head_dim, 4, std=scale))
    return x, weights


def forward_backward_step(implementation, jit_compile, steps=1):
    """A compiled function returning the loss and the gradients w.r.t. x and the weights.

    The loss uses both the outputs and the final weights, so both gradient paths are timed. Its
    output term, the sum of squares of y, is `2 * tf.nn.l2_loss(y)`: one op whose gradient is one
    scaling of y. In graph mode `tf.reduce_sum(y * y)` runs as separate ops over y (the product,
    its sum, a tiled gradient, two products and their sum), which XLA fuses away and which would
    be charged to the fused op.
    With `steps > 1` the function runs `steps` forward+backward passes in a `tf.while_loop`, each
    on the initial weights moved by a gradient step of the previous pass, so that none can be
    skipped or run concurrently; it returns the last pass's loss and gradients.
    """

    def forward_backward(x, weights):
        with tf.GradientTape() as tape:
            tape.watch([x, weights])
            y, finals = srwm(x, *weights, implementation=implementation)
            loss = 2.0 * tf.nn.l2_loss(y) + tf.add_n([tf.reduce_sum(w) for w in finals])
        return loss, tape.gradient(loss, [x, weights])

    @tf.function(jit_compile=jit_compile, autograph=False)
    def step(x, weights):
        loss, grads = forward_backward(x, weights)
        if steps == 1:
            return loss, grads

        def next_step(index, loss, grads):
            moved = [w - 1e-3 * g for w, g in zip(weights, grads[1])]
            return (index + 1, *forward_backward(x, moved))

        _, loss, grads = tf.while_loop(lambda index, *_: index < steps, next_step, (tf.constant(1), loss, grads))
        return loss, grads

    return step


def time_interleaved(functions, repeats, warmup=2):
    """Median wall-clock milliseconds of each of `functions` (name -> callable).

    The functions are called in turn within each repetition, so that a change of the machine's
    load during the run affects all of them alike and their ratios stay comparable.
    """
    for _ in range(warmup):
        for function in functions.values():
            function()
    durations = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            durations[name].append(time.perf_counter() - start)
    return {name: float(np.median(values) * 1000.0) for name, values in durations.items()}


def _time_shape(shape, repeats, fused, steps=1):
    """Milliseconds per forward+backward of each implementation at one shape, with ratios."""
    x, weights = random_problem(shape["batch"], shape["heads"], shape["head_dim"], shape["length"])
    implementations = {"loop_graph_ms": ("loop", False), "loop_xla_ms": ("loop", True)}
    if fused:
        implementations["fused_ms"] = ("fused", False)
    calls = {
        name: functools.partial(_run, forward_backward_step(implementation, jit, steps), x, weights)
        for name, (implementation, jit) in implementations.items()
    }
    timings = {name: milliseconds / steps for name, milliseconds in time_interleaved(calls, repeats).items()}
    figures = {"shape": dict(shape), "steps_per_call": steps, **timings}
    figures["xla_speedup_over_graph"] = figures["loop_graph_ms"] / figures["loop_xla_ms"]
    if fused:
        figures["fused_speedup_over_graph"] = figures["loop_graph_ms"] / figures["fused_ms"]
        figures["fused_speedup_over_xla"] = figures["loop_xla_ms"] / figures["fused_ms"]
    return figures


def _run(step, x, weights):
    return tf.nest.map_structure(np.asarray, step(x, weights))


def _cpu_memory_stats_available():
    """Whether TensorFlow tracks CPU allocations here (it does only with oneDNN on)."""
    try:
        tf.config.experimental.reset_memory_stats("CPU:0")
    except ValueError:
        return False
    return True


def _fused_peak_memory(shape, length):
    """Peak bytes allocated on the CPU by one fused forward+backward at `length`."""
    x, weights = random_problem(shape["batch"], shape["heads"], shape["head_dim"], length)
    step = forward_backward_step("fused", False)
    tf.nest.map_structure(np.asarray, step(x, weights))
    tf.config.experimental.reset_memory_stats("CPU:0")
    baseline = tf.config.experimental.get_memory_info("CPU:0")["current"]
    tf.nest.map_structure(np.asarray, step(x, weights))
    return tf.config.experimental.get_memory_info("CPU:0")["peak"] - baseline


def run(args):
    check_integer("repeats", args.repeats)
    check_integer("steps_in_graph", args.steps_in_graph)
    shape = {"batch": args.batch, "heads": args.heads, "head_dim": args.head_dim, "length": args.length}
    fused = fused_srwm.is_available()
    figures = {
        "fused_available": fused,
        "requested": _time_shape(shape, args.repeats, fused),
        "requested_in_graph": _time_shape(shape, max(2, args.repeats // 2), fused, steps=args.steps_in_graph),
        "long": _time_shape({**shape, "length": 1000}, max(2, args.repeats // 3), fused),
        "wide": _time_shape({**shape, "head_dim": 32}, args.repeats, fused),
    }
    if fused and not _cpu_memory_stats_available():
        figures["memory"] = "not measured: TensorFlow tracks CPU memory only with oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)"
    elif fused:
        peaks = {f"fused_peak_bytes_L{length}": _fused_peak_memory(shape, length) for length in MEMORY_LENGTHS}
        first, last = (peaks[f"fused_peak_bytes_L{length}"] for length in MEMORY_LENGTHS)
        figures["memory"] = {
            **peaks,
            "peak_ratio": last / first,
            "length_ratio": MEMORY_LENGTHS[-1] / MEMORY_LENGTHS[0],
        }
    else:
        figures["fused_unavailable_reason"] = fused_srwm.unavailable_reason()
    return figures

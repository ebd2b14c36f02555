"""Wall-clock timing shared by the benchmarks."""

import time

import numpy as np


def time_call(function, repeats, warmup=2):
    """Median wall-clock milliseconds of `function()` over `repeats` calls after `warmup` calls.

    `function` must block until its result is ready (e.g. return NumPy values).
    """
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return float(np.median(durations) * 1000.0)

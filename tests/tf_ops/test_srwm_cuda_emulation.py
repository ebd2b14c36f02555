"""The SRWM CUDA kernels (`srwm_cuda.cu`, unchanged) run on the CPU through a CUDA emulation.

g++ compiles the kernel source against `cuda_emulation/cuda_runtime.h`: each thread of a block is
a fiber that yields at `__syncthreads()` and at warp shuffles (where the lanes of a warp wait for
each other and exchange values), shared memory is NaN before every block, and released threads
run in ascending, descending or random order. y, the final weights, the trace, the checkpoints
(read from their GPU layout through `GpuTraceIndex` and
`GpuCheckpointIndex`) and every gradient are compared with the float64 NumPy reference, and
removing any one `__syncthreads()`, or the wait of any one shuffle, must make the comparison fail.
The library is built once per source hash into a temporary cache folder.
"""

import ctypes
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from kerasrwm.ops import gpu_limits
from reference import srwm_numpy
from reference.finite_differences import numerical_gradient
from reference.problems import NUM_RATES
from reference.problems import random_problem

REPOSITORY = Path(__file__).resolve().parents[2]
KERNELS = REPOSITORY / "kerasrwm" / "ops" / "kernels"
EMULATION = Path(__file__).resolve().parent / "cuda_emulation"
SOURCES = [
    EMULATION / "cuda_runtime.h",
    EMULATION / "cuda_emulation.cc",
    KERNELS / "srwm_cuda.cu",
    KERNELS / "srwm_cuda.h",
    KERNELS / "srwm_layout.h",
]
COMPILER = os.environ.get("CXX", "g++")
FLAGS = ["-std=c++17", "-O2", "-shared", "-fPIC", f"-I{EMULATION}", f"-I{KERNELS}"]
ORDERS = {"ascending": 0, "descending": 1, "random": 2}
LANES = {np.float32: 8, np.float64: 4}  # PackLanes<T>(): one 256-bit vector
TOLERANCE = {np.float32: 2e-4, np.float64: 1e-10}
OUTPUT_NAMES = (
    "y",
    "w_y_final",
    "w_q_final",
    "w_k_final",
    "w_b_final",
    "trace",
    "checkpoints",
    "grad_x",
    "grad_w_y",
    "grad_w_q",
    "grad_w_k",
    "grad_w_b",
)

pytestmark = pytest.mark.skipif(shutil.which(COMPILER) is None, reason=f"needs {COMPILER}")


def _build_library():
    """Compiles the emulated kernels unless a build of the same sources and flags is cached."""
    digest = hashlib.sha256()
    for part in [COMPILER, *FLAGS]:
        digest.update(part.encode() + b"\0")
    for path in SOURCES:
        digest.update(path.name.encode() + path.read_bytes())
    folder = Path(tempfile.gettempdir()) / f"kerasrwm-cuda-emulation-{os.getuid()}"
    library = folder / f"libsrwm_cuda_emulation-{digest.hexdigest()[:16]}.so"
    if not library.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"{library.name}.{os.getpid()}.tmp"
        subprocess.run([COMPILER, *FLAGS, str(EMULATION / "cuda_emulation.cc"), "-o", str(partial)], check=True)
        os.replace(partial, library)
    return library


@pytest.fixture(scope="module")
def emulation():
    handle = ctypes.CDLL(str(_build_library()))
    handle.emulated_srwm_forward_backward.restype = ctypes.c_int
    handle.emulated_srwm_forward_backward.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int64),
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_int,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    handle.emulated_gpu_saved_to_sequences.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64)] + [
        ctypes.c_void_p
    ] * 4
    handle.emulated_kernel_limits.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64)]
    handle.emulated_launch_shared_bytes.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    handle.emulated_attribute_calls.argtypes = [
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    return handle


def _saved_shapes(batch, length, heads, head_dim, interval):
    """Per-sequence shapes of the trace and the checkpoints: [sequences, ...]."""
    trace = (batch * heads, length, 5 * head_dim + 2 * NUM_RATES)
    checkpoints = (batch * heads, -(-length // interval), head_dim, 3 * head_dim + NUM_RATES)
    return trace, checkpoints


def _gpu_buffer_shape(shape, lanes):
    """[packs, lanes, ...] for the per-sequence `shape` [sequences, ...]: the op's tensor on a GPU."""
    return (-(-shape[0] // lanes), lanes, *shape[1:])


def gpu_saved_to_sequences(emulation, dtype, shape, interval, trace_buffer, checkpoints_buffer):
    """The trace and checkpoints of the kernels' GPU layout, per sequence (see `_saved_shapes`)."""
    trace_shape, checkpoints_shape = _saved_shapes(*shape, interval)
    trace, checkpoints = np.empty(trace_shape, dtype), np.empty(checkpoints_shape, dtype)
    emulation.emulated_gpu_saved_to_sequences(
        np.dtype(dtype).itemsize,
        (ctypes.c_int64 * 5)(*shape, interval),
        trace_buffer.ctypes.data,
        checkpoints_buffer.ctypes.data,
        trace.ctypes.data,
        checkpoints.ctypes.data,
    )
    return trace, checkpoints


def run_emulated(emulation, problem, dtype, interval, order="ascending", seed=0, skipped_line=-1):
    """Forward + backward of the emulated kernels; a dict of the outputs (NaN where never written).

    The trace and checkpoints are given per sequence, and as the kernels wrote them (in their
    GPU-layout buffers, NaN where not written) under "trace_buffer" and "checkpoints_buffer".
    """
    x, weights, grad_y, grad_finals = problem
    inputs = [np.ascontiguousarray(a, dtype) for a in (x, *weights, grad_y, *grad_finals)]
    saved = [_gpu_buffer_shape(shape, LANES[dtype]) for shape in _saved_shapes(*x.shape, interval)]
    shapes = [x.shape, *(w.shape for w in weights), *saved, x.shape, *(w.shape for w in weights)]
    outputs = [np.full(shape, np.nan, dtype) for shape in shapes]
    pointers = lambda arrays: (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])  # noqa: E731
    error = ctypes.create_string_buffer(1024)
    status = emulation.emulated_srwm_forward_backward(
        np.dtype(dtype).itemsize,
        (ctypes.c_int64 * 5)(*x.shape, interval),
        pointers(inputs),
        pointers(outputs),
        ORDERS[order],
        seed,
        skipped_line,
        error,
        len(error),
    )
    if status != 0:
        raise RuntimeError(error.value.decode())
    result = dict(zip(OUTPUT_NAMES, outputs))
    result["trace_buffer"], result["checkpoints_buffer"] = result["trace"], result["checkpoints"]
    result["trace"], result["checkpoints"] = gpu_saved_to_sequences(
        emulation, dtype, x.shape, interval, result["trace_buffer"], result["checkpoints_buffer"]
    )
    return result


def expected_outputs(problem, interval):
    """The float64 reference of every output, the trace and checkpoints per sequence."""
    x, weights, grad_y, grad_finals = problem
    batch, length, heads, head_dim = x.shape
    y, finals = srwm_numpy.srwm(x, *weights)
    grad_x, grad_weights = srwm_numpy.srwm_backward(x, weights, grad_y, grad_finals)
    trace_shape, checkpoints_shape = _saved_shapes(batch, length, heads, head_dim, interval)
    trace, checkpoints = np.empty(trace_shape), np.empty(checkpoints_shape)
    for sequence in range(batch * heads):
        b, h = divmod(sequence, heads)
        steps = srwm_numpy.srwm_steps_single_head(x[b, :, h], [w[b, h] for w in weights])
        for t, step in enumerate(steps):
            trace[sequence, t] = np.concatenate([step["q"], step["k"], step["beta"], step["difference"]])
        for checkpoint in range(checkpoints_shape[1]):
            checkpoints[sequence, checkpoint] = steps[min((checkpoint + 1) * interval, length) - 1]["w_after"]
    return dict(zip(OUTPUT_NAMES, [y, *finals, trace, checkpoints, grad_x, *grad_weights]))


def relative_errors(actual, expected):
    """Largest error of each output relative to its largest magnitude; inf where one was not written."""
    errors = {}
    for name, reference in expected.items():
        values = np.asarray(actual[name], np.float64)
        if not np.all(np.isfinite(values)):
            errors[name] = np.inf
            continue
        scale = max(np.max(np.abs(reference)), 1e-30)
        errors[name] = float(np.max(np.abs(values - reference)) / scale)
    return errors


def sync_lines(pattern):
    """Source lines (1-based) of srwm_cuda.cu that match `pattern`."""
    lines = (KERNELS / "srwm_cuda.cu").read_text().splitlines()
    return [number for number, line in enumerate(lines, 1) if re.search(pattern, line)]


def _check(emulation, dtype, shape, interval, seed=0):
    problem = random_problem(*shape, np.random.default_rng(seed))
    expected = expected_outputs(problem, interval)
    for order in ORDERS:
        actual = run_emulated(emulation, problem, dtype, interval, order, seed)
        errors = relative_errors(actual, expected)
        worst = max(errors, key=errors.get)
        assert errors[worst] <= TOLERANCE[dtype], (order, worst, errors)
        for name in ("trace", "checkpoints"):  # nothing written outside the GPU layout's places
            assert np.count_nonzero(~np.isnan(actual[f"{name}_buffer"])) == actual[name].size, (order, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_case_matches_the_reference_in_every_thread_order(emulation, dtype):
    # 10 sequences: one full and one partial pack of float32 (8 lanes), a partial third of float64.
    _check(emulation, dtype, (2, 7, 5, 5), interval=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_layout_gives_every_value_its_place_and_a_step_contiguous_rows(emulation, dtype):
    """Through the kernels' own index functions: the layout is one-to-one into the op's tensor, and
    a step's trace fields and a checkpoint row's columns (thread m takes field or column m) are
    consecutive elements, so a warp's accesses are coalesced."""
    shape, interval = (2, 7, 5, 5), 3  # 10 sequences: a partial last pack in float32 and float64
    buffers = []
    for per_sequence in _saved_shapes(*shape, interval):
        gpu_shape = _gpu_buffer_shape(per_sequence, LANES[dtype])
        buffers.append(np.arange(np.prod(gpu_shape), dtype=dtype).reshape(gpu_shape))
    for places in gpu_saved_to_sequences(emulation, dtype, shape, interval, *buffers):
        assert np.unique(places).size == places.size
        assert np.all(np.diff(places, axis=-1) == 1)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("head_dim", [4, 5, 7, 16, 32, 64])
@pytest.mark.parametrize("length", [1, 4, 5, 9])
def test_kernels_match_the_reference(emulation, dtype, head_dim, length):
    _check(emulation, dtype, (3, length, 3, head_dim), interval=4, seed=head_dim * 100 + length)


@pytest.mark.parametrize(
    "pattern, least",
    # 3 barriers in the forward step, 4 in the backward step and 1 before it; GroupSum and GroupMax.
    [pytest.param(r"\b__syncthreads\(\)", 8, marks=pytest.mark.slow), (r"\b__shfl_\w+_sync\(", 2)],
    ids=["barriers", "shuffles"],
)
def test_removing_any_synchronization_breaks_the_comparison(emulation, pattern, least):
    """Each barrier, and each shuffle's wait for the other lanes of its warp, is needed.

    head_dim 5 runs one warp (the softmaxes over groups of 16 lanes), head_dim 16 two warps.
    """
    lines = sync_lines(pattern)
    assert len(lines) >= least, lines
    cases = []
    for head_dim in (5, 16):
        problem = random_problem(2, 7, 5, head_dim, np.random.default_rng(1))
        cases.append((problem, expected_outputs(problem, 3)))
    for line in lines:
        worst = 0.0
        for (problem, expected), order in itertools.product(cases, ORDERS):
            try:
                errors = relative_errors(
                    run_emulated(emulation, problem, np.float64, 3, order, seed=1, skipped_line=line), expected
                )
            except RuntimeError:
                errors = {"launch": np.inf}
            worst = max(worst, *errors.values())
        assert worst > 1e-6, f"the kernels still pass without the synchronization on line {line}"


def test_shared_memory_attribute_is_set_once_per_kernel_to_the_device_limit(emulation):
    """Launches with a large then a small head_dim leave the attribute at the device's limit."""
    for dtype in (np.float32, np.float64):
        for head_dim in (64, 4):
            run_emulated(emulation, random_problem(1, 2, 1, head_dim, np.random.default_rng(head_dim)), dtype, 4)
    kernels, values = (ctypes.c_int * 64)(), (ctypes.c_int * 64)()
    count = emulation.emulated_attribute_calls(kernels, values, 64)
    assert sorted(kernels[:count]) == list(range(4))  # forward and backward, float and double: once each
    assert set(values[:count]) == {232448}
    assert emulation.emulated_device_queries() == 1


def test_reference_backward_matches_finite_differences():
    x, weights, grad_y, grad_finals = random_problem(1, 3, 1, 4, np.random.default_rng(4))

    def loss(arrays):
        y, finals = srwm_numpy.srwm(arrays[0], *arrays[1:])
        return float(np.sum(y * grad_y) + sum(np.sum(f * g) for f, g in zip(finals, grad_finals)))

    grad_x, grad_weights = srwm_numpy.srwm_backward(x, weights, grad_y, grad_finals)
    numeric = numerical_gradient(loss, [x, *weights])
    for analytic, expected in zip([grad_x, *grad_weights], numeric):
        np.testing.assert_allclose(analytic, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("head_dim", [4, 7, 64])
def test_python_shared_memory_sizes_are_what_the_kernels_request(emulation, dtype, head_dim):
    run_emulated(emulation, random_problem(1, 1, 1, head_dim, np.random.default_rng(5)), dtype, 4)
    launches = (ctypes.c_int64 * 2)()
    assert emulation.emulated_launch_shared_bytes(launches, 2) == 2
    itemsize = np.dtype(dtype).itemsize
    assert list(launches) == [
        gpu_limits.forward_shared_bytes(head_dim, itemsize),
        gpu_limits.backward_shared_bytes(head_dim, itemsize),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_launch_decision_is_the_kernels_own_check(emulation, dtype):
    """With the kernels' attribute lowered to 64 threads per block (as registers would), `gpu_limits.refusal`
    refuses exactly the head_dims whose launch the CUDA launcher refuses, and the launcher refuses them cleanly."""
    itemsize = np.dtype(dtype).itemsize
    emulation.emulated_set_max_threads_per_block(64)
    try:
        values = (ctypes.c_int64 * 6)()
        assert emulation.emulated_kernel_limits(itemsize, values) == 0
        limits = gpu_limits.DeviceLimits(gpu_limits.KernelLimits(*values[:3]), gpu_limits.KernelLimits(*values[3:]))
        assert limits.forward == limits.backward == (64, 0, 232448)
        decisions = {}
        for head_dim in (4, 9, 20, 21, 32):  # 3E + 4 = 16, 31, 64 columns fit 64 threads; 67 and 100 do not
            refused = gpu_limits.refusal(head_dim, itemsize, limits) is not None
            try:
                run_emulated(emulation, random_problem(1, 2, 1, head_dim, np.random.default_rng(head_dim)), dtype, 4)
                launched = True
            except RuntimeError as error:
                assert f"head_dim {head_dim} needs" in str(error) and "loop implementation" in str(error)
                launched = False
            decisions[head_dim] = (refused, launched)
        assert decisions == {
            4: (False, True),
            9: (False, True),
            20: (False, True),
            21: (True, False),
            32: (True, False),
        }
    finally:
        emulation.emulated_set_max_threads_per_block(1024)

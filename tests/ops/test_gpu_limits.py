"""`kerasrwm.ops.gpu_limits`: device limits and the head_dim bound they give."""

import pytest

from kerasrwm.ops import gpu_limits

# cudaDevAttrMaxSharedMemoryPerBlockOptin (CUDA C++ Programming Guide, "Technical Specifications per
# Compute Capability"): T4 64 KB, A100 163 KB, H100 227 KB.
OPT_IN_BYTES = {"T4": 65536, "A100": 166912, "H100": 232448}


def device(shared, threads=1024):
    kernel = gpu_limits.KernelLimits(threads, 0, shared)
    return gpu_limits.DeviceLimits(kernel, kernel)


@pytest.mark.parametrize(
    "gpu, itemsize, largest",
    # float32 backward: 4 (2E S + 18E + 24) bytes, S the padded row stride (3E + 5 or 3E + 6 here);
    # float64 twice that.
    [("T4", 4, 50), ("A100", 4, 80), ("H100", 4, 95), ("A100", 8, 56), ("H100", 8, 67)],
)
def test_largest_head_dim_per_gpu(gpu, itemsize, largest):
    limits = device(OPT_IN_BYTES[gpu])
    assert gpu_limits.refusal(largest, itemsize, limits) is None
    reason = gpu_limits.refusal(largest + 1, itemsize, limits)
    assert reason.startswith("the backward kernel needs") and f"{OPT_IN_BYTES[gpu]} bytes" in reason


def test_threads_the_compiled_kernel_allows_bound_head_dim():
    """A kernel whose registers allow 352 threads (173 per thread) takes head_dim 116 (352 columns), not 117."""
    limits = device(10**9, threads=352)
    assert gpu_limits.threads_per_block(116) == 352 and gpu_limits.refusal(116, 4, limits) is None
    assert "needs 384 threads" in gpu_limits.refusal(117, 4, limits)


def test_static_shared_memory_is_left_out_of_what_a_block_may_have():
    """The limit is the kernel's dynamic shared memory (opt-in less static): the forward is checked too."""
    forward = gpu_limits.KernelLimits(1024, 1024, 3072)  # 4 KB opt-in less 1 KB static
    limits = gpu_limits.DeviceLimits(forward, gpu_limits.KernelLimits(1024, 0, 10**9))
    assert gpu_limits.forward_shared_bytes(12, 4) <= 3072 < gpu_limits.forward_shared_bytes(16, 4)
    assert gpu_limits.refusal(12, 4, limits) is None
    assert gpu_limits.refusal(16, 4, limits).startswith("the forward kernel needs 64 threads and 3744 bytes")


@pytest.mark.parametrize("head_dim, stride", [(4, 24), (5, 20), (16, 52), (32, 100), (64, 198), (96, 294)])
def test_backward_rows_are_padded_to_an_odd_multiple_of_the_reducing_lanes(head_dim, stride):
    # Lanes per row: 8 (E=4), 4 (E=5, 16, 32), 2 (E=64, 96); M = 3E + 4 = 16, 19, 52, 100, 196, 292.
    columns = 3 * head_dim + gpu_limits.NUM_RATES
    expected = 4 * (2 * head_dim * stride + 6 * head_dim + 4 * columns + 2 * gpu_limits.NUM_RATES)
    assert gpu_limits.backward_shared_bytes(head_dim, 4) == expected


@pytest.mark.parametrize("itemsize", [4, 8])
def test_padded_rows_make_the_row_reductions_free_of_bank_conflicts(itemsize):
    """Each step of the kernel's row reductions: a warp's lanes hit distinct banks (or one address)."""
    words, lanes_per_request = itemsize // 4, 32 * 4 // itemsize  # 8-byte elements: half-warp requests
    for head_dim in range(1, 97):
        columns = 3 * head_dim + gpu_limits.NUM_RATES
        lanes = gpu_limits._reduction_lanes(head_dim)
        stride = gpu_limits._padded_row_stride(columns, lanes)
        for first in range(0, gpu_limits.threads_per_block(head_dim), lanes_per_request):
            for step in range(-(-columns // lanes)):
                addresses = {
                    (m // lanes) * stride + m % lanes + step * lanes
                    for m in range(first, first + lanes_per_request)
                    if m // lanes < head_dim and m % lanes + step * lanes < columns
                }
                banks = [(address * words) % 32 for address in addresses]
                assert len(set(banks)) == len(banks), (head_dim, itemsize, first, step)

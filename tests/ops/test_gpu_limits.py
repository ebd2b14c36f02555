"""`kerasrwm.ops.gpu_limits`: device limits and the head_dim bound they give."""

import pytest

from kerasrwm.ops import gpu_limits


def test_unlisted_gpu_gets_the_limit_every_gpu_allows():
    assert gpu_limits.shared_memory_limit((9, 0)) == 227 * 1024
    assert gpu_limits.shared_memory_limit((7, 5)) == 64 * 1024
    assert gpu_limits.shared_memory_limit((3, 5)) == gpu_limits.DEFAULT_SHARED_MEMORY_BYTES


@pytest.mark.parametrize(
    "compute_capability, itemsize, largest",
    # float32 backward: 4 (2E S + 18E + 24) bytes, S the padded row stride (3E + 5 or 3E + 6 here);
    # float64 twice that.
    [((7, 5), 4, 50), ((8, 0), 4, 80), ((9, 0), 4, 95), ((8, 0), 8, 56), ((9, 0), 8, 67)],
)
def test_largest_head_dim_per_gpu(compute_capability, itemsize, largest):
    limit = gpu_limits.shared_memory_limit(compute_capability)
    assert gpu_limits.kernels_fit(largest, itemsize, limit)
    assert not gpu_limits.kernels_fit(largest + 1, itemsize, limit)


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
        for first in range(0, gpu_limits._threads(head_dim), lanes_per_request):
            for step in range(-(-columns // lanes)):
                addresses = {
                    (m // lanes) * stride + m % lanes + step * lanes
                    for m in range(first, first + lanes_per_request)
                    if m // lanes < head_dim and m % lanes + step * lanes < columns
                }
                banks = [(address * words) % 32 for address in addresses]
                assert len(set(banks)) == len(banks), (head_dim, itemsize, first, step)

"""`kerasrwm.ops.gpu_limits`: device limits and the head_dim bound they give."""

import pytest

from kerasrwm.ops import gpu_limits


def test_unlisted_gpu_gets_the_limit_every_gpu_allows():
    assert gpu_limits.shared_memory_limit((9, 0)) == 227 * 1024
    assert gpu_limits.shared_memory_limit((7, 5)) == 64 * 1024
    assert gpu_limits.shared_memory_limit((3, 5)) == gpu_limits.DEFAULT_SHARED_MEMORY_BYTES


@pytest.mark.parametrize(
    "compute_capability, itemsize, largest",
    # float32 backward: 4 (6E^2 + 26E + 24) bytes; float64 twice that.
    [((7, 5), 4, 50), ((8, 0), 4, 81), ((9, 0), 4, 96), ((8, 0), 8, 56), ((9, 0), 8, 67)],
)
def test_largest_head_dim_per_gpu(compute_capability, itemsize, largest):
    limit = gpu_limits.shared_memory_limit(compute_capability)
    assert gpu_limits.kernels_fit(largest, itemsize, limit)
    assert not gpu_limits.kernels_fit(largest + 1, itemsize, limit)

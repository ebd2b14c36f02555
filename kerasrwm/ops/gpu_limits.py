"""What the SRWM CUDA kernels need per block, and whether a GPU's compiled kernels can give it.

The kernels (`kernels/srwm_cuda.cu`) run one block per sequence, one thread per column of the
fast weights W [E, 3E + 4] (in whole warps), and keep W, and in the backward also its gradient, in
the dynamic shared memory of the block. What a block may have is asked of the device and of the
compiled kernel (`KerasRwm>SrwmGpuLimits`: `cudaFuncGetAttributes` and the opt-in shared memory
per block), since the threads per block are bounded by the registers the compiler gave the
kernel, not only by 1024. Free of TensorFlow.
"""

from typing import NamedTuple

NUM_RATES = 4
WARP_SIZE = 32


class KernelLimits(NamedTuple):
    """What one compiled kernel can launch with on one GPU."""

    max_threads_per_block: int  # cudaFuncAttributes.maxThreadsPerBlock (bounded by its registers)
    static_shared_bytes: int  # cudaFuncAttributes.sharedSizeBytes
    max_dynamic_shared_bytes: int  # the opt-in shared memory per block less the static


class DeviceLimits(NamedTuple):
    """The forward and backward kernels' `KernelLimits` of one dtype on one GPU."""

    forward: KernelLimits
    backward: KernelLimits


def forward_shared_bytes(head_dim, itemsize):
    """Dynamic shared memory of the forward kernel: W [E, 3E+4], x, the reads, q, k and beta."""
    columns = 3 * head_dim + NUM_RATES
    return itemsize * (head_dim * columns + head_dim + columns + 2 * head_dim + NUM_RATES)


def backward_shared_bytes(head_dim, itemsize):
    """Dynamic shared memory of the backward kernel: W and its gradient, six E- and four M-vectors.

    The rows of W and of its gradient are padded to the kernel's `PaddedRowStride`: an odd
    multiple of the lanes that reduce one row, for bank-conflict-free row reductions.
    """
    columns = 3 * head_dim + NUM_RATES
    stride = _padded_row_stride(columns, _reduction_lanes(head_dim))
    return itemsize * (2 * head_dim * stride + 6 * head_dim + 4 * columns + 2 * NUM_RATES)


def threads_per_block(head_dim):
    """Threads per block of both kernels: one per column of W, in whole warps."""
    return -(-(3 * head_dim + NUM_RATES) // WARP_SIZE) * WARP_SIZE


def _reduction_lanes(head_dim):
    """`ReductionLanes` of the kernels: lanes per row when max(E, 4) rows share the block's threads."""
    lanes = WARP_SIZE
    while lanes > 1 and lanes * max(head_dim, NUM_RATES) > threads_per_block(head_dim):
        lanes //= 2
    return lanes


def _padded_row_stride(columns, lanes):
    """`PaddedRowStride` of the kernels: the smallest odd multiple of `lanes` that is >= `columns`."""
    groups = -(-columns // lanes)
    return (groups if groups % 2 else groups + 1) * lanes


def refusal(head_dim, itemsize, limits):
    """Why the kernels cannot launch for `head_dim` on a GPU with `DeviceLimits` `limits`, or None if they can."""
    threads = threads_per_block(head_dim)
    needs = (
        ("forward", forward_shared_bytes(head_dim, itemsize), limits.forward),
        ("backward", backward_shared_bytes(head_dim, itemsize), limits.backward),
    )
    for name, shared_bytes, kernel in needs:
        if threads > kernel.max_threads_per_block or shared_bytes > kernel.max_dynamic_shared_bytes:
            return (
                f"the {name} kernel needs {threads} threads and {shared_bytes} bytes of shared memory per block; "
                f"on this GPU it can launch {kernel.max_threads_per_block} threads and "
                f"{kernel.max_dynamic_shared_bytes} bytes."
            )
    return None

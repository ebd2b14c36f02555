"""Shared memory the SRWM CUDA kernels need, and how much each GPU generation lets a block use.

The kernels (`kernels/srwm_cuda.cu`) keep the fast weights of one sequence, and in the backward
also their gradient, in the dynamic shared memory of one block, so head_dim is bounded by the
device's opt-in shared memory per block. Free of TensorFlow.
"""

NUM_RATES = 4
MAX_THREADS_PER_BLOCK = 1024
WARP_SIZE = 32

# cudaDevAttrMaxSharedMemoryPerBlockOptin by compute capability (CUDA C++ Programming Guide,
# "Technical Specifications per Compute Capability"): 96, 64, 163, 99 and 227 KB.
SHARED_MEMORY_OPTIN_BYTES = {
    (7, 0): 98304,
    (7, 2): 98304,
    (7, 5): 65536,
    (8, 0): 166912,
    (8, 6): 101376,
    (8, 7): 166912,
    (8, 9): 101376,
    (9, 0): 232448,
    (10, 0): 232448,
    (10, 3): 232448,
    (12, 0): 101376,
}
# What every CUDA GPU allows a block without opting in: the limit assumed for unlisted ones.
DEFAULT_SHARED_MEMORY_BYTES = 48 * 1024


def shared_memory_limit(compute_capability):
    """Opt-in shared memory per block in bytes of a GPU of `compute_capability` ((major, minor))."""
    return SHARED_MEMORY_OPTIN_BYTES.get(tuple(compute_capability), DEFAULT_SHARED_MEMORY_BYTES)


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


def _threads(head_dim):
    """Threads per block of both kernels: one per column of W, in whole warps."""
    return -(-(3 * head_dim + NUM_RATES) // WARP_SIZE) * WARP_SIZE


def _reduction_lanes(head_dim):
    """`ReductionLanes` of the kernels: lanes per row when max(E, 4) rows share the block's threads."""
    lanes = WARP_SIZE
    while lanes > 1 and lanes * max(head_dim, NUM_RATES) > _threads(head_dim):
        lanes //= 2
    return lanes


def _padded_row_stride(columns, lanes):
    """`PaddedRowStride` of the kernels: the smallest odd multiple of `lanes` that is >= `columns`."""
    groups = -(-columns // lanes)
    return (groups if groups % 2 else groups + 1) * lanes


def kernels_fit(head_dim, itemsize, limit):
    """True if both kernels can launch for `head_dim` on a GPU allowing `limit` bytes per block."""
    needed = max(forward_shared_bytes(head_dim, itemsize), backward_shared_bytes(head_dim, itemsize))
    return _threads(head_dim) <= MAX_THREADS_PER_BLOCK and needed <= limit

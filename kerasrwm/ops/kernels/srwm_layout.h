// Sizes, pointer bundles and memory layouts of the fused SRWM ops, shared by the shape
// functions, the CPU kernels and the CUDA kernels. Free of TensorFlow and of CUDA headers.
//
// One head of one sequence is a "sequence" s = batch_index * heads + head. Its four matrices
// W_y, W_q, W_k ([E, E]) and w_b ([E, 4]) are handled as one matrix W of shape
// [E, 3E + 4] whose columns are y, q, k, b (row vector convention: a read is x W).
#ifndef KERASRWM_OPS_KERNELS_SRWM_LAYOUT_H_
#define KERASRWM_OPS_KERNELS_SRWM_LAYOUT_H_

#include <cstdint>

#if defined(__CUDACC__)
#define SRWM_HOST_DEVICE __host__ __device__
#else
#define SRWM_HOST_DEVICE
#endif

namespace kerasrwm {

constexpr int kNumRates = 4;  // beta scales the y, q, k and b columns respectively.
constexpr int kPackBytes = 32;

// Sequences are stored interleaved in packs of `PackLanes<T>()` (one 256-bit SIMD register of
// T), so that the CPU kernel processes a pack with one SIMD lane per sequence. 256 bits rather
// than 512: the fast weights of a pack at head_dim 16 (26.6 KB in float32) then fit in L1.
template <typename T>
SRWM_HOST_DEVICE constexpr int PackLanes() {
  return kPackBytes / static_cast<int>(sizeof(T));
}

SRWM_HOST_DEVICE constexpr int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

SRWM_HOST_DEVICE constexpr int64_t NumColumns(int64_t head_dim) { return 3 * head_dim + kNumRates; }

// Index of the learning rate that scales column `column` of W.
SRWM_HOST_DEVICE constexpr int RateOfColumn(int64_t column, int64_t head_dim) {
  return column < 3 * head_dim ? static_cast<int>(column / head_dim) : 3;
}

// What the forward saves per step t for the backward ("trace"), in this order:
// q_t (E), k_t (E), beta_t (4) and the difference d_t = (q_t - k_t) W_{t-1} (3E + 4).
SRWM_HOST_DEVICE constexpr int64_t TraceQuery(int64_t) { return 0; }
SRWM_HOST_DEVICE constexpr int64_t TraceKey(int64_t head_dim) { return head_dim; }
SRWM_HOST_DEVICE constexpr int64_t TraceRate(int64_t head_dim) { return 2 * head_dim; }
SRWM_HOST_DEVICE constexpr int64_t TraceDifference(int64_t head_dim) { return 2 * head_dim + kNumRates; }
SRWM_HOST_DEVICE constexpr int64_t TraceSize(int64_t head_dim) {
  return TraceDifference(head_dim) + NumColumns(head_dim);
}

// Number of saved weight checkpoints: W after steps C, 2C, ... and after the last step L.
SRWM_HOST_DEVICE constexpr int64_t NumCheckpoints(int64_t length, int64_t interval) {
  return CeilDiv(length, interval);
}

struct SrwmSizes {
  int64_t batch;
  int64_t length;
  int64_t heads;
  int64_t head_dim;
  int64_t checkpoint_interval;
  int lanes;  // PackLanes<T>() of the element type.

  SRWM_HOST_DEVICE int64_t sequences() const { return batch * heads; }
  SRWM_HOST_DEVICE int64_t packs() const { return CeilDiv(sequences(), lanes); }
  SRWM_HOST_DEVICE int64_t columns() const { return NumColumns(head_dim); }
  SRWM_HOST_DEVICE int64_t trace_size() const { return TraceSize(head_dim); }
  SRWM_HOST_DEVICE int64_t checkpoints() const { return NumCheckpoints(length, checkpoint_interval); }

  // x, y: [batch, length, heads, head_dim].
  SRWM_HOST_DEVICE int64_t InputIndex(int64_t sequence, int64_t t, int64_t e) const {
    const int64_t b = sequence / heads, h = sequence % heads;
    return ((b * length + t) * heads + h) * head_dim + e;
  }
  // Stride between consecutive steps of one sequence in x and y.
  SRWM_HOST_DEVICE int64_t InputStepStride() const { return heads * head_dim; }
  // Element (row, column) of W in the separate weight tensors: `matrix` is 0..3 for
  // y, q, k, b; w_y, w_q, w_k are [batch, heads, E, E] and w_b is [batch, heads, E, 4].
  SRWM_HOST_DEVICE int64_t WeightIndex(int64_t sequence, int64_t row, int64_t column,
                                       int* matrix) const {
    *matrix = RateOfColumn(column, head_dim);
    const int64_t width = *matrix < 3 ? head_dim : kNumRates;
    return (sequence * head_dim + row) * width + (column - *matrix * head_dim);
  }
  // The CPU kernels' ("packed") layout of the trace and checkpoints, one SIMD lane per sequence
  // of a pack. trace: [packs, length, TraceSize(E), lanes].
  SRWM_HOST_DEVICE int64_t TraceIndex(int64_t sequence, int64_t t, int64_t field) const {
    return (((sequence / lanes) * length + t) * trace_size() + field) * lanes + sequence % lanes;
  }
  // checkpoints: [packs, NumCheckpoints, E, 3E + 4, lanes].
  SRWM_HOST_DEVICE int64_t CheckpointIndex(int64_t sequence, int64_t checkpoint, int64_t row,
                                           int64_t column) const {
    return ((((sequence / lanes) * checkpoints() + checkpoint) * head_dim + row) * columns() +
            column) * lanes + sequence % lanes;
  }
  // The CUDA kernels' layout of the same two tensors (same sizes, other order): sequence by
  // sequence, with the field (trace) or column (checkpoints) innermost, so that the values the
  // consecutive threads of a block write or read at one step (thread m: field or column m) are
  // consecutive in memory, where the packed layout puts them `lanes` elements apart. The trace is
  // [packs, lanes, length, TraceSize(E)] and the checkpoints [packs, lanes, NumCheckpoints, E,
  // 3E + 4]: sequence = pack * lanes + lane; the padding sequences of the last pack are unused.
  SRWM_HOST_DEVICE int64_t GpuTraceIndex(int64_t sequence, int64_t t, int64_t field) const {
    return (sequence * length + t) * trace_size() + field;
  }
  SRWM_HOST_DEVICE int64_t GpuCheckpointIndex(int64_t sequence, int64_t checkpoint, int64_t row,
                                              int64_t column) const {
    return ((sequence * checkpoints() + checkpoint) * head_dim + row) * columns() + column;
  }
  // Step (1-based count of updates) after which checkpoint j holds W.
  SRWM_HOST_DEVICE int64_t CheckpointStep(int64_t checkpoint) const {
    const int64_t step = (checkpoint + 1) * checkpoint_interval;
    return step < length ? step : length;
  }
};

// The four weight tensors of one kind (initial, final or their gradients), in y, q, k, b order.
template <typename Pointer>
struct WeightPointers {
  Pointer matrices[kNumRates];
};

template <typename T>
struct SrwmForwardArgs {
  const T* x;                          // [batch, length, heads, E]
  WeightPointers<const T*> initial;    // initial W_y, W_q, W_k, w_b
  T* y;                                // [batch, length, heads, E]
  WeightPointers<T*> final_weights;    // weights after the last step
  T* trace;                            // see TraceIndex (CPU), GpuTraceIndex (CUDA)
  T* checkpoints;                      // see CheckpointIndex (CPU), GpuCheckpointIndex (CUDA)
};

template <typename T>
struct SrwmBackwardArgs {
  const T* x;
  const T* trace;
  const T* checkpoints;
  const T* grad_y;                           // [batch, length, heads, E]
  WeightPointers<const T*> grad_final;       // upstream gradients of the final weights
  T* grad_x;                                 // [batch, length, heads, E]
  WeightPointers<T*> grad_initial;           // gradients of the initial weights
};

}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_LAYOUT_H_

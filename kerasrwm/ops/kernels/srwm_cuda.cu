// CUDA kernels of the SRWM recurrence: one block per sequence (head of one batch element),
// time fully sequential inside the block. Thread m owns column m of the fast weights
// W [E][3E + 4] (and of their gradient G in the backward), which live in shared memory, so the
// reads x W, the rank-1 updates and their reversal need no atomics. The backward's row reductions
// over the columns are split over groups of lanes that add up with warp shuffles, on rows padded
// against shared-memory bank conflicts (PaddedRowStride). Same algorithm and saved data as the
// CPU kernels (srwm_cpu.h): trace of q, k, beta, d per step and weight checkpoints, in the GPU
// layout of srwm_layout.h (GpuTraceIndex, GpuCheckpointIndex), where thread m's field or column
// at a step lies next to thread m + 1's.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "srwm_cuda.h"

namespace kerasrwm {
namespace cuda {
namespace {

template <typename T>
__device__ T Sigmoid(T value) {
  return T(1) / (T(1) + exp(-value));
}

constexpr int kWarpSize = 32;
constexpr unsigned kFullWarp = 0xffffffffu;

// Sum of `value` over each aligned group of `lanes` lanes (a power of two up to the warp size);
// every lane of a group gets its group's sum. Called by every lane of the warp.
template <typename T>
__device__ T GroupSum(T value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) value += __shfl_xor_sync(kFullWarp, value, offset);
  return value;
}

// GroupSum with max in place of the sum.
template <typename T>
__device__ T GroupMax(T value, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) value = max(value, __shfl_xor_sync(kFullWarp, value, offset));
  return value;
}

// Lanes given to each of `rows` rows of a reduction split over a block of `threads` threads (a
// multiple of the warp size): the largest power of two up to the warp size such that every row
// has its own group of lanes, or 1 when there are more rows than threads.
__host__ __device__ int LanesPerRow(int rows, int threads) {
  int lanes = kWarpSize;
  while (lanes > 1 && lanes * rows > threads) lanes /= 2;
  return lanes;
}

// Lanes per row of the backward's row reductions: the E rows of W and G, whose first four groups
// of lanes also sum the terms of one rate each.
__host__ __device__ int ReductionLanes(int head_dim, int threads) {
  return LanesPerRow(head_dim > kNumRates ? head_dim : kNumRates, threads);
}

// Row stride of W and G in the backward's shared memory: at least `columns`, and an odd multiple
// of `lanes`, so that the rows that the groups of a warp read at once start in different banks
// and the groups' consecutive columns never share a bank (4-byte banks; 8-byte elements are
// served per half-warp, where the same holds).
__host__ __device__ int PaddedRowStride(int columns, int lanes) {
  const int groups = (columns + lanes - 1) / lanes;
  return (groups % 2 == 1 ? groups : groups + 1) * lanes;
}

// Offsets of one sequence's data in the tensors of srwm_layout.h (the trace and checkpoints in
// their GPU layout), taken once per block from its index functions, so that the step loop
// addresses memory without 64-bit division or modulo.
struct SequenceOffsets {
  int64_t input, input_step;                              // x, y, grad_x, grad_y
  int64_t trace, trace_step, trace_field;                 // trace
  int64_t checkpoint, checkpoint_step, checkpoint_row, checkpoint_column;

  __device__ SequenceOffsets(const SrwmSizes& sizes, int64_t sequence)
      : input(sizes.InputIndex(sequence, 0, 0)),
        input_step(sizes.InputStepStride()),
        trace(sizes.GpuTraceIndex(sequence, 0, 0)),
        trace_step(sizes.GpuTraceIndex(sequence, 1, 0) - trace),
        trace_field(sizes.GpuTraceIndex(sequence, 0, 1) - trace),
        checkpoint(sizes.GpuCheckpointIndex(sequence, 0, 0, 0)),
        checkpoint_step(sizes.GpuCheckpointIndex(sequence, 1, 0, 0) - checkpoint),
        checkpoint_row(sizes.GpuCheckpointIndex(sequence, 0, 1, 0) - checkpoint),
        checkpoint_column(sizes.GpuCheckpointIndex(sequence, 0, 0, 1) - checkpoint) {}

  __device__ int64_t Input(int64_t t, int e) const { return input + t * input_step + e; }
  __device__ int64_t Trace(int64_t t, int64_t field) const { return trace + t * trace_step + field * trace_field; }
  __device__ int64_t Checkpoint(int64_t j, int row, int column) const {
    return checkpoint + j * checkpoint_step + row * checkpoint_row + column * checkpoint_column;
  }
};

// Where column `column` of W lies in the separate weight tensors (WeightIndex, once per thread).
struct ColumnOfWeights {
  int matrix;
  int64_t first, row_stride;

  __device__ ColumnOfWeights(const SrwmSizes& sizes, int64_t sequence, int column)
      : first(sizes.WeightIndex(sequence, 0, column, &matrix)),
        row_stride(sizes.WeightIndex(sequence, 1, column, &matrix) - first) {}

  __device__ int64_t Row(int e) const { return first + e * row_stride; }
};

int64_t Threads(const SrwmSizes& sizes) { return (sizes.columns() + 31) / 32 * 32; }

// No __launch_bounds__: with nvcc 13 for sm_90 the backward uses 173 (float32) and 182 (float64)
// registers and no spills, which lets a block have 352 threads, more than the 320 of head_dim 95,
// the largest whose float32 backward fits the 227 KB of shared memory a Hopper block may use.
// Bounds of 288 or 320 threads cut that to 168 registers with 16-40 bytes of spills. Launch()
// checks each block against what the compiled kernel allows (cudaFuncGetAttributes).

template <typename T>
size_t ForwardSharedBytes(const SrwmSizes& sizes) {
  const int64_t E = sizes.head_dim, M = sizes.columns();
  return sizeof(T) * (E * M + E + M + 2 * E + kNumRates);
}

template <typename T>
size_t BackwardSharedBytes(const SrwmSizes& sizes) {
  const int64_t E = sizes.head_dim, M = sizes.columns();
  const int64_t stride = PaddedRowStride(static_cast<int>(M), ReductionLanes(static_cast<int>(E), static_cast<int>(Threads(sizes))));
  return sizeof(T) * (2 * E * stride + 6 * E + 4 * M + 2 * kNumRates);
}

template <typename T>
__global__ void SrwmForwardKernel(SrwmSizes sizes, SrwmForwardArgs<T> args) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int E = static_cast<int>(sizes.head_dim), M = static_cast<int>(sizes.columns()), m = threadIdx.x;
  const int64_t L = sizes.length, C = sizes.checkpoint_interval, sequence = blockIdx.x;
  const SequenceOffsets at(sizes, sequence);
  const bool owner = m < M;
  const int rate = owner ? RateOfColumn(m, E) : 0;
  T* w = reinterpret_cast<T*>(shared_bytes);  // [E][M]
  T* x = w + E * M;                           // [E]
  T* reads = x + E;                           // [M] = x W
  T* query_key = reads + M;                   // [2E] = q, k
  T* beta = query_key + 2 * E;                // [4]
  const T* q = query_key;
  const T* k = query_key + E;
  const int softmax_lanes = LanesPerRow(2, blockDim.x);

  const ColumnOfWeights weights(sizes, sequence, owner ? m : 0);
  if (owner) {
    for (int e = 0; e < E; ++e) w[e * M + m] = args.initial.matrices[weights.matrix][weights.Row(e)];
  }
  if (m < E) x[m] = args.x[at.Input(0, m)];
  int64_t checkpoint = 0, steps_to_checkpoint = C;
  for (int64_t t = 0; t < L; ++t) {
    __syncthreads();
    // x_{t+1}, loaded now and stored once this step's reads of x are done (after the next barrier).
    const T next_x = m < E && t + 1 < L ? args.x[at.Input(t + 1, m)] : T(0);
    if (owner) {
      T total = 0;
      for (int e = 0; e < E; ++e) total += x[e] * w[e * M + m];
      reads[m] = total;
    }
    __syncthreads();
    if (m < E) args.y[at.Input(t, m)] = reads[m];
    if (owner && rate == 3) {
      beta[m - 3 * E] = Sigmoid(reads[m]);
      args.trace[at.Trace(t, TraceRate(E) + m - 3 * E)] = beta[m - 3 * E];
    }
    // q and k: the softmax of reads[E, 2E) and of reads[2E, 3E), each over a group of lanes that
    // takes its maximum and sum once, with shuffles.
    if (m < 2 * softmax_lanes) {
      const bool is_key = m >= softmax_lanes;
      const int lane = m & (softmax_lanes - 1), first = is_key ? E : 0;
      const T* logits = reads + E + first;
      T maximum = logits[0];
      for (int i = lane; i < E; i += softmax_lanes) maximum = max(maximum, logits[i]);
      maximum = GroupMax(maximum, softmax_lanes);
      T total = 0;
      for (int i = lane; i < E; i += softmax_lanes) total += exp(logits[i] - maximum);
      total = GroupSum(total, softmax_lanes);
      for (int i = lane; i < E; i += softmax_lanes) {
        const T value = exp(logits[i] - maximum) / total;
        query_key[first + i] = value;
        args.trace[at.Trace(t, (is_key ? TraceKey(E) : TraceQuery(E)) + i)] = value;
      }
    }
    __syncthreads();
    if (m < E) x[m] = next_x;
    --steps_to_checkpoint;
    if (owner) {
      T difference = 0;
      for (int e = 0; e < E; ++e) difference += (q[e] - k[e]) * w[e * M + m];
      args.trace[at.Trace(t, TraceDifference(E) + m)] = difference;
      const T update = beta[rate] * difference;
      for (int e = 0; e < E; ++e) w[e * M + m] += k[e] * update;
      if (steps_to_checkpoint == 0 || t + 1 == L) {
        for (int e = 0; e < E; ++e) args.checkpoints[at.Checkpoint(checkpoint, e, m)] = w[e * M + m];
      }
    }
    if (steps_to_checkpoint == 0) {
      ++checkpoint;
      steps_to_checkpoint = C;
    }
  }
  if (owner) {
    for (int e = 0; e < E; ++e) args.final_weights.matrices[weights.matrix][weights.Row(e)] = w[e * M + m];
  }
}

// What step t of the backward reads from global memory, held by the threads that load it: x_t,
// grad_y_t, q_t, k_t (thread e < E loads element e), beta_t (threads < 4) and the difference d_t
// (each column's owner).
template <typename T>
struct BackwardStepInputs {
  T x = 0, grad_y = 0, q = 0, k = 0, beta = 0, difference = 0;

  __device__ void Load(const SrwmBackwardArgs<T>& args, const SequenceOffsets& at, int64_t t, int m, int E, int M) {
    if (m < E) {
      x = args.x[at.Input(t, m)];
      grad_y = args.grad_y[at.Input(t, m)];
      q = args.trace[at.Trace(t, TraceQuery(E) + m)];
      k = args.trace[at.Trace(t, TraceKey(E) + m)];
    }
    if (m < kNumRates) beta = args.trace[at.Trace(t, TraceRate(E) + m)];
    if (m < M) difference = args.trace[at.Trace(t, TraceDifference(E) + m)];
  }

  // Stores what other threads read into shared memory; grad_y and the difference stay with the
  // only thread that reads them.
  __device__ void Share(int m, int E, T* x_shared, T* q_shared, T* k_shared, T* beta_shared) const {
    if (m < E) {
      x_shared[m] = x;
      q_shared[m] = q;
      k_shared[m] = k;
    }
    if (m < kNumRates) beta_shared[m] = beta;
  }
};

template <typename T>
__global__ void SrwmBackwardKernel(SrwmSizes sizes, SrwmBackwardArgs<T> args) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const int E = static_cast<int>(sizes.head_dim), M = static_cast<int>(sizes.columns()), m = threadIdx.x;
  const int64_t L = sizes.length, C = sizes.checkpoint_interval, sequence = blockIdx.x;
  const SequenceOffsets at(sizes, sequence);
  const bool owner = m < M;
  const int rate = owner ? RateOfColumn(m, E) : 0;
  // Row reductions: row r (< E) and rate r (< 4) on the group of `lanes` lanes from r * lanes.
  const int lanes = ReductionLanes(E, blockDim.x), S = PaddedRowStride(M, lanes);
  const int row = m / lanes, row_lane = m & (lanes - 1), rows = E > kNumRates ? E : kNumRates;
  const bool warp_reduces = (m & ~(kWarpSize - 1)) / lanes < rows;
  T* w = reinterpret_cast<T*>(shared_bytes);  // [E][S] W, columns [0, M) used
  T* g = w + E * S;                           // [E][S] dL/dW, columns [0, M) used
  // x, q and k of step t and t - 1 alternate between two buffers; the dL/dq, dL/dk of step t use
  // the buffer that receives q, k of step t - 1, which is filled only after they are read.
  T* x_buffers = g + E * S;                   // [2][E] x
  T* vector_buffers = x_buffers + 2 * E;      // [2][2E] (q, k) of one step, (dL/dq, dL/dk) of the other
  T* update = vector_buffers + 4 * E;         // [M] beta (per column) * d
  T* grad_difference = update + M;            // [M]
  T* rate_terms = grad_difference + M;        // [M] dL/dupdate * d, summed per rate
  T* grad_reads = rate_terms + M;             // [M] dL/d(x W)
  T* beta = grad_reads + M;                   // [4]
  T* grad_beta = beta + kNumRates;            // [4]
  const int softmax_lanes = LanesPerRow(2, blockDim.x);

  const ColumnOfWeights weights(sizes, sequence, owner ? m : 0);
  if (owner) {
    for (int e = 0; e < E; ++e) {
      w[e * S + m] = args.checkpoints[at.Checkpoint(sizes.checkpoints() - 1, e, m)];
      g[e * S + m] = args.grad_final.matrices[weights.matrix][weights.Row(e)];
    }
  }
  int buffer = 0;
  BackwardStepInputs<T> now;
  now.Load(args, at, L - 1, m, E, M);
  now.Share(m, E, x_buffers, vector_buffers, vector_buffers + E, beta);
  __syncthreads();
  // W_{t-1} is restored from checkpoint j - 1 at step t = j C (0 < t < L).
  int64_t restore_checkpoint = (L - 1) / C - 1, restore_step = (restore_checkpoint + 1) * C;
  for (int64_t t = L - 1; t >= 0; --t) {
    const T* x = x_buffers + buffer * E;
    const T* q = vector_buffers + buffer * 2 * E;
    const T* k = q + E;
    T* grad_query = vector_buffers + (1 - buffer) * 2 * E;
    T* grad_key = grad_query + E;
    // Step t - 1's inputs, loaded now and shared once this step has read the buffers they replace.
    BackwardStepInputs<T> next;
    if (t > 0) next.Load(args, at, t - 1, m, E, M);
    // Revert W_t = W_{t-1} + outer(k, update) and take dL/dupdate = k G.
    const bool restore = t == restore_step && t > 0;
    if (owner) {
      const T difference = now.difference;
      const T column_beta = beta[rate];
      const T column_update = column_beta * difference;
      T grad_update = 0;
      for (int e = 0; e < E; ++e) {
        w[e * S + m] -= k[e] * column_update;
        grad_update += k[e] * g[e * S + m];
      }
      if (restore) {
        for (int e = 0; e < E; ++e) w[e * S + m] = args.checkpoints[at.Checkpoint(restore_checkpoint, e, m)];
      }
      update[m] = column_update;
      grad_difference[m] = column_beta * grad_update;
      rate_terms[m] = grad_update * difference;
    }
    if (restore) {
      --restore_checkpoint;
      restore_step -= C;
    }
    __syncthreads();
    // Row reductions, each row on its group of lanes: row e takes k as the outer-product key
    // (G update) and (q - k) through W_{t-1}; group r < 4 also sums the terms of rate r's columns.
    if (warp_reduces) {
      T outer = 0, through_w = 0, rate_total = 0;
      if (row < E) {
        for (int c = row_lane; c < M; c += lanes) {
          outer += g[row * S + c] * update[c];
          through_w += w[row * S + c] * grad_difference[c];
        }
      }
      if (row < kNumRates) {
        // Columns of rate r: [r E, (r + 1) E) for y, q, k; [3E, 3E + 4) for b.
        const int end = row < 3 ? (row + 1) * E : M;
        for (int c = row * E + row_lane; c < end; c += lanes) rate_total += rate_terms[c];
      }
      outer = GroupSum(outer, lanes);
      through_w = GroupSum(through_w, lanes);
      rate_total = GroupSum(rate_total, lanes);
      if (row_lane == 0 && row < E) {
        grad_query[row] = through_w;
        grad_key[row] = outer - through_w;
      }
      if (row_lane == 0 && row < kNumRates) grad_beta[row] = rate_total;
    }
    __syncthreads();
    // dL/d(x W_{t-1}): y directly, beta through sigmoid, q and k through softmax, each softmax
    // over a group of lanes that takes its inner product once, with shuffles.
    if (owner && rate == 0) grad_reads[m] = now.grad_y;
    if (owner && rate == 3) {
      const T b = beta[m - 3 * E];
      grad_reads[m] = grad_beta[m - 3 * E] * b * (1 - b);
    }
    if (m < 2 * softmax_lanes) {
      const bool is_key = m >= softmax_lanes;
      const int lane = m & (softmax_lanes - 1);
      const T* probabilities = is_key ? k : q;
      const T* grad = is_key ? grad_key : grad_query;
      T inner = 0;
      for (int i = lane; i < E; i += softmax_lanes) inner += probabilities[i] * grad[i];
      inner = GroupSum(inner, softmax_lanes);
      T* grad_logits = grad_reads + (is_key ? 2 * E : E);
      for (int i = lane; i < E; i += softmax_lanes) grad_logits[i] = probabilities[i] * (grad[i] - inner);
    }
    __syncthreads();
    // G becomes dL/dW_{t-1}, and dL/dx_t = W_{t-1} grad_reads (a row reduction).
    if (owner) {
      for (int e = 0; e < E; ++e) {
        g[e * S + m] += (q[e] - k[e]) * grad_difference[m] + x[e] * grad_reads[m];
      }
    }
    if (warp_reduces) {
      T total = 0;
      if (row < E) {
        for (int c = row_lane; c < M; c += lanes) total += w[row * S + c] * grad_reads[c];
      }
      total = GroupSum(total, lanes);
      if (row_lane == 0 && row < E) args.grad_x[at.Input(t, row)] = total;
    }
    // beta was last read before the previous barrier; x, q, k go to the other buffers.
    if (t > 0) next.Share(m, E, x_buffers + (1 - buffer) * E, grad_query, grad_key, beta);
    now = next;
    buffer = 1 - buffer;
    __syncthreads();
  }
  if (owner) {
    for (int e = 0; e < E; ++e) args.grad_initial.matrices[weights.matrix][weights.Row(e)] = g[e * S + m];
  }
}

std::string ErrorString(cudaError_t error) {
  return error == cudaSuccess ? std::string() : std::string(cudaGetErrorString(error));
}

// The largest dynamic shared memory a block may opt in to on `device`, queried once per device.
cudaError_t SharedMemoryLimit(int device, int* limit) {
  static std::mutex mutex;
  static std::map<int, int> limits;
  std::lock_guard<std::mutex> lock(mutex);
  const auto known = limits.find(device);
  if (known != limits.end()) {
    *limit = known->second;
    return cudaSuccess;
  }
  const cudaError_t error = cudaDeviceGetAttribute(limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (error == cudaSuccess) limits[device] = *limit;
  return error;
}

// What `kernel` can launch with on `device`, whose opt-in shared memory per block is `limit`.
template <typename Kernel>
cudaError_t LimitsOf(Kernel kernel, int limit, KernelLimits* limits) {
  cudaFuncAttributes attributes;
  const cudaError_t error = cudaFuncGetAttributes(&attributes, kernel);
  if (error != cudaSuccess) return error;
  limits->max_threads_per_block = attributes.maxThreadsPerBlock;
  limits->static_shared_bytes = static_cast<int>(attributes.sharedSizeBytes);
  limits->max_dynamic_shared_bytes = limit - limits->static_shared_bytes;
  return cudaSuccess;
}

// Lets `kernel` use all the dynamic shared memory of `limits`. Done once per device and kernel,
// to the device's limit, so that concurrent launches with different head_dim never lower it.
template <typename Kernel>
cudaError_t AllowAllSharedMemory(Kernel kernel, int device, const KernelLimits& limits) {
  static std::mutex mutex;
  static std::set<std::pair<const void*, int>> allowed;
  std::lock_guard<std::mutex> lock(mutex);
  const std::pair<const void*, int> key(reinterpret_cast<const void*>(kernel), device);
  if (allowed.count(key)) return cudaSuccess;
  const cudaError_t error =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limits.max_dynamic_shared_bytes);
  if (error == cudaSuccess) allowed.insert(key);
  return error;
}

// Launches `kernel` with one block per sequence after checking that the block fits the compiled
// kernel on this device (threads per block and shared memory).
template <typename Args>
std::string Launch(void (*kernel)(SrwmSizes, Args), const SrwmSizes& sizes, const Args& args, size_t bytes,
                   void* stream) {
  if (sizes.sequences() == 0) return "";
  int device, limit;
  KernelLimits limits;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = SharedMemoryLimit(device, &limit);
  if (error == cudaSuccess) error = LimitsOf(kernel, limit, &limits);
  if (error != cudaSuccess) return ErrorString(error);
  if (Threads(sizes) > limits.max_threads_per_block || bytes > static_cast<size_t>(limits.max_dynamic_shared_bytes)) {
    return "head_dim " + std::to_string(sizes.head_dim) + " needs " + std::to_string(Threads(sizes)) +
           " threads and " + std::to_string(bytes) + " bytes of dynamic shared memory per block; this kernel "
           "allows " + std::to_string(limits.max_threads_per_block) + " threads and " +
           std::to_string(limits.max_dynamic_shared_bytes) +
           " bytes on this GPU. Use the loop implementation or a smaller head_dim.";
  }
  error = AllowAllSharedMemory(kernel, device, limits);
  if (error != cudaSuccess) return ErrorString(error);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(sizes.sequences()));
  config.blockDim = dim3(static_cast<unsigned>(Threads(sizes)));
  config.dynamicSmemBytes = bytes;
  config.stream = static_cast<cudaStream_t>(stream);
  return ErrorString(cudaLaunchKernelEx(&config, kernel, sizes, args));
}

}  // namespace

template <typename T>
std::string LaunchSrwmForward(const SrwmSizes& sizes, const SrwmForwardArgs<T>& args,
                              void* stream) {
  return Launch(SrwmForwardKernel<T>, sizes, args, ForwardSharedBytes<T>(sizes), stream);
}

template <typename T>
std::string LaunchSrwmBackward(const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args,
                               void* stream) {
  return Launch(SrwmBackwardKernel<T>, sizes, args, BackwardSharedBytes<T>(sizes), stream);
}

template <typename T>
std::string SrwmKernelLimits(KernelLimits* forward, KernelLimits* backward) {
  int device, limit;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = SharedMemoryLimit(device, &limit);
  if (error == cudaSuccess) error = LimitsOf(SrwmForwardKernel<T>, limit, forward);
  if (error == cudaSuccess) error = LimitsOf(SrwmBackwardKernel<T>, limit, backward);
  return ErrorString(error);
}

template std::string SrwmKernelLimits<float>(KernelLimits*, KernelLimits*);
template std::string SrwmKernelLimits<double>(KernelLimits*, KernelLimits*);
template std::string LaunchSrwmForward<float>(const SrwmSizes&, const SrwmForwardArgs<float>&, void*);
template std::string LaunchSrwmForward<double>(const SrwmSizes&, const SrwmForwardArgs<double>&, void*);
template std::string LaunchSrwmBackward<float>(const SrwmSizes&, const SrwmBackwardArgs<float>&, void*);
template std::string LaunchSrwmBackward<double>(const SrwmSizes&, const SrwmBackwardArgs<double>&, void*);

}  // namespace cuda
}  // namespace kerasrwm

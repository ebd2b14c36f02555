// C entry point over the SRWM CUDA kernels compiled by g++ against the emulation header
// (cuda_runtime.h beside this file), for tests/tf_ops/test_srwm_cuda_emulation.py. "Device"
// pointers are host pointers here, so the launchers take the caller's arrays directly.
#include "cuda_runtime.h"
#include "srwm_cuda.cu"  // the unchanged kernel source, found through -I

#include <cstdio>
#include <cstring>

namespace kerasrwm {
namespace cuda {
namespace {

// Storage of the kernels' `extern __shared__ unsigned char shared_bytes[]`: the largest opt-in
// shared memory of any GPU (227 KB); the emulation refuses launches above the emulated limit.
alignas(16) unsigned char shared_bytes[232448];

}  // namespace
}  // namespace cuda
}  // namespace kerasrwm

namespace {

template <typename T>
std::string ForwardBackward(const int64_t* shape, const void* const* inputs, void* const* outputs) {
  using namespace kerasrwm;
  const SrwmSizes sizes{shape[0], shape[1], shape[2], shape[3], shape[4], PackLanes<T>()};
  auto in = [&](int i) { return static_cast<const T*>(inputs[i]); };
  auto out = [&](int i) { return static_cast<T*>(outputs[i]); };
  SrwmForwardArgs<T> forward{in(0), {}, out(0), {}, out(5), out(6)};
  SrwmBackwardArgs<T> backward{in(0), out(5), out(6), in(5), {}, out(7), {}};
  for (int i = 0; i < kNumRates; ++i) {
    forward.initial.matrices[i] = in(1 + i);
    forward.final_weights.matrices[i] = out(1 + i);
    backward.grad_final.matrices[i] = in(6 + i);
    backward.grad_initial.matrices[i] = out(8 + i);
  }
  std::string error = cuda::LaunchSrwmForward<T>(sizes, forward, nullptr);
  if (error.empty()) error = cuda::LaunchSrwmBackward<T>(sizes, backward, nullptr);
  return error;
}

// Copies the trace and checkpoints that the kernels wrote in their GPU layout (GpuTraceIndex,
// GpuCheckpointIndex) into [sequences, length, TraceSize(E)] and
// [sequences, NumCheckpoints, E, 3E + 4].
template <typename T>
void GpuSavedToSequences(const int64_t* shape, const T* trace, const T* checkpoints, T* trace_out,
                         T* checkpoints_out) {
  using namespace kerasrwm;
  const SrwmSizes sizes{shape[0], shape[1], shape[2], shape[3], shape[4], PackLanes<T>()};
  for (int64_t s = 0; s < sizes.sequences(); ++s) {
    for (int64_t t = 0; t < sizes.length; ++t) {
      for (int64_t f = 0; f < sizes.trace_size(); ++f) *trace_out++ = trace[sizes.GpuTraceIndex(s, t, f)];
    }
    for (int64_t j = 0; j < sizes.checkpoints(); ++j) {
      for (int64_t e = 0; e < sizes.head_dim; ++e) {
        for (int64_t c = 0; c < sizes.columns(); ++c) *checkpoints_out++ = checkpoints[sizes.GpuCheckpointIndex(s, j, e, c)];
      }
    }
  }
}

}  // namespace

extern "C" {

// Forward then backward of the kernels of `element_bytes` (4: float, 8: double).
// shape: batch, length, heads, head_dim, checkpoint_interval.
// inputs: x, w_y, w_q, w_k, w_b, grad_y, grad_w_y_final, ..., grad_w_b_final.
// outputs: y, w_y_final, ..., w_b_final, trace, checkpoints, grad_x, grad_w_y, ..., grad_w_b.
// order: 0 ascending, 1 descending, 2 random threads within each phase; skipped_line:
// the source line of the __syncthreads() or warp shuffle whose
// synchronization to leave out, or -1. Returns 0, or 1 with `error` set.
int emulated_srwm_forward_backward(int element_bytes, const int64_t* shape, const void* const* inputs,
                                   void* const* outputs, int order, uint64_t seed, int skipped_line,
                                   char* error, size_t error_size) {
  cuda_emulation::Emulation& state = cuda_emulation::State();
  state.shared = kerasrwm::cuda::shared_bytes;
  state.order = static_cast<cuda_emulation::Order>(order);
  state.random.seed(seed);
  state.skipped_line = skipped_line;
  state.failure.clear();
  std::string message = element_bytes == 4 ? ForwardBackward<float>(shape, inputs, outputs)
                                           : ForwardBackward<double>(shape, inputs, outputs);
  if (!state.failure.empty()) message += ": " + state.failure;
  std::snprintf(error, error_size, "%s", message.c_str());
  return message.empty() ? 0 : 1;
}

// GpuSavedToSequences for float (`element_bytes` 4) or double (8).
void emulated_gpu_saved_to_sequences(int element_bytes, const int64_t* shape, const void* trace,
                                     const void* checkpoints, void* trace_out, void* checkpoints_out) {
  if (element_bytes == 4) {
    GpuSavedToSequences(shape, static_cast<const float*>(trace), static_cast<const float*>(checkpoints),
                        static_cast<float*>(trace_out), static_cast<float*>(checkpoints_out));
  } else {
    GpuSavedToSequences(shape, static_cast<const double*>(trace), static_cast<const double*>(checkpoints),
                        static_cast<double*>(trace_out), static_cast<double*>(checkpoints_out));
  }
}

// The emulated device's opt-in shared memory per block (what cudaDeviceGetAttribute reports).
void emulated_set_shared_memory_limit(int bytes) { cuda_emulation::State().shared_optin_limit = bytes; }

// The emulated kernels' maximum threads per block (what cudaFuncGetAttributes reports).
void emulated_set_max_threads_per_block(int threads) { cuda_emulation::State().max_threads_per_block = threads; }

// SrwmKernelLimits of the kernels of `element_bytes`: rows forward, backward; columns max threads
// per block, static and dynamic shared bytes. Returns 0, or 1 if the query failed.
int emulated_kernel_limits(int element_bytes, int64_t* limits) {
  kerasrwm::cuda::KernelLimits kernels[2];
  const std::string error = element_bytes == 4 ? kerasrwm::cuda::SrwmKernelLimits<float>(&kernels[0], &kernels[1])
                                               : kerasrwm::cuda::SrwmKernelLimits<double>(&kernels[0], &kernels[1]);
  for (int row = 0; row < 2; ++row) {
    limits[3 * row] = kernels[row].max_threads_per_block;
    limits[3 * row + 1] = kernels[row].static_shared_bytes;
    limits[3 * row + 2] = kernels[row].max_dynamic_shared_bytes;
  }
  return error.empty() ? 0 : 1;
}

// The dynamic shared memory of the last `count` launches, oldest first; returns how many were written.
int emulated_launch_shared_bytes(int64_t* bytes, int count) {
  const auto& launches = cuda_emulation::State().launch_shared_bytes;
  const int written = static_cast<int>(std::min<size_t>(launches.size(), count));
  for (int i = 0; i < written; ++i) bytes[i] = static_cast<int64_t>(launches[launches.size() - written + i]);
  return written;
}

int emulated_device_queries() { return cuda_emulation::State().device_queries; }

// The cudaFuncSetAttribute(kernel, MaxDynamicSharedMemorySize, value) calls so far:
// `kernels[i]` numbers the kernel (in order of first appearance), `values[i]` the value set.
int emulated_attribute_calls(int* kernels, int* values, int capacity) {
  const auto& calls = cuda_emulation::State().attribute_calls;
  std::vector<const void*> seen;
  const int count = static_cast<int>(std::min<size_t>(calls.size(), capacity));
  for (int i = 0; i < count; ++i) {
    auto known = std::find(seen.begin(), seen.end(), calls[i].first);
    if (known == seen.end()) known = seen.insert(seen.end(), calls[i].first);
    kernels[i] = static_cast<int>(known - seen.begin());
    values[i] = calls[i].second;
  }
  return count;
}

}  // extern "C"

// A CUDA emulation for host compilers: lets g++ compile and run the unchanged SRWM kernel source
// (kerasrwm/ops/kernels/srwm_cuda.cu) on the CPU, so that its barriers and shared-memory use are
// tested without a GPU. Only what that source uses is provided.
//
// Blocks run one after another. Each thread of a block is a cooperative fiber (ucontext) that
// runs until it reaches __syncthreads() or returns; when every live thread waits at a barrier,
// the next phase starts. Within a phase the threads run in ascending, descending or random order
// (`Emulation::order`), so a missing barrier shows up as a thread reading what another has not
// written yet, or has already overwritten. Dynamic shared memory is filled with NaN bytes before
// every block. The barrier on source line `Emulation::skipped_barrier_line` is skipped, which is
// what removing it from the source would do (the mutation check of the tests).
//
// The translation unit that includes the kernel source defines the storage of the kernel's
// `extern __shared__` array (see cuda_emulation.cc).
#ifndef KERASRWM_TESTS_CUDA_EMULATION_CUDA_RUNTIME_H_
#define KERASRWM_TESTS_CUDA_EMULATION_CUDA_RUNTIME_H_

#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#define __syncthreads() ::cuda_emulation::Barrier(__LINE__)

using std::exp;
using std::max;

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};

enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

typedef struct CUstream_st* cudaStream_t;

struct cudaLaunchConfig_t {
  dim3 gridDim;
  dim3 blockDim;
  size_t dynamicSmemBytes;
  cudaStream_t stream;
  void* attrs;
  unsigned int numAttrs;
};

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

namespace cuda_emulation {

enum Order { kAscending = 0, kDescending = 1, kRandom = 2 };

constexpr size_t kDefaultSharedLimit = 48 * 1024;  // without the opt-in attribute
constexpr size_t kStackBytes = 64 * 1024;

// Settings and records of the emulated device; one per process (the emulation is single-threaded).
struct Emulation {
  Order order = kAscending;
  uint64_t seed = 0;
  int skipped_barrier_line = -1;
  int shared_optin_limit = 232448;  // cudaDevAttrMaxSharedMemoryPerBlockOptin of an H100
  int device_queries = 0;           // cudaDeviceGetAttribute calls
  std::vector<std::pair<const void*, int>> attribute_calls;  // cudaFuncSetAttribute(kernel, max)
  std::map<const void*, int> max_dynamic_shared;             // current attribute per kernel
  std::vector<size_t> launch_shared_bytes;                   // dynamicSmemBytes of each launch
  std::string failure;                                       // first barrier misuse seen
  cudaError_t last_error = cudaSuccess;

  unsigned char* shared = nullptr;  // the kernel's extern __shared__ array
  std::mt19937_64 random;
  std::vector<ucontext_t> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  std::vector<int> waiting_line;  // per thread: barrier line it waits at; 0 running; -1 returned
  ucontext_t scheduler;
  unsigned current = 0;
  std::function<void()> body;
};

inline Emulation& State() {
  static Emulation emulation;
  return emulation;
}

inline void Barrier(int line) {
  Emulation& state = State();
  if (line == state.skipped_barrier_line) return;
  state.waiting_line[state.current] = line;
  swapcontext(&state.fibers[state.current], &state.scheduler);
}

inline void RunThread() {
  Emulation& state = State();
  state.body();
  state.waiting_line[state.current] = -1;
}

// Runs every block of a launch to completion; returns false on a barrier misuse.
inline bool RunGrid(const cudaLaunchConfig_t& config) {
  Emulation& state = State();
  const unsigned threads = config.blockDim.x;
  state.fibers.resize(threads);
  while (state.stacks.size() < threads) state.stacks.emplace_back(new char[kStackBytes]);
  blockDim = config.blockDim;
  gridDim = config.gridDim;
  std::vector<unsigned> order(threads);
  for (unsigned block = 0; block < config.gridDim.x; ++block) {
    blockIdx = {block, 0, 0};
    std::memset(state.shared, 0xFF, config.dynamicSmemBytes);  // all-ones bytes: NaN in float and double
    state.waiting_line.assign(threads, 0);
    for (unsigned t = 0; t < threads; ++t) {
      getcontext(&state.fibers[t]);
      state.fibers[t].uc_stack.ss_sp = state.stacks[t].get();
      state.fibers[t].uc_stack.ss_size = kStackBytes;
      state.fibers[t].uc_link = &state.scheduler;
      makecontext(&state.fibers[t], RunThread, 0);
    }
    for (;;) {
      order.clear();
      for (unsigned t = 0; t < threads; ++t) {
        if (state.waiting_line[t] >= 0) order.push_back(t);
      }
      if (order.empty()) break;
      if (state.order == kDescending) std::reverse(order.begin(), order.end());
      if (state.order == kRandom) std::shuffle(order.begin(), order.end(), state.random);
      for (unsigned t : order) {
        state.current = t;
        threadIdx = {t, 0, 0};
        state.waiting_line[t] = 0;
        swapcontext(&state.scheduler, &state.fibers[t]);
      }
      int line = 0;
      for (unsigned t = 0; t < threads; ++t) {
        const int waiting = state.waiting_line[t];
        if (waiting <= 0) continue;
        if (line != 0 && waiting != line) {
          state.failure = "threads of one block wait at different __syncthreads (lines " +
                          std::to_string(line) + " and " + std::to_string(waiting) + ")";
          return false;
        }
        line = waiting;
      }
    }
  }
  return true;
}

}  // namespace cuda_emulation

inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "unspecified launch failure";
  }
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t error = cuda_emulation::State().last_error;
  cuda_emulation::State().last_error = cudaSuccess;
  return error;
}

inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (attribute != cudaDevAttrMaxSharedMemoryPerBlockOptin || device != 0) return cudaErrorInvalidValue;
  ++cuda_emulation::State().device_queries;
  *value = cuda_emulation::State().shared_optin_limit;
  return cudaSuccess;
}

template <typename Kernel>
cudaError_t cudaFuncSetAttribute(Kernel* kernel, cudaFuncAttribute attribute, int value) {
  cuda_emulation::Emulation& state = cuda_emulation::State();
  if (attribute != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      value > state.shared_optin_limit) {
    return cudaErrorInvalidValue;
  }
  const void* key = reinterpret_cast<const void*>(kernel);
  state.attribute_calls.emplace_back(key, value);
  state.max_dynamic_shared[key] = value;
  return cudaSuccess;
}

template <typename... Expected, typename... Actual>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* config, void (*kernel)(Expected...),
                               Actual&&... args) {
  cuda_emulation::Emulation& state = cuda_emulation::State();
  const void* key = reinterpret_cast<const void*>(kernel);
  const size_t allowed = std::max<size_t>(cuda_emulation::kDefaultSharedLimit, state.max_dynamic_shared[key]);
  cudaError_t error = cudaSuccess;
  if (config->blockDim.x < 1 || config->blockDim.x > 1024 || config->blockDim.y != 1 ||
      config->blockDim.z != 1 || config->gridDim.x < 1) {
    error = cudaErrorInvalidConfiguration;
  } else if (config->dynamicSmemBytes > allowed) {
    error = cudaErrorInvalidValue;
  } else {
    state.launch_shared_bytes.push_back(config->dynamicSmemBytes);
    state.body = [&, kernel]() { std::apply(kernel, std::tuple<Expected...>(args...)); };
    if (!cuda_emulation::RunGrid(*config)) error = cudaErrorLaunchFailure;
    state.body = nullptr;
  }
  state.last_error = error;
  return error;
}

#endif  // KERASRWM_TESTS_CUDA_EMULATION_CUDA_RUNTIME_H_

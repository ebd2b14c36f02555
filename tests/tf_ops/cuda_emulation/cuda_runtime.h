// A CUDA emulation for host compilers: lets g++ compile and run the unchanged SRWM kernel source
// (kerasrwm/ops/kernels/srwm_cuda.cu) on the CPU, so that its barriers and shared-memory use are
// tested without a GPU. Only what that source uses is provided.
//
// Blocks run one after another. Each thread of a block is a cooperative fiber (ucontext) that
// runs until it reaches __syncthreads(), a warp shuffle or its end. A shuffle is a warp-level
// synchronization point: the lanes named in its mask stop there, and once all of them have
// arrived, each gets the value its source lane passed and they run on; a warp thus runs as a group
// between shuffles, independently of the other warps. When every live thread waits at a barrier,
// the next phase starts. The scheduler always runs the lowest (ascending), highest (descending)
// or a random runnable thread (`Emulation::order`), and releases a warp as soon as its lanes are
// all at a shuffle, so warps run ahead of or behind each other between barriers, and a missing
// barrier shows up as a thread reading what another has not written yet, or has already
// overwritten. Dynamic shared
// memory is filled with NaN bytes before every block. The barrier or shuffle on source line
// `Emulation::skipped_line` loses its synchronization, which is what removing it from the source
// would do (the mutation check of the tests): a skipped barrier is not waited at, a skipped
// shuffle returns what its source lane last passed to a shuffle (NaN before the first) without
// waiting for it.
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
#include <set>
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
#define __shfl_xor_sync(mask, value, lane_mask) \
  ::cuda_emulation::Shuffle(__LINE__, mask, value, ::cuda_emulation::LaneId() ^ (lane_mask))

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
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchFailure = 719,
};

enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

typedef struct CUstream_st* cudaStream_t;

struct cudaFuncAttributes {
  size_t sharedSizeBytes;
  int maxThreadsPerBlock;
  int numRegs;
};

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
constexpr unsigned kWarpSize = 32;
constexpr size_t kStackBytes = 64 * 1024;

// Settings and records of the emulated device; one per process (the emulation is single-threaded).
struct Emulation {
  Order order = kAscending;
  uint64_t seed = 0;
  int skipped_line = -1;
  int shared_optin_limit = 232448;  // cudaDevAttrMaxSharedMemoryPerBlockOptin of an H100
  int device_queries = 0;           // cudaDeviceGetAttribute calls
  int max_threads_per_block = 1024;  // cudaFuncAttributes.maxThreadsPerBlock of every kernel
  std::vector<std::pair<const void*, int>> attribute_calls;  // cudaFuncSetAttribute(kernel, max)
  std::map<const void*, int> max_dynamic_shared;             // current attribute per kernel
  std::vector<size_t> launch_shared_bytes;                   // dynamicSmemBytes of each launch
  std::string failure;                                       // first barrier misuse seen
  cudaError_t last_error = cudaSuccess;

  unsigned char* shared = nullptr;  // the kernel's extern __shared__ array
  std::mt19937_64 random;
  std::vector<ucontext_t> fibers;
  std::vector<std::unique_ptr<char[]>> stacks;
  std::vector<int> waiting_line;  // per thread: line of the barrier or shuffle it waits at; 0 runnable; -1 returned
  std::vector<bool> at_shuffle;   // per thread: whether `waiting_line` is a shuffle
  std::vector<unsigned> shuffle_mask, shuffle_source;  // per thread, while at a shuffle
  std::vector<uint64_t> shuffle_value;                 // per thread: the bits it last passed to a shuffle
  std::vector<uint64_t> shuffle_result;                // per thread: the bits its source lane passed
  ucontext_t scheduler;
  unsigned current = 0;
  std::function<void()> body;
};

inline Emulation& State() {
  static Emulation emulation;
  return emulation;
}

inline void Yield(int line) {
  Emulation& state = State();
  state.waiting_line[state.current] = line;
  swapcontext(&state.fibers[state.current], &state.scheduler);
}

inline void Barrier(int line) {
  if (line != State().skipped_line) Yield(line);
}

inline unsigned LaneId() { return State().current % kWarpSize; }

// `value` of lane `source` of the caller's warp, once every lane in `mask` has reached this shuffle.
template <typename T>
T Shuffle(int line, unsigned mask, T value, unsigned source) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles move at most 64 bits");
  Emulation& state = State();
  const unsigned me = state.current, first_lane = me - me % kWarpSize;
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  state.shuffle_value[me] = bits;
  state.shuffle_mask[me] = mask;
  state.shuffle_source[me] = first_lane + source % kWarpSize;
  if (line == state.skipped_line) {
    state.shuffle_result[me] = state.shuffle_value[state.shuffle_source[me]];
  } else {
    state.at_shuffle[me] = true;
    Yield(line);
  }
  T result;
  std::memcpy(&result, &state.shuffle_result[me], sizeof(T));
  return result;
}

inline void RunThread() {
  Emulation& state = State();
  state.body();
  state.waiting_line[state.current] = -1;
}

// Releases the warp starting at thread `first` if the lanes named in its shuffle's mask have all
// reached that shuffle: each gets its source lane's value and becomes runnable. Returns false (and
// sets `failure`) if lanes named in the mask wait elsewhere or name another mask.
inline bool ReleaseWarp(unsigned first, std::set<unsigned>& runnable) {
  Emulation& state = State();
  unsigned leader = first;
  while (leader < first + kWarpSize && !state.at_shuffle[leader]) ++leader;
  if (leader == first + kWarpSize) return true;
  const unsigned mask = state.shuffle_mask[leader];
  const int line = state.waiting_line[leader];
  for (unsigned lane = 0; lane < kWarpSize; ++lane) {
    const unsigned t = first + lane;
    const bool named = (mask >> lane) & 1u;
    if (state.at_shuffle[t] && (!named || state.waiting_line[t] != line || state.shuffle_mask[t] != mask)) {
      state.failure = "lanes of one warp at different shuffles or masks (lines " + std::to_string(line) + " and " +
                      std::to_string(state.waiting_line[t]) + ")";
      return false;
    }
    if (!named || state.at_shuffle[t]) continue;
    if (state.waiting_line[t] == 0) return true;  // still running towards the shuffle
    state.failure = "a lane named in the mask of the shuffle on line " + std::to_string(line) +
                    (state.waiting_line[t] < 0 ? " has returned" : " waits at a barrier");
    return false;
  }
  for (unsigned lane = 0; lane < kWarpSize; ++lane) {
    const unsigned t = first + lane;
    if (!((mask >> lane) & 1u)) continue;
    state.shuffle_result[t] = state.shuffle_value[state.shuffle_source[t]];
    state.at_shuffle[t] = false;
    state.waiting_line[t] = 0;
    runnable.insert(t);
  }
  return true;
}

// Runs threads until none is runnable: each time the lowest (ascending), highest (descending) or
// a random runnable thread, until it waits or returns. A warp whose lanes all reach a shuffle is
// released at once, so warps run ahead of each other between barriers. Returns false on misuse.
inline bool RunUntilBlocked(unsigned threads) {
  Emulation& state = State();
  std::set<unsigned> runnable;
  for (unsigned t = 0; t < threads; ++t) {
    if (state.waiting_line[t] == 0) runnable.insert(t);
  }
  while (!runnable.empty()) {
    auto next = runnable.begin();
    if (state.order == kDescending) next = std::prev(runnable.end());
    if (state.order == kRandom) next = std::next(runnable.begin(), state.random() % runnable.size());
    const unsigned t = *next;
    runnable.erase(next);
    state.current = t;
    threadIdx = {t, 0, 0};
    swapcontext(&state.scheduler, &state.fibers[t]);
    if (state.at_shuffle[t] && !ReleaseWarp(t - t % kWarpSize, runnable)) return false;
  }
  return true;
}

// Runs every block of a launch to completion; returns false on a barrier or shuffle misuse.
inline bool RunGrid(const cudaLaunchConfig_t& config) {
  Emulation& state = State();
  const unsigned threads = config.blockDim.x;
  if (threads % kWarpSize != 0) {
    state.failure = "the emulation runs whole warps only (blockDim.x " + std::to_string(threads) + ")";
    return false;
  }
  state.fibers.resize(threads);
  while (state.stacks.size() < threads) state.stacks.emplace_back(new char[kStackBytes]);
  blockDim = config.blockDim;
  gridDim = config.gridDim;
  for (unsigned block = 0; block < config.gridDim.x; ++block) {
    blockIdx = {block, 0, 0};
    std::memset(state.shared, 0xFF, config.dynamicSmemBytes);  // all-ones bytes: NaN in float and double
    state.waiting_line.assign(threads, 0);
    state.at_shuffle.assign(threads, false);
    state.shuffle_mask.assign(threads, 0);
    state.shuffle_source.assign(threads, 0);
    state.shuffle_value.assign(threads, ~uint64_t(0));
    state.shuffle_result.assign(threads, ~uint64_t(0));
    for (unsigned t = 0; t < threads; ++t) {
      getcontext(&state.fibers[t]);
      state.fibers[t].uc_stack.ss_sp = state.stacks[t].get();
      state.fibers[t].uc_stack.ss_size = kStackBytes;
      state.fibers[t].uc_link = &state.scheduler;
      makecontext(&state.fibers[t], RunThread, 0);
    }
    for (;;) {
      if (!RunUntilBlocked(threads)) return false;
      int line = 0;
      bool live = false;
      for (unsigned t = 0; t < threads; ++t) {
        const int waiting = state.waiting_line[t];
        if (waiting < 0) continue;
        live = true;
        if (state.at_shuffle[t]) {
          state.failure = "the shuffle on line " + std::to_string(waiting) + " waits for lanes that never reach it";
          return false;
        }
        if (line != 0 && waiting != line) {
          state.failure = "threads of one block wait at different __syncthreads (lines " +
                          std::to_string(line) + " and " + std::to_string(waiting) + ")";
          return false;
        }
        line = waiting;
      }
      if (!live) break;
      for (unsigned t = 0; t < threads; ++t) {
        if (state.waiting_line[t] > 0) state.waiting_line[t] = 0;
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
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
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

// Every emulated kernel: no static shared memory, `max_threads_per_block` threads.
template <typename Kernel>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, Kernel* kernel) {
  (void)kernel;
  *attributes = {0, cuda_emulation::State().max_threads_per_block, 0};
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
  } else if (static_cast<int>(config->blockDim.x) > state.max_threads_per_block) {
    error = cudaErrorLaunchOutOfResources;
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

// Plain launchers of the SRWM CUDA kernels: device pointers, sizes and a stream in, an error
// message out. Free of TensorFlow, so that tf_ops/cuda_harness.py can test them alone.
#ifndef KERASRWM_OPS_KERNELS_SRWM_CUDA_H_
#define KERASRWM_OPS_KERNELS_SRWM_CUDA_H_

#include <string>

#include "srwm_layout.h"

namespace kerasrwm {
namespace cuda {

// Each launcher enqueues its kernel on `stream` (a cudaStream_t; nullptr is the default
// stream) and returns "" on success or a description of the error. All pointers are device
// pointers laid out as described in srwm_layout.h.
template <typename T>
std::string LaunchSrwmForward(const SrwmSizes& sizes, const SrwmForwardArgs<T>& args,
                              void* stream);
template <typename T>
std::string LaunchSrwmBackward(const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args,
                               void* stream);

// What one compiled kernel can launch with on the current device (cudaFuncGetAttributes and
// cudaDevAttrMaxSharedMemoryPerBlockOptin): threads per block (bounded by its registers), its
// static shared memory, and the dynamic shared memory a block may opt in to.
struct KernelLimits {
  int max_threads_per_block = 0;
  int static_shared_bytes = 0;
  int max_dynamic_shared_bytes = 0;
};

// The limits of the forward and backward kernels for T on the current device; "" or an error.
template <typename T>
std::string SrwmKernelLimits(KernelLimits* forward, KernelLimits* backward);

}  // namespace cuda
}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_CUDA_H_

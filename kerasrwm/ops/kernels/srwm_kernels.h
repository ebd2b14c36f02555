// Device launchers of the fused SRWM ops. The OpKernels (srwm_kernels.cc) validate the inputs,
// allocate the outputs and call the launcher of their device with plain pointers:
// CPU in srwm_kernels.cc, GPU in srwm_kernels_gpu.cc.
#ifndef KERASRWM_OPS_KERNELS_SRWM_KERNELS_H_
#define KERASRWM_OPS_KERNELS_SRWM_KERNELS_H_

#include "srwm_layout.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace kerasrwm {

struct CpuDevice {};
struct GpuDevice {};

template <typename T>
absl::Status ComputeSrwmForward(CpuDevice, tensorflow::OpKernelContext* context,
                                const SrwmSizes& sizes, const SrwmForwardArgs<T>& args);
template <typename T>
absl::Status ComputeSrwmBackward(CpuDevice, tensorflow::OpKernelContext* context,
                                 const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args);
template <typename T>
absl::Status ComputeSrwmForward(GpuDevice, tensorflow::OpKernelContext* context,
                                const SrwmSizes& sizes, const SrwmForwardArgs<T>& args);
template <typename T>
absl::Status ComputeSrwmBackward(GpuDevice, tensorflow::OpKernelContext* context,
                                 const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args);

}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_KERNELS_H_

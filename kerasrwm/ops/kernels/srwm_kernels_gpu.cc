// GPU launchers of the SRWM OpKernels: run the TF-independent CUDA launchers on the op's
// stream. Compiled only when the CUDA kernels are built (KERASRWM_WITH_CUDA).
#include "srwm_cuda.h"
#include "srwm_kernels.h"
#include "tensorflow/core/lib/core/errors.h"
#include "xla/stream_executor/stream.h"

namespace kerasrwm {
namespace {

void* CudaStream(tensorflow::OpKernelContext* context) {
  return context->op_device_context()->stream()->platform_specific_handle().stream;
}

absl::Status ToStatus(const std::string& error) {
  if (error.empty()) return absl::OkStatus();
  return tensorflow::errors::Internal("SRWM CUDA kernel: ", error);
}

}  // namespace

template <typename T>
absl::Status ComputeSrwmForward(GpuDevice, tensorflow::OpKernelContext* context,
                                const SrwmSizes& sizes, const SrwmForwardArgs<T>& args) {
  return ToStatus(cuda::LaunchSrwmForward<T>(sizes, args, CudaStream(context)));
}

template <typename T>
absl::Status ComputeSrwmBackward(GpuDevice, tensorflow::OpKernelContext* context,
                                 const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args) {
  return ToStatus(cuda::LaunchSrwmBackward<T>(sizes, args, CudaStream(context)));
}

#define KERASRWM_INSTANTIATE_GPU_LAUNCHERS(T)                                          \
  template absl::Status ComputeSrwmForward<T>(GpuDevice, tensorflow::OpKernelContext*, \
                                              const SrwmSizes&, const SrwmForwardArgs<T>&); \
  template absl::Status ComputeSrwmBackward<T>(GpuDevice, tensorflow::OpKernelContext*, \
                                               const SrwmSizes&, const SrwmBackwardArgs<T>&);
KERASRWM_INSTANTIATE_GPU_LAUNCHERS(float)
KERASRWM_INSTANTIATE_GPU_LAUNCHERS(double)

}  // namespace kerasrwm

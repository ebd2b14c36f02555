// GPU launchers of the SRWM OpKernels: run the TF-independent CUDA launchers on the op's
// stream; and the OpKernel of KerasRwm>SrwmGpuLimits. Compiled only when the CUDA kernels are
// built (KERASRWM_WITH_CUDA).
#include "srwm_cuda.h"
#include "srwm_kernels.h"
#include "tensorflow/core/framework/tensor.h"
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

// Asks the device what the compiled kernels for T can launch with (srwm_ops.cc: SrwmGpuLimits).
template <typename T>
class SrwmGpuLimitsOp : public tensorflow::OpKernel {
 public:
  using tensorflow::OpKernel::OpKernel;

  void Compute(tensorflow::OpKernelContext* context) override {
    cuda::KernelLimits kernels[2];
    OP_REQUIRES_OK(context, ToStatus(cuda::SrwmKernelLimits<T>(&kernels[0], &kernels[1])));
    tensorflow::Tensor* output;
    OP_REQUIRES_OK(context, context->allocate_output(0, tensorflow::TensorShape({2, 3}), &output));
    auto limits = output->matrix<int64_t>();
    for (int row = 0; row < 2; ++row) {
      limits(row, 0) = kernels[row].max_threads_per_block;
      limits(row, 1) = kernels[row].static_shared_bytes;
      limits(row, 2) = kernels[row].max_dynamic_shared_bytes;
    }
  }
};

#define KERASRWM_REGISTER_GPU_LIMITS(T)                                                            \
  REGISTER_KERNEL_BUILDER(                                                                         \
      Name("KerasRwm>SrwmGpuLimits").Device(::tensorflow::DEVICE_GPU).HostMemory("limits").TypeConstraint<T>("T"), \
      SrwmGpuLimitsOp<T>);
KERASRWM_REGISTER_GPU_LIMITS(float)
KERASRWM_REGISTER_GPU_LIMITS(double)

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

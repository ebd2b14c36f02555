// OpKernels of KerasRwm>SrwmForward / KerasRwm>SrwmBackward and the CPU launcher.
#include "srwm_kernels.h"

#include <functional>

#include "absl/strings/string_view.h"
#include "srwm_cpu.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/lib/core/errors.h"
#include "tensorflow/core/platform/threadpool.h"

namespace kerasrwm {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
namespace errors = ::tensorflow::errors;

constexpr const char* kWeightNames[kNumRates] = {"w_y", "w_q", "w_k", "w_b"};

absl::Status CheckShape(const char* name, const Tensor& tensor, const TensorShape& expected,
                        absl::string_view description) {
  if (tensor.shape() != expected) {
    return errors::InvalidArgument("`", name, "` must have shape ", description, " = ",
                                   expected.DebugString(), "; received shape ",
                                   tensor.shape().DebugString(), ".");
  }
  return absl::OkStatus();
}

// Reads the sizes from x [batch, length, heads, head_dim].
template <typename T>
absl::Status SizesFromInput(const Tensor& x, int64_t checkpoint_interval, SrwmSizes* sizes) {
  if (x.dims() != 4) {
    return errors::InvalidArgument(
        "`x` must have rank 4 [batch, length, heads, head_dim]; received shape ",
        x.shape().DebugString(), ".");
  }
  *sizes = {x.dim_size(0), x.dim_size(1), x.dim_size(2), x.dim_size(3), checkpoint_interval,
            PackLanes<T>()};
  if (sizes->length < 1 || sizes->head_dim < 1) {
    return errors::InvalidArgument(
        "`x` must have at least one time step and head_dim >= 1; received shape ",
        x.shape().DebugString(), ".");
  }
  return absl::OkStatus();
}

TensorShape WeightShape(const SrwmSizes& sizes, int matrix) {
  return TensorShape({sizes.batch, sizes.heads, sizes.head_dim,
                      matrix < 3 ? sizes.head_dim : kNumRates});
}

// The shape of the trace or the checkpoints in the layout of one device type's kernels
// (srwm_layout.h), and how a message describes it. The CPU and GPU shapes always differ (the
// lanes of a pack innermost or second), so a trace that a forward wrote on one device type and a
// backward placed on the other receives is rejected, not misread.
struct SavedShape {
  TensorShape shape;
  const char* description;
};

SavedShape TraceShape(CpuDevice, const SrwmSizes& sizes) {
  return {TensorShape({sizes.packs(), sizes.length, sizes.trace_size(), sizes.lanes}),
          "[packs, length, 5 * head_dim + 8, lanes] (the CPU kernels' layout)"};
}

SavedShape TraceShape(GpuDevice, const SrwmSizes& sizes) {
  return {TensorShape({sizes.packs(), sizes.lanes, sizes.length, sizes.trace_size()}),
          "[packs, lanes, length, 5 * head_dim + 8] (the GPU kernels' layout)"};
}

SavedShape CheckpointsShape(CpuDevice, const SrwmSizes& sizes) {
  return {TensorShape({sizes.packs(), sizes.checkpoints(), sizes.head_dim, sizes.columns(), sizes.lanes}),
          "[packs, checkpoints, head_dim, 3 * head_dim + 4, lanes] (the CPU kernels' layout)"};
}

SavedShape CheckpointsShape(GpuDevice, const SrwmSizes& sizes) {
  return {TensorShape({sizes.packs(), sizes.lanes, sizes.checkpoints(), sizes.head_dim, sizes.columns()}),
          "[packs, lanes, checkpoints, head_dim, 3 * head_dim + 4] (the GPU kernels' layout)"};
}

absl::Status CheckSavedShape(const char* name, const Tensor& tensor, const SavedShape& expected) {
  const absl::Status status = CheckShape(name, tensor, expected.shape, expected.description);
  if (status.ok()) return status;
  return errors::InvalidArgument(status.message(),
                                 " The trace and checkpoints are laid out for the device type of the "
                                 "forward that made them: run the forward and its gradient on the "
                                 "same device type.");
}

template <typename Device, typename T>
class SrwmForwardOp : public OpKernel {
 public:
  explicit SrwmForwardOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("checkpoint_interval", &checkpoint_interval_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& x = context->input(0);
    SrwmSizes sizes;
    OP_REQUIRES_OK(context, SizesFromInput<T>(x, checkpoint_interval_, &sizes));
    SrwmForwardArgs<T> args;
    args.x = x.flat<T>().data();
    Tensor* y;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &y));
    args.y = y->flat<T>().data();
    for (int i = 0; i < kNumRates; ++i) {
      const Tensor& weight = context->input(1 + i);
      OP_REQUIRES_OK(context, CheckShape(kWeightNames[i], weight, WeightShape(sizes, i),
                                         i < 3 ? "[batch, heads, head_dim, head_dim]"
                                               : "[batch, heads, head_dim, 4]"));
      args.initial.matrices[i] = weight.flat<T>().data();
      Tensor* final_weight;
      OP_REQUIRES_OK(context, context->allocate_output(1 + i, weight.shape(), &final_weight));
      args.final_weights.matrices[i] = final_weight->flat<T>().data();
    }
    Tensor *trace, *checkpoints;
    OP_REQUIRES_OK(context, context->allocate_output(5, TraceShape(Device(), sizes).shape, &trace));
    OP_REQUIRES_OK(context,
                   context->allocate_output(6, CheckpointsShape(Device(), sizes).shape, &checkpoints));
    args.trace = trace->flat<T>().data();
    args.checkpoints = checkpoints->flat<T>().data();
    OP_REQUIRES_OK(context, ComputeSrwmForward<T>(Device(), context, sizes, args));
  }

 private:
  int64_t checkpoint_interval_;
};

template <typename Device, typename T>
class SrwmBackwardOp : public OpKernel {
 public:
  explicit SrwmBackwardOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("checkpoint_interval", &checkpoint_interval_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& x = context->input(0);
    const Tensor& trace = context->input(1);
    const Tensor& checkpoints = context->input(2);
    const Tensor& grad_y = context->input(3);
    SrwmSizes sizes;
    OP_REQUIRES_OK(context, SizesFromInput<T>(x, checkpoint_interval_, &sizes));
    OP_REQUIRES_OK(context, CheckSavedShape("trace", trace, TraceShape(Device(), sizes)));
    OP_REQUIRES_OK(context,
                   CheckSavedShape("checkpoints", checkpoints, CheckpointsShape(Device(), sizes)));
    OP_REQUIRES_OK(context, CheckShape("grad_y", grad_y, x.shape(),
                                       "[batch, length, heads, head_dim]"));
    SrwmBackwardArgs<T> args;
    args.x = x.flat<T>().data();
    args.trace = trace.flat<T>().data();
    args.checkpoints = checkpoints.flat<T>().data();
    args.grad_y = grad_y.flat<T>().data();
    Tensor* grad_x;
    OP_REQUIRES_OK(context, context->allocate_output(0, x.shape(), &grad_x));
    args.grad_x = grad_x->flat<T>().data();
    for (int i = 0; i < kNumRates; ++i) {
      const Tensor& grad_final = context->input(4 + i);
      OP_REQUIRES_OK(context, CheckShape("grad of the final weights", grad_final,
                                         WeightShape(sizes, i), kWeightNames[i]));
      args.grad_final.matrices[i] = grad_final.flat<T>().data();
      Tensor* grad_initial;
      OP_REQUIRES_OK(context, context->allocate_output(1 + i, grad_final.shape(), &grad_initial));
      args.grad_initial.matrices[i] = grad_initial->flat<T>().data();
    }
    OP_REQUIRES_OK(context, ComputeSrwmBackward<T>(Device(), context, sizes, args));
  }

 private:
  int64_t checkpoint_interval_;
};

// Runs `run_pack(pack)` for every pack on TensorFlow's CPU thread pool, one pack per shard: a
// thread that runs slower (on a core shared with another busy thread) then takes fewer packs,
// and each thread still runs mostly consecutive packs, as SrwmBackwardPack's prefetch expects.
void ForEachPack(OpKernelContext* context, const SrwmSizes& sizes,
                 const std::function<void(int64_t)>& run_pack) {
  using ::tensorflow::thread::ThreadPool;
  context->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
      sizes.packs(), ThreadPool::SchedulingParams::Fixed(1), [&](int64_t begin, int64_t end) {
        for (int64_t pack = begin; pack < end; ++pack) run_pack(pack);
      });
}

}  // namespace

template <typename T>
absl::Status ComputeSrwmForward(CpuDevice, OpKernelContext* context, const SrwmSizes& sizes,
                                const SrwmForwardArgs<T>& args) {
  ForEachPack(context, sizes, [&](int64_t pack) { cpu::SrwmForwardPack<T>(sizes, args, pack); });
  return absl::OkStatus();
}

template <typename T>
absl::Status ComputeSrwmBackward(CpuDevice, OpKernelContext* context, const SrwmSizes& sizes,
                                 const SrwmBackwardArgs<T>& args) {
  ForEachPack(context, sizes, [&](int64_t pack) { cpu::SrwmBackwardPack<T>(sizes, args, pack); });
  return absl::OkStatus();
}

#define KERASRWM_REGISTER_SRWM_KERNELS(DEVICE_NAME, DeviceTag, T)                             \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("KerasRwm>SrwmForward").Device(DEVICE_NAME).TypeConstraint<T>("T"),              \
      SrwmForwardOp<DeviceTag, T>);                                                         \
  REGISTER_KERNEL_BUILDER(                                                                  \
      Name("KerasRwm>SrwmBackward").Device(DEVICE_NAME).TypeConstraint<T>("T"),             \
      SrwmBackwardOp<DeviceTag, T>);

KERASRWM_REGISTER_SRWM_KERNELS(::tensorflow::DEVICE_CPU, CpuDevice, float)
KERASRWM_REGISTER_SRWM_KERNELS(::tensorflow::DEVICE_CPU, CpuDevice, double)
#if KERASRWM_WITH_CUDA
KERASRWM_REGISTER_SRWM_KERNELS(::tensorflow::DEVICE_GPU, GpuDevice, float)
KERASRWM_REGISTER_SRWM_KERNELS(::tensorflow::DEVICE_GPU, GpuDevice, double)
#endif

}  // namespace kerasrwm

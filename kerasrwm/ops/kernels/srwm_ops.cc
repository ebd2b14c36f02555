// Registration of the fused SRWM ops and their shape functions.
#include "srwm_layout.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace kerasrwm {
namespace {

using ::tensorflow::DataType;
using ::tensorflow::DataTypeSize;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

int LanesOf(DataType dtype) { return kPackBytes / DataTypeSize(dtype); }

// The dimensions every SRWM op agrees on; unknown ones stay unknown.
struct SrwmDims {
  DimensionHandle batch, length, heads, head_dim;
};

absl::Status MergeWeight(InferenceContext* c, int input, const SrwmDims& dims, bool rates,
                         ShapeHandle* shape) {
  ShapeHandle expected = c->MakeShape(
      {dims.batch, dims.heads, dims.head_dim, rates ? c->MakeDim(kNumRates) : dims.head_dim});
  TF_RETURN_IF_ERROR(c->WithRank(c->input(input), 4, shape));
  return c->Merge(*shape, expected, shape);
}

// Reads x [batch, length, heads, head_dim] and checks the four weight inputs after it.
absl::Status SrwmInputDims(InferenceContext* c, int x_input, int first_weight_input,
                           SrwmDims* dims, ShapeHandle weights[kNumRates]) {
  ShapeHandle x;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(x_input), 4, &x));
  *dims = {c->Dim(x, 0), c->Dim(x, 1), c->Dim(x, 2), c->Dim(x, 3)};
  for (int i = 0; i < kNumRates; ++i) {
    TF_RETURN_IF_ERROR(MergeWeight(c, first_weight_input + i, *dims, i == 3, &weights[i]));
    for (int axis : {0, 1, 2}) {
      DimensionHandle* dim = axis == 0 ? &dims->batch : axis == 1 ? &dims->heads : &dims->head_dim;
      TF_RETURN_IF_ERROR(c->Merge(*dim, c->Dim(weights[i], axis), dim));
    }
  }
  return absl::OkStatus();
}

// trace and checkpoints: their size is the same on every device, their shape is not (the CPU's
// [packs, length, TraceSize(E), lanes] and [packs, checkpoints, E, 3E + 4, lanes], the GPU's
// [packs, lanes, length, TraceSize(E)] and [packs, lanes, checkpoints, E, 3E + 4]; see
// srwm_layout.h and srwm_kernels.cc), so only their rank and first dimension are inferred.
absl::Status SavedShapes(InferenceContext* c, const SrwmDims& dims, ShapeHandle* trace,
                         ShapeHandle* checkpoints) {
  DataType dtype;
  TF_RETURN_IF_ERROR(c->GetAttr("T", &dtype));
  const bool sizes_known = c->ValueKnown(dims.batch) && c->ValueKnown(dims.heads);
  DimensionHandle packs =
      sizes_known ? c->MakeDim(CeilDiv(c->Value(dims.batch) * c->Value(dims.heads), LanesOf(dtype)))
                  : c->UnknownDim();
  *trace = c->MakeShape({packs, c->UnknownDim(), c->UnknownDim(), c->UnknownDim()});
  *checkpoints =
      c->MakeShape({packs, c->UnknownDim(), c->UnknownDim(), c->UnknownDim(), c->UnknownDim()});
  return absl::OkStatus();
}

absl::Status ForwardShape(InferenceContext* c) {
  SrwmDims dims;
  ShapeHandle weights[kNumRates];
  TF_RETURN_IF_ERROR(SrwmInputDims(c, 0, 1, &dims, weights));
  c->set_output(0, c->MakeShape({dims.batch, dims.length, dims.heads, dims.head_dim}));
  for (int i = 0; i < kNumRates; ++i) c->set_output(1 + i, weights[i]);
  ShapeHandle trace, checkpoints;
  TF_RETURN_IF_ERROR(SavedShapes(c, dims, &trace, &checkpoints));
  c->set_output(5, trace);
  c->set_output(6, checkpoints);
  return absl::OkStatus();
}

absl::Status BackwardShape(InferenceContext* c) {
  SrwmDims dims;
  ShapeHandle grad_final[kNumRates];
  TF_RETURN_IF_ERROR(SrwmInputDims(c, 0, 4, &dims, grad_final));
  ShapeHandle x = c->MakeShape({dims.batch, dims.length, dims.heads, dims.head_dim});
  ShapeHandle grad_y, trace, checkpoints;
  TF_RETURN_IF_ERROR(c->Merge(c->input(3), x, &grad_y));
  TF_RETURN_IF_ERROR(SavedShapes(c, dims, &trace, &checkpoints));
  ShapeHandle unused;
  TF_RETURN_IF_ERROR(c->Merge(c->input(1), trace, &unused));
  TF_RETURN_IF_ERROR(c->Merge(c->input(2), checkpoints, &unused));
  c->set_output(0, grad_y);
  for (int i = 0; i < kNumRates; ++i) c->set_output(1 + i, grad_final[i]);
  return absl::OkStatus();
}

}  // namespace
}  // namespace kerasrwm

REGISTER_OP("KerasRwm>SrwmForward")
    .Input("x: T")
    .Input("w_y: T")
    .Input("w_q: T")
    .Input("w_k: T")
    .Input("w_b: T")
    .Output("y: T")
    .Output("w_y_final: T")
    .Output("w_q_final: T")
    .Output("w_k_final: T")
    .Output("w_b_final: T")
    .Output("trace: T")
    .Output("checkpoints: T")
    .Attr("T: {float, double}")
    .Attr("checkpoint_interval: int >= 1")
    .SetShapeFn(kerasrwm::ForwardShape)
    .Doc(R"doc(
Self-referential weight matrices over a sequence, one independent SRWM per head.

x: [batch, length, heads, head_dim].
w_y, w_q, w_k: [batch, heads, head_dim, head_dim] initial weights.
w_b: [batch, heads, head_dim, 4] initial learning-rate weights.
y: [batch, length, heads, head_dim], read with the weights before each step's update.
w_y_final, w_q_final, w_k_final, w_b_final: the weights after the last step.
trace: per-step q, k, beta and update difference kept for the backward.
checkpoints: the weights every `checkpoint_interval` steps and after the last step.
trace and checkpoints are internal to the gradient: their layout and shape depend on the device
type that ran the forward (same size on every device), and only the backward on the same device
type reads them.
)doc");

REGISTER_OP("KerasRwm>SrwmBackward")
    .Input("x: T")
    .Input("trace: T")
    .Input("checkpoints: T")
    .Input("grad_y: T")
    .Input("grad_w_y_final: T")
    .Input("grad_w_q_final: T")
    .Input("grad_w_k_final: T")
    .Input("grad_w_b_final: T")
    .Output("grad_x: T")
    .Output("grad_w_y: T")
    .Output("grad_w_q: T")
    .Output("grad_w_k: T")
    .Output("grad_w_b: T")
    .Attr("T: {float, double}")
    .Attr("checkpoint_interval: int >= 1")
    .SetShapeFn(kerasrwm::BackwardShape)
    .Doc(R"doc(
Gradient of KerasRwm>SrwmForward with respect to x and the four initial weights, given the
upstream gradients of y and of the four final weights.
)doc");

REGISTER_OP("KerasRwm>SrwmGpuLimits")
    .Output("limits: int64")
    .Attr("T: {float, double}")
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->Matrix(2, 3));
      return absl::OkStatus();
    })
    .Doc(R"doc(
What the GPU kernels of KerasRwm>SrwmForward and KerasRwm>SrwmBackward for T can launch with on
the op's GPU (a GPU kernel only, in libraries built with CUDA).

limits: [2, 3] int64, rows forward and backward, columns the kernel's maximum threads per block
(cudaFuncGetAttributes, bounded by its registers), its static shared memory, and the dynamic
shared memory a block may opt in to (the device's opt-in limit less the static) in bytes.
)doc");

// C entry point over the SRWM CPU kernels for tf_ops/cpu_ab_bench.py: float32, one thread, all
// packs in turn. A context owns 64-byte aligned copies of the inputs and every buffer, so that
// timed runs allocate nothing. Not part of the TensorFlow op library.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "srwm_cpu.h"

namespace {

using kerasrwm::kNumRates;
using kerasrwm::SrwmSizes;

class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t count)
      : data_(static_cast<float*>(std::aligned_alloc(kAlignment, RoundUp(count * sizeof(float))))) {
    std::memset(data_, 0, RoundUp(count * sizeof(float)));
  }
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  float* data() const { return data_; }

 private:
  static constexpr size_t kAlignment = 64;  // as TensorFlow's CPU tensors
  static size_t RoundUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }
  float* data_;
};

struct Context {
  SrwmSizes sizes;
  std::vector<AlignedBuffer*> buffers;
  kerasrwm::SrwmForwardArgs<float> forward;
  kerasrwm::SrwmBackwardArgs<float> backward;
  std::vector<std::pair<const float*, int64_t>> outputs;  // y, finals, grad_x, grad weights

  float* Make(int64_t count) {
    buffers.push_back(new AlignedBuffer(count));
    return buffers.back()->data();
  }
  float* Copy(const void* source, int64_t count) {
    float* data = Make(count);
    std::memcpy(data, source, count * sizeof(float));
    return data;
  }
  ~Context() {
    for (AlignedBuffer* buffer : buffers) delete buffer;
  }
};

}  // namespace

extern "C" {

// shape: batch, length, heads, head_dim, checkpoint_interval.
// inputs: x, w_y, w_q, w_k, w_b, grad_y, grad_w_y_final, ..., grad_w_b_final (float32, C order).
void* srwm_cpu_new(const int64_t* shape, const void* const* inputs) {
  auto* context = new Context;
  SrwmSizes& sizes = context->sizes;
  sizes = {shape[0], shape[1], shape[2], shape[3], shape[4], kerasrwm::PackLanes<float>()};
  const int64_t E = sizes.head_dim, S = sizes.sequences(), steps = S * sizes.length * E;
  auto weight_count = [&](int matrix) { return S * E * (matrix < 3 ? E : kNumRates); };
  context->forward.x = context->backward.x = context->Copy(inputs[0], steps);
  context->forward.y = context->Make(steps);
  context->backward.grad_y = context->Copy(inputs[5], steps);
  context->backward.grad_x = context->Make(steps);
  context->forward.trace = context->Make(sizes.packs() * sizes.length * sizes.trace_size() * sizes.lanes);
  context->backward.trace = context->forward.trace;
  context->forward.checkpoints =
      context->Make(sizes.packs() * sizes.checkpoints() * E * sizes.columns() * sizes.lanes);
  context->backward.checkpoints = context->forward.checkpoints;
  context->outputs.push_back({context->forward.y, steps});
  for (int i = 0; i < kNumRates; ++i) {
    context->forward.initial.matrices[i] = context->Copy(inputs[1 + i], weight_count(i));
    context->forward.final_weights.matrices[i] = context->Make(weight_count(i));
    context->backward.grad_final.matrices[i] = context->Copy(inputs[6 + i], weight_count(i));
    context->backward.grad_initial.matrices[i] = context->Make(weight_count(i));
    context->outputs.push_back({context->forward.final_weights.matrices[i], weight_count(i)});
  }
  context->outputs.push_back({context->backward.grad_x, steps});
  for (int i = 0; i < kNumRates; ++i) {
    context->outputs.push_back({context->backward.grad_initial.matrices[i], weight_count(i)});
  }
  return context;
}

// One forward and one backward over all packs; milliseconds[0], [1]: their wall-clock times.
void srwm_cpu_run(void* handle, double* milliseconds) {
  auto* context = static_cast<Context*>(handle);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  for (int64_t pack = 0; pack < context->sizes.packs(); ++pack) {
    kerasrwm::cpu::SrwmForwardPack<float>(context->sizes, context->forward, pack);
  }
  const Clock::time_point middle = Clock::now();
  for (int64_t pack = 0; pack < context->sizes.packs(); ++pack) {
    kerasrwm::cpu::SrwmBackwardPack<float>(context->sizes, context->backward, pack);
  }
  const Clock::time_point end = Clock::now();
  milliseconds[0] = std::chrono::duration<double, std::milli>(middle - start).count();
  milliseconds[1] = std::chrono::duration<double, std::milli>(end - middle).count();
}

// outputs: y, w_y_final, ..., w_b_final, grad_x, grad_w_y, ..., grad_w_b, as the inputs' shapes.
void srwm_cpu_outputs(void* handle, void* const* outputs) {
  const auto* context = static_cast<const Context*>(handle);
  for (size_t i = 0; i < context->outputs.size(); ++i) {
    std::memcpy(outputs[i], context->outputs[i].first, context->outputs[i].second * sizeof(float));
  }
}

void srwm_cpu_delete(void* handle) { delete static_cast<Context*>(handle); }

}  // extern "C"

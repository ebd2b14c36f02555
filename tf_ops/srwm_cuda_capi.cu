// C entry point over the SRWM CUDA launchers for tf_ops/cuda_harness.py: host arrays in and
// out, device buffers handled here. Not part of the TensorFlow op library.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "srwm_cuda.h"

namespace {

std::string last_error;

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { Check(cudaMalloc(&data_, bytes > 0 ? bytes : 1)); }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return data_; }
  void Upload(const void* host) { Check(cudaMemcpy(data_, host, bytes_, cudaMemcpyHostToDevice)); }
  void Download(void* host) const { Check(cudaMemcpy(host, data_, bytes_, cudaMemcpyDeviceToHost)); }
  static void Check(cudaError_t error) {
    if (error != cudaSuccess && last_error.empty()) last_error = cudaGetErrorString(error);
  }

 private:
  void* data_ = nullptr;
  size_t bytes_;
};

// inputs: x, w_y, w_q, w_k, w_b, grad_y, grad_w_y_final, ..., grad_w_b_final.
// outputs: y, w_y_final, ..., w_b_final, grad_x, grad_w_y, ..., grad_w_b.
template <typename T>
int ForwardBackward(kerasrwm::SrwmSizes sizes, const void* const* inputs, void* const* outputs,
                    int repeats, float* milliseconds_per_call) {
  using namespace kerasrwm;
  last_error.clear();
  const int64_t E = sizes.head_dim, S = sizes.sequences();
  const size_t sequence_bytes = sizeof(T) * S * sizes.length * E;
  std::vector<size_t> weight_bytes;
  for (int i = 0; i < kNumRates; ++i) weight_bytes.push_back(sizeof(T) * S * E * (i < 3 ? E : kNumRates));
  std::vector<DeviceBuffer*> owned;
  auto make = [&](size_t bytes) { owned.push_back(new DeviceBuffer(bytes)); return owned.back(); };
  DeviceBuffer* x = make(sequence_bytes);
  DeviceBuffer* y = make(sequence_bytes);
  DeviceBuffer* grad_y = make(sequence_bytes);
  DeviceBuffer* grad_x = make(sequence_bytes);
  DeviceBuffer* trace = make(sizeof(T) * sizes.packs() * sizes.length * sizes.trace_size() * sizes.lanes);
  DeviceBuffer* checkpoints = make(sizeof(T) * sizes.packs() * sizes.checkpoints() * E * sizes.columns() * sizes.lanes);
  DeviceBuffer *initial[kNumRates], *final_weights[kNumRates], *grad_final[kNumRates], *grad_initial[kNumRates];
  for (int i = 0; i < kNumRates; ++i) {
    initial[i] = make(weight_bytes[i]);
    final_weights[i] = make(weight_bytes[i]);
    grad_final[i] = make(weight_bytes[i]);
    grad_initial[i] = make(weight_bytes[i]);
    initial[i]->Upload(inputs[1 + i]);
    grad_final[i]->Upload(inputs[6 + i]);
  }
  x->Upload(inputs[0]);
  grad_y->Upload(inputs[5]);

  SrwmForwardArgs<T> forward{static_cast<const T*>(x->data()), {}, static_cast<T*>(y->data()), {},
                             static_cast<T*>(trace->data()), static_cast<T*>(checkpoints->data())};
  SrwmBackwardArgs<T> backward{static_cast<const T*>(x->data()), static_cast<const T*>(trace->data()),
                               static_cast<const T*>(checkpoints->data()), static_cast<const T*>(grad_y->data()),
                               {}, static_cast<T*>(grad_x->data()), {}};
  for (int i = 0; i < kNumRates; ++i) {
    forward.initial.matrices[i] = static_cast<const T*>(initial[i]->data());
    forward.final_weights.matrices[i] = static_cast<T*>(final_weights[i]->data());
    backward.grad_final.matrices[i] = static_cast<const T*>(grad_final[i]->data());
    backward.grad_initial.matrices[i] = static_cast<T*>(grad_initial[i]->data());
  }
  auto run_once = [&]() {
    std::string error = cuda::LaunchSrwmForward<T>(sizes, forward, nullptr);
    if (error.empty()) error = cuda::LaunchSrwmBackward<T>(sizes, backward, nullptr);
    if (!error.empty() && last_error.empty()) last_error = error;
  };
  run_once();
  DeviceBuffer::Check(cudaDeviceSynchronize());
  if (repeats > 0 && last_error.empty()) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start);
    for (int r = 0; r < repeats; ++r) run_once();
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float total;
    cudaEventElapsedTime(&total, start, stop);
    *milliseconds_per_call = total / repeats;
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  if (last_error.empty()) {
    y->Download(outputs[0]);
    grad_x->Download(outputs[5]);
    for (int i = 0; i < kNumRates; ++i) {
      final_weights[i]->Download(outputs[1 + i]);
      grad_initial[i]->Download(outputs[6 + i]);
    }
  }
  for (DeviceBuffer* buffer : owned) delete buffer;
  return last_error.empty() ? 0 : 1;
}

kerasrwm::SrwmSizes Sizes(const int64_t* shape, int lanes) {
  return {shape[0], shape[1], shape[2], shape[3], shape[4], lanes};
}

}  // namespace

// shape: batch, length, heads, head_dim, checkpoint_interval. Returns 0 on success.
extern "C" int srwm_forward_backward_f32(const int64_t* shape, const void* const* inputs, void* const* outputs,
                                         int repeats, float* milliseconds_per_call) {
  return ForwardBackward<float>(Sizes(shape, kerasrwm::PackLanes<float>()), inputs, outputs, repeats,
                                milliseconds_per_call);
}

extern "C" int srwm_forward_backward_f64(const int64_t* shape, const void* const* inputs, void* const* outputs,
                                         int repeats, float* milliseconds_per_call) {
  return ForwardBackward<double>(Sizes(shape, kerasrwm::PackLanes<double>()), inputs, outputs, repeats,
                                 milliseconds_per_call);
}

// What the compiled kernels of `element_bytes` (4: float, 8: double) can launch with on the current
// device: limits[0..2] forward, limits[3..5] backward, each max threads per block, static and
// dynamic shared bytes (kerasrwm::cuda::KernelLimits). Returns 0 on success.
extern "C" int srwm_kernel_limits(int element_bytes, int64_t* limits) {
  kerasrwm::cuda::KernelLimits kernels[2];
  last_error = element_bytes == 4 ? kerasrwm::cuda::SrwmKernelLimits<float>(&kernels[0], &kernels[1])
                                  : kerasrwm::cuda::SrwmKernelLimits<double>(&kernels[0], &kernels[1]);
  for (int row = 0; row < 2; ++row) {
    limits[3 * row] = kernels[row].max_threads_per_block;
    limits[3 * row + 1] = kernels[row].static_shared_bytes;
    limits[3 * row + 2] = kernels[row].max_dynamic_shared_bytes;
  }
  return last_error.empty() ? 0 : 1;
}

extern "C" const char* srwm_last_error() { return last_error.c_str(); }

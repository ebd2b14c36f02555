// CPU forward and backward of the SRWM recurrence for one pack of sequences. TF-independent.
//
// A pack holds PackLanes<T>() sequences (16 in float32, 8 in float64); every value of the
// recurrence is a `Lanes<T>` vector with one lane per sequence, so each line below is one SIMD
// instruction for the whole pack and the loops need no horizontal reductions. The fast
// weights of a pack, W [E][3E + 4] (and in the backward their gradient G), stay in L1/L2.
//
// Memory kept for the backward is O(L * E) per sequence (the trace of q, k, beta and d) plus
// one checkpoint of W every `checkpoint_interval` steps: the backward recovers W_{t-1} from
// W_t by reverting the rank-1 update and restarts from the saved checkpoint at each interval.
#ifndef KERASRWM_OPS_KERNELS_SRWM_CPU_H_
#define KERASRWM_OPS_KERNELS_SRWM_CPU_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "srwm_layout.h"

namespace kerasrwm {
namespace cpu {

// One value of every sequence of a pack (a 64-byte SIMD vector).
template <typename T>
struct LaneVector {
  typedef T type __attribute__((vector_size(kPackBytes)));
};
template <typename T>
using Lanes = typename LaneVector<T>::type;

template <typename T>
struct ExpTraits;
template <>
struct ExpTraits<float> {
  using Bits = int32_t __attribute__((vector_size(kPackBytes)));
  static constexpr float kLowest = -87.0f, kHighest = 88.0f;
  static constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
  static constexpr int kMantissaBits = 23, kExponentBias = 127, kDegree = 7;
};
template <>
struct ExpTraits<double> {
  using Bits = int64_t __attribute__((vector_size(kPackBytes)));
  static constexpr double kLowest = -708.0, kHighest = 709.0;
  static constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52
  static constexpr int kMantissaBits = 52, kExponentBias = 1023, kDegree = 13;
};

template <typename T>
inline Lanes<T> Broadcast(T value) {
  return Lanes<T>{} + value;
}

// exp(x) lane-wise, branch-free so that it stays vectorised: x = n ln2 + r with |r| <= ln2 / 2,
// a Taylor polynomial for exp(r) (accurate to the precision of T) and 2^n from the exponent
// bits. Arguments are clamped to the finite range of T.
template <typename T>
inline Lanes<T> Exp(Lanes<T> x) {
  using Traits = ExpTraits<T>;
  const Lanes<T> lowest = Broadcast<T>(Traits::kLowest), highest = Broadcast<T>(Traits::kHighest);
  x = x < lowest ? lowest : x;
  x = x > highest ? highest : x;
  const T magic = Traits::kRoundMagic;
  const Lanes<T> n = (x * static_cast<T>(1.4426950408889634) + magic) - magic;
  const Lanes<T> r = (x - n * static_cast<T>(0.693359375)) - n * static_cast<T>(-2.12194440054690583e-4);
  T coefficient = 1;
  for (int i = 2; i <= Traits::kDegree; ++i) coefficient /= i;
  Lanes<T> polynomial = Broadcast<T>(coefficient);
  for (int i = Traits::kDegree; i > 0; --i) {
    coefficient *= i;
    polynomial = polynomial * r + coefficient;
  }
  using Bits = typename Traits::Bits;
  const Bits exponent = (__builtin_convertvector(n, Bits) + Traits::kExponentBias)
                        << Traits::kMantissaBits;
  return polynomial * (Lanes<T>)exponent;  // Same-size vector cast: reinterprets the bits.
}

template <typename T>
inline void Softmax(const Lanes<T>* logits, int64_t size, Lanes<T>* out) {
  Lanes<T> maximum = logits[0];
  for (int64_t i = 1; i < size; ++i) maximum = logits[i] > maximum ? logits[i] : maximum;
  Lanes<T> total = {};
  for (int64_t i = 0; i < size; ++i) {
    out[i] = Exp<T>(logits[i] - maximum);
    total += out[i];
  }
  const Lanes<T> inverse = 1 / total;
  for (int64_t i = 0; i < size; ++i) out[i] *= inverse;
}

// Gradient of the logits of `probabilities = softmax(logits)` given the gradient `grad`.
template <typename T>
inline void SoftmaxBackward(const Lanes<T>* probabilities, const Lanes<T>* grad, int64_t size,
                            Lanes<T>* grad_logits) {
  Lanes<T> inner = {};
  for (int64_t i = 0; i < size; ++i) inner += probabilities[i] * grad[i];
  for (int64_t i = 0; i < size; ++i) grad_logits[i] = probabilities[i] * (grad[i] - inner);
}

// Moves the values of one pack between the natural [batch, length, heads, E] / weight tensors
// and lane vectors. Lanes past the last sequence read as zeros and are never written back.
template <typename T>
class PackIo {
 public:
  PackIo(const SrwmSizes& sizes, int64_t pack)
      : sizes_(sizes),
        first_(pack * sizes.lanes),
        active_(static_cast<int>(std::min<int64_t>(sizes.lanes, sizes.sequences() - first_))) {}

  // out[e] = tensor[sequence, t, e] for the E features of step t.
  void GatherStep(const T* tensor, int64_t t, Lanes<T>* out) const {
    for (int64_t e = 0; e < sizes_.head_dim; ++e) out[e] = Lanes<T>{};
    for (int lane = 0; lane < active_; ++lane) {
      const T* source = tensor + sizes_.InputIndex(first_ + lane, t, 0);
      for (int64_t e = 0; e < sizes_.head_dim; ++e) out[e][lane] = source[e];
    }
  }

  void ScatterStep(const Lanes<T>* values, int64_t t, T* tensor) const {
    for (int lane = 0; lane < active_; ++lane) {
      T* target = tensor + sizes_.InputIndex(first_ + lane, t, 0);
      for (int64_t e = 0; e < sizes_.head_dim; ++e) target[e] = values[e][lane];
    }
  }

  // w[row * columns + column] from the four weight tensors.
  void GatherWeights(const WeightPointers<const T*>& tensors, Lanes<T>* w) const {
    const int64_t size = sizes_.head_dim * sizes_.columns();
    for (int64_t i = 0; i < size; ++i) w[i] = Lanes<T>{};
    ForEachWeight([&](int lane, int64_t i, int matrix, int64_t index) {
      w[i][lane] = tensors.matrices[matrix][index];
    });
  }

  void ScatterWeights(const Lanes<T>* w, const WeightPointers<T*>& tensors) const {
    ForEachWeight([&](int lane, int64_t i, int matrix, int64_t index) {
      tensors.matrices[matrix][index] = w[i][lane];
    });
  }

 private:
  template <typename Visit>
  void ForEachWeight(Visit visit) const {
    const int64_t columns = sizes_.columns();
    for (int lane = 0; lane < active_; ++lane) {
      for (int64_t row = 0; row < sizes_.head_dim; ++row) {
        for (int64_t column = 0; column < columns; ++column) {
          int matrix;
          const int64_t index = sizes_.WeightIndex(first_ + lane, row, column, &matrix);
          visit(lane, row * columns + column, matrix, index);
        }
      }
    }
  }

  const SrwmSizes& sizes_;
  const int64_t first_;
  const int active_;
};

// out[column] = sum_row vector[row] * w[row, column]  (a read `vector W`).
template <typename T>
inline void Read(const Lanes<T>* w, const Lanes<T>* vector, int64_t rows, int64_t columns,
                 Lanes<T>* out) {
  for (int64_t column = 0; column < columns; ++column) {
    Lanes<T> total = {};
    for (int64_t row = 0; row < rows; ++row) total += vector[row] * w[row * columns + column];
    out[column] = total;
  }
}

// Runs the whole sequence of one pack: y, final weights, trace and checkpoints.
template <typename T>
void SrwmForwardPack(const SrwmSizes& sizes, const SrwmForwardArgs<T>& args, int64_t pack) {
  const int64_t E = sizes.head_dim, M = sizes.columns(), L = sizes.length;
  const int64_t F = sizes.trace_size(), C = sizes.checkpoint_interval;
  const PackIo<T> io(sizes, pack);
  std::vector<Lanes<T>> w(E * M), x_next(E), reads(M), query_minus_key(E), update(M);
  Lanes<T>* trace = reinterpret_cast<Lanes<T>*>(args.trace) + pack * L * F;
  Lanes<T>* checkpoints = reinterpret_cast<Lanes<T>*>(args.checkpoints) + pack * sizes.checkpoints() * E * M;

  io.GatherWeights(args.initial, w.data());
  io.GatherStep(args.x, 0, x_next.data());
  Read<T>(w.data(), x_next.data(), E, M, reads.data());
  for (int64_t t = 0; t < L; ++t) {
    Lanes<T>* q = trace + t * F + TraceQuery(E);
    Lanes<T>* k = trace + t * F + TraceKey(E);
    Lanes<T>* beta = trace + t * F + TraceRate(E);
    Lanes<T>* difference = trace + t * F + TraceDifference(E);
    io.ScatterStep(reads.data(), t, args.y);
    Softmax<T>(reads.data() + E, E, q);
    Softmax<T>(reads.data() + 2 * E, E, k);
    for (int i = 0; i < kNumRates; ++i) beta[i] = 1 / (1 + Exp<T>(-reads[3 * E + i]));
    for (int64_t e = 0; e < E; ++e) query_minus_key[e] = q[e] - k[e];
    Read<T>(w.data(), query_minus_key.data(), E, M, difference);
    for (int64_t m = 0; m < M; ++m) update[m] = beta[RateOfColumn(m, E)] * difference[m];

    // W += outer(k, update), fused with the read x_{t+1} W of the next step.
    if (t + 1 < L) {
      io.GatherStep(args.x, t + 1, x_next.data());
    } else {
      std::fill(x_next.begin(), x_next.end(), Lanes<T>{});
    }
    for (int64_t m = 0; m < M; ++m) {
      const Lanes<T> update_m = update[m];
      Lanes<T> total = {};
      for (int64_t e = 0; e < E; ++e) {
        Lanes<T>& entry = w[e * M + m];
        entry += k[e] * update_m;
        total += x_next[e] * entry;
      }
      reads[m] = total;
    }
    if ((t + 1) % C == 0 || t + 1 == L) {
      std::copy(w.begin(), w.end(), checkpoints + (CeilDiv(t + 1, C) - 1) * E * M);
    }
  }
  io.ScatterWeights(w.data(), args.final_weights);
}

// Runs the backward of one pack from the last step to the first.
template <typename T>
void SrwmBackwardPack(const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args, int64_t pack) {
  const int64_t E = sizes.head_dim, M = sizes.columns(), L = sizes.length;
  const int64_t F = sizes.trace_size(), C = sizes.checkpoint_interval;
  const PackIo<T> io(sizes, pack);
  std::vector<Lanes<T>> w(E * M), g(E * M), x(E), grad_y(E), query_minus_key(E);
  std::vector<Lanes<T>> update(M), grad_update(M), grad_difference(M), grad_reads(M);
  std::vector<Lanes<T>> grad_key_outer(E), grad_query(E), grad_key(E), grad_x(E);
  const Lanes<T>* trace = reinterpret_cast<const Lanes<T>*>(args.trace) + pack * L * F;
  const Lanes<T>* checkpoints =
      reinterpret_cast<const Lanes<T>*>(args.checkpoints) + pack * sizes.checkpoints() * E * M;

  std::copy(checkpoints + (sizes.checkpoints() - 1) * E * M,
            checkpoints + sizes.checkpoints() * E * M, w.begin());
  io.GatherWeights(args.grad_final, g.data());
  for (int64_t t = L - 1; t >= 0; --t) {
    const Lanes<T>* q = trace + t * F + TraceQuery(E);
    const Lanes<T>* k = trace + t * F + TraceKey(E);
    const Lanes<T>* beta = trace + t * F + TraceRate(E);
    const Lanes<T>* difference = trace + t * F + TraceDifference(E);
    io.GatherStep(args.x, t, x.data());
    io.GatherStep(args.grad_y, t, grad_y.data());
    for (int64_t m = 0; m < M; ++m) update[m] = beta[RateOfColumn(m, E)] * difference[m];

    // W_t = W_{t-1} + outer(k, update): revert it, and back-propagate G = dL/dW_t into
    // update (k G) and into k as the outer-product key (G update).
    std::fill(grad_update.begin(), grad_update.end(), Lanes<T>{});
    for (int64_t e = 0; e < E; ++e) {
      const Lanes<T> k_e = k[e];
      Lanes<T> total = {};
      for (int64_t m = 0; m < M; ++m) {
        w[e * M + m] -= k_e * update[m];
        grad_update[m] += k_e * g[e * M + m];
        total += g[e * M + m] * update[m];
      }
      grad_key_outer[e] = total;
    }
    if (t > 0 && t % C == 0) {
      std::copy(checkpoints + (t / C - 1) * E * M, checkpoints + (t / C) * E * M, w.begin());
    }

    // update = beta (per column) * difference, difference = (q - k) W_{t-1}.
    Lanes<T> grad_beta[kNumRates] = {};
    for (int64_t m = 0; m < M; ++m) {
      const int rate = RateOfColumn(m, E);
      grad_difference[m] = beta[rate] * grad_update[m];
      grad_beta[rate] += grad_update[m] * difference[m];
    }
    for (int64_t e = 0; e < E; ++e) {
      Lanes<T> total = {};
      for (int64_t m = 0; m < M; ++m) total += w[e * M + m] * grad_difference[m];
      grad_query[e] = total;
      grad_key[e] = grad_key_outer[e] - total;
      query_minus_key[e] = q[e] - k[e];
    }

    // The reads x W_{t-1}: y directly, q and k through softmax, beta through sigmoid.
    std::copy(grad_y.begin(), grad_y.end(), grad_reads.begin());
    SoftmaxBackward<T>(q, grad_query.data(), E, grad_reads.data() + E);
    SoftmaxBackward<T>(k, grad_key.data(), E, grad_reads.data() + 2 * E);
    for (int i = 0; i < kNumRates; ++i) {
      grad_reads[3 * E + i] = grad_beta[i] * beta[i] * (1 - beta[i]);
    }

    // dL/dx_t = W_{t-1} grad_reads; G becomes dL/dW_{t-1}.
    for (int64_t e = 0; e < E; ++e) {
      const Lanes<T> x_e = x[e], query_minus_key_e = query_minus_key[e];
      Lanes<T> total = {};
      for (int64_t m = 0; m < M; ++m) {
        total += w[e * M + m] * grad_reads[m];
        g[e * M + m] += query_minus_key_e * grad_difference[m] + x_e * grad_reads[m];
      }
      grad_x[e] = total;
    }
    io.ScatterStep(grad_x.data(), t, args.grad_x);
  }
  io.ScatterWeights(g.data(), args.grad_initial);
}

}  // namespace cpu
}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_CPU_H_

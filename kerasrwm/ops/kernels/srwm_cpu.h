// CPU forward and backward of the SRWM recurrence for one pack of sequences. TF-independent.
//
// A pack holds PackLanes<T>() sequences (8 in float32, 4 in float64); every value of the
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
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "srwm_lanes.h"
#include "srwm_layout.h"

namespace kerasrwm {
namespace cpu {

constexpr uintptr_t kCacheLineBytes = 64;

// Fetches the cache lines that hold [begin, begin + bytes) into L2 only (locality 1): fetching
// into L1 would evict the fast weights. Always inlined: GCC drops the prefetches of small inline
// functions that it finds free of side effects.
__attribute__((always_inline)) inline void PrefetchToL2(const void* begin, size_t bytes) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(begin), end = start + bytes;
  for (uintptr_t line = start & ~(kCacheLineBytes - 1); line < end; line += kCacheLineBytes) {
    __builtin_prefetch(reinterpret_cast<const void*>(line), /*rw=*/0, /*locality=*/1);
  }
}

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


// 1 / i! for i = 0..kDegree: the Taylor coefficients of exp.
template <typename T, int kDegree>
constexpr std::array<T, kDegree + 1> InverseFactorials() {
  std::array<T, kDegree + 1> coefficients{};
  T factorial = 1;
  for (int i = 0; i <= kDegree; ++i) {
    factorial *= i > 0 ? i : 1;
    coefficients[i] = 1 / factorial;
  }
  return coefficients;
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
  static constexpr std::array<T, Traits::kDegree + 1> kCoefficients = InverseFactorials<T, Traits::kDegree>();
  Lanes<T> polynomial = Broadcast<T>(kCoefficients[Traits::kDegree]);
  for (int i = Traits::kDegree - 1; i >= 0; --i) polynomial = polynomial * r + kCoefficients[i];
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

// A list of memory regions prefetched into L2 a few cache lines at a time, so that the inputs a
// pack starts with can be fetched while the pack before it runs.
class Prefetcher {
 public:
  // `rows` rows of `row_bytes` bytes each, the first at `begin` and the next `stride` bytes on.
  void Add(const void* begin, int64_t rows, size_t row_bytes, size_t stride) {
    for (int64_t row = 0; row < rows; ++row) {
      const uintptr_t start = reinterpret_cast<uintptr_t>(begin) + row * stride;
      rows_.push_back({start & ~(kCacheLineBytes - 1), start + row_bytes});
    }
  }
  void Add(const void* begin, size_t bytes) { Add(begin, 1, bytes, 0); }

  // Lines in the regions (lines shared by two rows count twice).
  int64_t lines() const {
    int64_t count = 0;
    for (const Row& row : rows_) count += CeilDiv(row.end - row.first_line, kCacheLineBytes);
    return count;
  }

  // Prefetches the next `count` lines, in the order the regions were added.
  void Advance(int64_t count) {
    for (; count > 0 && next_ < rows_.size(); --count) {
      Row& row = rows_[next_];
      __builtin_prefetch(reinterpret_cast<const void*>(row.first_line), /*rw=*/0, /*locality=*/1);
      row.first_line += kCacheLineBytes;
      if (row.first_line >= row.end) ++next_;
    }
  }

 private:
  struct Row {
    uintptr_t first_line, end;  // the first line not yet prefetched, and the row's end
  };
  std::vector<Row> rows_;
  size_t next_ = 0;
};

// Moves the values of one pack between the natural [batch, length, heads, E] / weight tensors
// and lane vectors. Lanes past the last sequence read as zeros and are never written back.
template <typename T>
class PackIo {
 public:
  PackIo(const SrwmSizes& sizes, int64_t pack)
      : sizes_(sizes),
        first_(pack * sizes.lanes),
        active_(static_cast<int>(std::min<int64_t>(sizes.lanes, sizes.sequences() - first_))) {
    for (int lane = 0; lane < active_; ++lane) step_offsets_[lane] = sizes.InputIndex(first_ + lane, 0, 0);
  }

  // out[(t - first_step) * E + e] = tensor[sequence, t, e] for `steps` steps from `first_step`.
  void GatherSteps(const T* tensor, int64_t first_step, int64_t steps, Lanes<T>* out) const {
    const T* rows[kMaxLanes];
    for (int64_t step = 0; step < steps; ++step) {
      StepRows(tensor, first_step + step, rows);
      GatherLanes<T>(rows, active_, sizes_.head_dim, out + step * sizes_.head_dim);
    }
  }

  // Fetches step t of `tensor` into L2, ahead of a GatherSteps.
  __attribute__((always_inline)) inline void PrefetchStep(const T* tensor, int64_t t) const {
    const T* rows[kMaxLanes];
    StepRows(tensor, t, rows);
    for (int lane = 0; lane < active_; ++lane) PrefetchToL2(rows[lane], sizes_.head_dim * sizeof(T));
  }

  // Adds `steps` steps from `first_step` of `tensor` to `prefetcher`.
  void AddStepsTo(Prefetcher* prefetcher, const T* tensor, int64_t first_step, int64_t steps) const {
    const T* rows[kMaxLanes];
    StepRows(tensor, first_step, rows);
    for (int lane = 0; lane < active_; ++lane) {
      prefetcher->Add(rows[lane], steps, sizes_.head_dim * sizeof(T), sizes_.InputStepStride() * sizeof(T));
    }
  }

  // Adds the pack's part of the four weight tensors (one block each) to `prefetcher`.
  void AddWeightsTo(Prefetcher* prefetcher, const WeightPointers<const T*>& tensors) const {
    for (int matrix = 0; matrix < kNumRates; ++matrix) {
      const int64_t width = MatrixWidth(matrix);
      const T* end = WeightRow(tensors.matrices[matrix], width, active_ - 1, sizes_.head_dim - 1) + width;
      const T* begin = WeightRow(tensors.matrices[matrix], width, 0, 0);
      prefetcher->Add(begin, (end - begin) * sizeof(T));
    }
  }

  void ScatterSteps(const Lanes<T>* values, int64_t first_step, int64_t steps, T* tensor) const {
    T* rows[kMaxLanes];
    for (int64_t step = 0; step < steps; ++step) {
      StepRows(tensor, first_step + step, rows);
      ScatterLanes<T>(values + step * sizes_.head_dim, active_, sizes_.head_dim, rows);
    }
  }

  // w[row * columns + column] from the four weight tensors.
  void GatherWeights(const WeightPointers<const T*>& tensors, Lanes<T>* w) const {
    const T* rows[kMaxLanes];
    ForEachWeightRow(tensors, rows, [&](int64_t first_weight, int64_t width) {
      GatherLanes<T>(rows, active_, width, w + first_weight);
    });
  }

  void ScatterWeights(const Lanes<T>* w, const WeightPointers<T*>& tensors) const {
    T* rows[kMaxLanes];
    ForEachWeightRow(tensors, rows, [&](int64_t first_weight, int64_t width) {
      ScatterLanes<T>(w + first_weight, active_, width, rows);
    });
  }

 private:
  static constexpr int kMaxLanes = PackLanes<T>();

  // rows[lane] = the E features of step t of the lane's sequence.
  template <typename Pointer>
  void StepRows(Pointer tensor, int64_t t, Pointer* rows) const {
    for (int lane = 0; lane < active_; ++lane) rows[lane] = tensor + step_offsets_[lane] + t * sizes_.InputStepStride();
  }

  // For each row of each weight matrix: sets rows[lane] to it in the lane's weight tensor and
  // calls visit(index of its first weight in w, width of the matrix).
  template <typename Pointer, typename Visit>
  void ForEachWeightRow(const WeightPointers<Pointer>& tensors, Pointer* rows, Visit visit) const {
    const int64_t E = sizes_.head_dim, M = sizes_.columns();
    for (int matrix = 0; matrix < kNumRates; ++matrix) {
      const int64_t width = MatrixWidth(matrix);
      for (int64_t row = 0; row < E; ++row) {
        for (int lane = 0; lane < active_; ++lane) rows[lane] = WeightRow(tensors.matrices[matrix], width, lane, row);
        visit(row * M + matrix * E, width);
      }
    }
  }

  // Columns of weight matrix `matrix` (0..3 for y, q, k, b).
  int64_t MatrixWidth(int matrix) const { return matrix < 3 ? sizes_.head_dim : kNumRates; }

  // Row `row` of the lane's sequence in the weight tensor `matrix` of `width` columns.
  template <typename Pointer>
  Pointer WeightRow(Pointer matrix, int64_t width, int lane, int64_t row) const {
    return matrix + ((first_ + lane) * sizes_.head_dim + row) * width;
  }

  const SrwmSizes& sizes_;
  const int64_t first_;
  const int active_;
  int64_t step_offsets_[kMaxLanes];  // of (sequence, t = 0, e = 0) per lane
};

// Independent accumulators per loop: enough to hide the latency of the multiply-adds.
constexpr int kBlock = 4;

// Calls `body(width, first)` for [first, first + width) covering [0, count), in blocks of
// kBlock and then of 1; `width` is a std::integral_constant so that blocks fully unroll.
template <typename Body>
inline void ForEachBlock(int64_t count, Body&& body) {
  int64_t first = 0;
  for (; first + kBlock <= count; first += kBlock) body(std::integral_constant<int, kBlock>(), first);
  for (; first < count; ++first) body(std::integral_constant<int, 1>(), first);
}

// out[column] = sum_row vector[row] * w[row, column]  (a read `vector W`).
template <typename T>
inline void Read(const Lanes<T>* w, const Lanes<T>* vector, int64_t rows, int64_t columns,
                 Lanes<T>* out) {
  ForEachBlock(columns, [&](auto width, int64_t first) {
    Lanes<T> total[width] = {};
    for (int64_t row = 0; row < rows; ++row) {
      for (int j = 0; j < width; ++j) total[j] += vector[row] * w[row * columns + first + j];
    }
    for (int j = 0; j < width; ++j) out[first + j] = total[j];
  });
}

// update[m] = beta[rate of column m] * difference[m].
template <typename T>
inline void ScaleByRates(const Lanes<T>* beta, const Lanes<T>* difference, int64_t head_dim,
                         Lanes<T>* update) {
  for (int rate = 0; rate < kNumRates; ++rate) {
    const int64_t first = rate * head_dim, end = first + (rate < 3 ? head_dim : kNumRates);
    for (int64_t m = first; m < end; ++m) update[m] = beta[rate] * difference[m];
  }
}

// Steps whose inputs (x, grad_y) and whose grad_x are moved between the tensors and lane vectors
// at once. The forward writes each y_t as soon as it is read, which timed faster than in chunks.
// Each step prefetches the inputs of the step one chunk ahead into L2, so that the gathers of
// every chunk but the first read from L2.
constexpr int64_t kStepChunk = 32;

// Runs the whole sequence of one pack: y, final weights, trace and checkpoints.
template <typename T>
void SrwmForwardPack(const SrwmSizes& sizes, const SrwmForwardArgs<T>& args, int64_t pack) {
  const int64_t E = sizes.head_dim, M = sizes.columns(), L = sizes.length;
  const int64_t F = sizes.trace_size(), C = sizes.checkpoint_interval;
  const PackIo<T> io(sizes, pack);
  std::vector<Lanes<T>> w(E * M), x_chunk(kStepChunk * E), zeros(E);
  std::vector<Lanes<T>> reads(M), query_minus_key(E), update(M);
  Lanes<T>* trace = reinterpret_cast<Lanes<T>*>(args.trace) + pack * L * F;
  Lanes<T>* checkpoints = reinterpret_cast<Lanes<T>*>(args.checkpoints) + pack * sizes.checkpoints() * E * M;

  io.GatherWeights(args.initial, w.data());
  io.GatherSteps(args.x, 0, std::min(kStepChunk, L), x_chunk.data());
  Read<T>(w.data(), x_chunk.data(), E, M, reads.data());
  for (int64_t t = 0; t < L; ++t) {
    const int64_t slot = t % kStepChunk;
    Lanes<T>* q = trace + t * F + TraceQuery(E);
    Lanes<T>* k = trace + t * F + TraceKey(E);
    Lanes<T>* beta = trace + t * F + TraceRate(E);
    Lanes<T>* difference = trace + t * F + TraceDifference(E);
    io.ScatterSteps(reads.data(), t, 1, args.y);  // y_t: the first E reads.
    if (t + kStepChunk < L) io.PrefetchStep(args.x, t + kStepChunk);
    Softmax<T>(reads.data() + E, E, q);
    Softmax<T>(reads.data() + 2 * E, E, k);
    for (int i = 0; i < kNumRates; ++i) beta[i] = 1 / (1 + Exp<T>(-reads[3 * E + i]));
    for (int64_t e = 0; e < E; ++e) query_minus_key[e] = q[e] - k[e];
    Read<T>(w.data(), query_minus_key.data(), E, M, difference);
    ScaleByRates<T>(beta, difference, E, update.data());

    // W += outer(k, update), fused with the read x_{t+1} W of the next step (x_L = 0).
    const Lanes<T>* x_next = zeros.data();
    if (t + 1 < L) {
      if (slot + 1 == kStepChunk) io.GatherSteps(args.x, t + 1, std::min(kStepChunk, L - t - 1), x_chunk.data());
      x_next = x_chunk.data() + (t + 1) % kStepChunk * E;
    }
    // The operands are copied into locals: the stores to w would otherwise force reloads.
    ForEachBlock(M, [&](auto width, int64_t first) {
      Lanes<T> total[width] = {}, column_update[width];
      for (int j = 0; j < width; ++j) column_update[j] = update[first + j];
      for (int64_t e = 0; e < E; ++e) {
        const Lanes<T> key = k[e], input = x_next[e];
        for (int j = 0; j < width; ++j) {
          const Lanes<T> entry = w[e * M + first + j] + key * column_update[j];
          w[e * M + first + j] = entry;
          total[j] += input * entry;
        }
      }
      for (int j = 0; j < width; ++j) reads[first + j] = total[j];
    });
    if ((t + 1) % C == 0 || t + 1 == L) {
      std::copy(w.begin(), w.end(), checkpoints + (CeilDiv(t + 1, C) - 1) * E * M);
    }
  }
  io.ScatterWeights(w.data(), args.final_weights);
}

// Runs the backward of one pack from the last step to the first.
//
// Step t read W_{t-1} and wrote W_t = W_{t-1} + outer(k_t, update_t). Going backwards, one pass
// over W and G finishes step t (dL/dx_t = W_{t-1} grad_reads_t; G becomes dL/dW_{t-1}) and, in
// the same sweep, reverts step t-1 (W_{t-2} = W_{t-1} - outer(k, update)) and reads G through
// that update (k G and G update), so W and G are swept twice per step (this pass and
// dL/d(q - k) = W grad_difference).
template <typename T>
void SrwmBackwardPack(const SrwmSizes& sizes, const SrwmBackwardArgs<T>& args, int64_t pack) {
  const int64_t E = sizes.head_dim, M = sizes.columns(), L = sizes.length;
  const int64_t F = sizes.trace_size(), C = sizes.checkpoint_interval;
  const PackIo<T> io(sizes, pack);
  std::vector<Lanes<T>> w(E * M), g(E * M), query_minus_key(E), zeros_e(E), unused_grad_x(E);
  std::vector<Lanes<T>> x_chunk(kStepChunk * E), grad_y_chunk(kStepChunk * E), grad_x_chunk(kStepChunk * E);
  std::vector<Lanes<T>> update(M), grad_update(M), grad_difference(M), grad_reads(M), zeros_m(M);
  std::vector<Lanes<T>> grad_key_outer(E), grad_query(E), grad_key(E);
  const Lanes<T>* trace = reinterpret_cast<const Lanes<T>*>(args.trace) + pack * L * F;
  const Lanes<T>* checkpoints =
      reinterpret_cast<const Lanes<T>*>(args.checkpoints) + pack * sizes.checkpoints() * E * M;
  auto restore_checkpoint = [&](int64_t index) {
    std::copy(checkpoints + index * E * M, checkpoints + (index + 1) * E * M, w.begin());
  };

  // One sweep: G += outer(query_minus_key, grad_difference) + outer(x, grad_reads) with
  // grad_x = W grad_reads, then W -= outer(key, update), grad_update = key G and
  // grad_key_outer = G update (with the new G).
  auto finish_and_revert = [&](const Lanes<T>* step_grad_reads, const Lanes<T>* step_grad_difference,
                               const Lanes<T>* x, const Lanes<T>* key, Lanes<T>* grad_x) {
    std::fill(grad_update.begin(), grad_update.end(), Lanes<T>{});
    // The operands are copied into locals: the stores to w and g would otherwise force reloads.
    ForEachBlock(E, [&](auto height, int64_t first) {
      Lanes<T> grad_x_rows[height] = {}, outer_rows[height] = {};
      Lanes<T> row_query_minus_key[height], row_x[height], row_key[height];
      for (int i = 0; i < height; ++i) {
        row_query_minus_key[i] = query_minus_key[first + i];
        row_x[i] = x[first + i];
        row_key[i] = key[first + i];
      }
      for (int64_t m = 0; m < M; ++m) {
        const Lanes<T> grad_reads_m = step_grad_reads[m], grad_difference_m = step_grad_difference[m];
        const Lanes<T> update_m = update[m];
        Lanes<T> grad_update_m = grad_update[m];
        for (int i = 0; i < height; ++i) {
          const int64_t index = (first + i) * M + m;
          const Lanes<T> w_old = w[index];
          grad_x_rows[i] += w_old * grad_reads_m;
          const Lanes<T> g_new = g[index] + row_query_minus_key[i] * grad_difference_m + row_x[i] * grad_reads_m;
          g[index] = g_new;
          w[index] = w_old - row_key[i] * update_m;
          grad_update_m += row_key[i] * g_new;
          outer_rows[i] += g_new * update_m;
        }
        grad_update[m] = grad_update_m;
      }
      for (int i = 0; i < height; ++i) {
        grad_x[first + i] = grad_x_rows[i];
        grad_key_outer[first + i] = outer_rows[i];
      }
    });
  };
  // Sets `update` to that of step t (from the trace) and returns its k.
  auto load_update = [&](int64_t t) {
    const Lanes<T>* step = trace + t * F;
    ScaleByRates<T>(step + TraceRate(E), step + TraceDifference(E), E, update.data());
    return step + TraceKey(E);
  };
  auto restore_if_checkpointed = [&](int64_t t) {  // W now holds the weights after t steps.
    if (t > 0 && t % C == 0) restore_checkpoint(t / C - 1);
  };

  // What the next pack starts with (its last checkpoint, grad_final, the trace of its last two
  // steps and its first chunk of x and grad_y), fetched during the last steps of this one: the
  // packs of a thread mostly run in order. Fetched earlier, at long L, the trace read in between
  // would evict it from L2.
  Prefetcher next_pack;
  if (pack + 1 < sizes.packs()) {
    const PackIo<T> next_io(sizes, pack + 1);
    const Lanes<T>* next_checkpoints = checkpoints + sizes.checkpoints() * E * M;
    next_pack.Add(next_checkpoints + (sizes.checkpoints() - 1) * E * M, E * M * sizeof(Lanes<T>));
    next_io.AddWeightsTo(&next_pack, args.grad_final);
    const int64_t traced = std::min<int64_t>(2, L), chunk = std::min(kStepChunk, L);
    next_pack.Add(trace + (2 * L - traced) * F, traced * F * sizeof(Lanes<T>));
    next_io.AddStepsTo(&next_pack, args.x, L - chunk, chunk);
    next_io.AddStepsTo(&next_pack, args.grad_y, L - chunk, chunk);
  }
  const int64_t next_pack_steps = std::min(L, 2 * kStepChunk);
  const int64_t next_pack_lines_per_step = CeilDiv(next_pack.lines(), next_pack_steps);

  restore_checkpoint(sizes.checkpoints() - 1);
  io.GatherWeights(args.grad_final, g.data());
  std::fill(query_minus_key.begin(), query_minus_key.end(), Lanes<T>{});
  finish_and_revert(zeros_m.data(), zeros_m.data(), zeros_e.data(), load_update(L - 1), unused_grad_x.data());
  restore_if_checkpointed(L - 1);
  // Chunks are counted from the last step, so that the prefetches one chunk ahead cover them.
  int64_t chunk_first = L, chunk_steps = 0;
  for (int64_t t = L - 1; t >= 0; --t) {
    if (t < chunk_first) {
      chunk_steps = std::min(kStepChunk, t + 1);
      chunk_first = t + 1 - chunk_steps;
      io.GatherSteps(args.x, chunk_first, chunk_steps, x_chunk.data());
      io.GatherSteps(args.grad_y, chunk_first, chunk_steps, grad_y_chunk.data());
    }
    if (t >= kStepChunk) {
      io.PrefetchStep(args.x, t - kStepChunk);
      io.PrefetchStep(args.grad_y, t - kStepChunk);
    }
    if (t < next_pack_steps) next_pack.Advance(next_pack_lines_per_step);
    const int64_t slot = t - chunk_first;
    // The trace is read backwards, which the hardware prefetchers miss.
    if (t >= 2) PrefetchToL2(trace + (t - 2) * F, F * sizeof(Lanes<T>));
    const Lanes<T>* q = trace + t * F + TraceQuery(E);
    const Lanes<T>* k = trace + t * F + TraceKey(E);
    const Lanes<T>* beta = trace + t * F + TraceRate(E);
    const Lanes<T>* difference = trace + t * F + TraceDifference(E);

    // The update of step t - 1, which this step's sweep reverts, is read from the trace first,
    // so that the reads overlap the work before the sweep (there is none before step 0).
    const Lanes<T>* previous_key = zeros_e.data();
    if (t > 0) {
      previous_key = load_update(t - 1);
    } else {
      std::fill(update.begin(), update.end(), Lanes<T>{});
    }

    // update = beta (per column) * difference, difference = (q - k) W_{t-1}.
    ScaleByRates<T>(beta, grad_update.data(), E, grad_difference.data());
    Lanes<T> grad_beta[kNumRates] = {};
    for (int rate = 0; rate < kNumRates; ++rate) {
      const int64_t first = rate * E, end = first + (rate < 3 ? E : kNumRates);
      for (int64_t m = first; m < end; ++m) grad_beta[rate] += grad_update[m] * difference[m];
    }
    ForEachBlock(E, [&](auto height, int64_t first) {
      Lanes<T> total[height] = {};
      for (int64_t m = 0; m < M; ++m) {
        for (int i = 0; i < height; ++i) total[i] += w[(first + i) * M + m] * grad_difference[m];
      }
      for (int i = 0; i < height; ++i) {
        const int64_t e = first + i;
        grad_query[e] = total[i];
        grad_key[e] = grad_key_outer[e] - total[i];
        query_minus_key[e] = q[e] - k[e];
      }
    });

    // The reads x W_{t-1}: y directly, q and k through softmax, beta through sigmoid.
    std::copy(grad_y_chunk.begin() + slot * E, grad_y_chunk.begin() + (slot + 1) * E, grad_reads.begin());
    SoftmaxBackward<T>(q, grad_query.data(), E, grad_reads.data() + E);
    SoftmaxBackward<T>(k, grad_key.data(), E, grad_reads.data() + 2 * E);
    for (int i = 0; i < kNumRates; ++i) {
      grad_reads[3 * E + i] = grad_beta[i] * beta[i] * (1 - beta[i]);
    }

    const Lanes<T>* x = x_chunk.data() + slot * E;
    Lanes<T>* grad_x = grad_x_chunk.data() + slot * E;
    finish_and_revert(grad_reads.data(), grad_difference.data(), x, previous_key, grad_x);
    restore_if_checkpointed(t - 1);
    if (slot == 0) io.ScatterSteps(grad_x_chunk.data(), chunk_first, chunk_steps, args.grad_x);
  }
  io.ScatterWeights(g.data(), args.grad_initial);
}

}  // namespace cpu
}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_CPU_H_

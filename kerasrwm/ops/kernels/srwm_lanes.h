// Lane vectors of the CPU kernels: one value of each sequence of a pack per SIMD lane, and the
// moves between per-sequence rows in memory and lane vectors. TF-independent.
//
// With AVX, full packs are moved by in-register transposes (8x8 float32 or 4x4 float64 blocks);
// partial packs and the columns left over are moved lane by lane.
#ifndef KERASRWM_OPS_KERNELS_SRWM_LANES_H_
#define KERASRWM_OPS_KERNELS_SRWM_LANES_H_

#include <cstdint>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "srwm_layout.h"

namespace kerasrwm {
namespace cpu {

// One value of every sequence of a pack (a kPackBytes SIMD vector).
template <typename T>
struct LaneVector {
  typedef T type __attribute__((vector_size(kPackBytes)));
};
template <typename T>
using Lanes = typename LaneVector<T>::type;

template <typename T>
inline Lanes<T> Broadcast(T value) {
  return Lanes<T>{} + value;
}

#if defined(__AVX__)
// In place: the rows r[0..7] of an 8x8 block become its columns.
inline void Transpose8x8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

// In place: the rows r[0..3] of a 4x4 block become its columns.
inline void Transpose4x4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// Register type and unaligned row load / store of the 256-bit transposes.
template <typename T>
struct Avx;
template <>
struct Avx<float> {
  using Register = __m256;
  static Register Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, Register r) { _mm256_storeu_ps(p, r); }
  static void Transpose(Register* r) { Transpose8x8(r); }
};
template <>
struct Avx<double> {
  using Register = __m256d;
  static Register Load(const double* p) { return _mm256_loadu_pd(p); }
  static void Store(double* p, Register r) { _mm256_storeu_pd(p, r); }
  static void Transpose(Register* r) { Transpose4x4(r); }
};

// Moves of full packs: the first columns of the rows `rows[lane]` to and from lane vectors, in
// blocks of PackLanes<T>() columns. They return how many columns they moved (0 without AVX).
template <typename T>
inline int64_t GatherFullPack(const T* const* rows, int64_t count, Lanes<T>* out) {
  static_assert(sizeof(Lanes<T>) == sizeof(typename Avx<T>::Register), "one register per lane vector");
  constexpr int kLanes = PackLanes<T>();
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    typename Avx<T>::Register r[kLanes];
    for (int lane = 0; lane < kLanes; ++lane) r[lane] = Avx<T>::Load(rows[lane] + i);
    Avx<T>::Transpose(r);
    for (int j = 0; j < kLanes; ++j) out[i + j] = reinterpret_cast<const Lanes<T>&>(r[j]);
  }
  return i;
}

template <typename T>
inline int64_t ScatterFullPack(const Lanes<T>* values, int64_t count, T* const* rows) {
  constexpr int kLanes = PackLanes<T>();
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes) {
    typename Avx<T>::Register r[kLanes];
    for (int j = 0; j < kLanes; ++j) r[j] = reinterpret_cast<const typename Avx<T>::Register&>(values[i + j]);
    Avx<T>::Transpose(r);
    for (int lane = 0; lane < kLanes; ++lane) Avx<T>::Store(rows[lane] + i, r[lane]);
  }
  return i;
}
#else
template <typename T>
inline int64_t GatherFullPack(const T* const*, int64_t, Lanes<T>*) { return 0; }
template <typename T>
inline int64_t ScatterFullPack(const Lanes<T>*, int64_t, T* const*) { return 0; }
#endif

// out[i][lane] = rows[lane][i] for i < count; lanes from `active` on read as zeros.
template <typename T>
inline void GatherLanes(const T* const* rows, int active, int64_t count, Lanes<T>* out) {
  int64_t i = active == PackLanes<T>() ? GatherFullPack<T>(rows, count, out) : 0;
  for (; i < count; ++i) {
    Lanes<T> value = {};
    for (int lane = 0; lane < active; ++lane) value[lane] = rows[lane][i];
    out[i] = value;
  }
}

// rows[lane][i] = values[i][lane] for i < count and the first `active` lanes.
template <typename T>
inline void ScatterLanes(const Lanes<T>* values, int active, int64_t count, T* const* rows) {
  int64_t i = active == PackLanes<T>() ? ScatterFullPack<T>(values, count, rows) : 0;
  for (; i < count; ++i) {
    for (int lane = 0; lane < active; ++lane) rows[lane][i] = values[i][lane];
  }
}

}  // namespace cpu
}  // namespace kerasrwm

#endif  // KERASRWM_OPS_KERNELS_SRWM_LANES_H_

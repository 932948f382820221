#include "runtime/cpu_kernels.h"

#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace hubnode::runtime::kernels {

float Bf16ToF32(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

namespace {

inline float LoadScalar(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32:
      return static_cast<const float*>(w)[i];
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w)[i]);
  }
  return 0;
}

const void* RowPtr(const void* w, DType dt, int64_t offset) {
  return static_cast<const uint8_t*>(w) + offset * (dt == DType::kF32 ? 4 : 2);
}

// --- scalar: 8 partial sums per row, combined in a fixed order ---

void DotRowsScalar(const float* x, const void* w, DType dt, int64_t stride, int64_t in, int rows,
                   float* out) {
  for (int r = 0; r < rows; ++r) {
    const void* row = RowPtr(w, dt, r * stride);
    float acc[8] = {};
    int64_t i = 0;
    for (; i + 8 <= in; i += 8) {
      for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * LoadScalar(row, dt, i + l);
    }
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < in; ++i) sum += x[i] * LoadScalar(row, dt, i);
    out[r] = sum;
  }
}

void ToF32Scalar(const void* src, DType dt, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = LoadScalar(src, dt, i);
}

float DotF32Scalar(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void AxpyScalar(float s, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

// --- AVX2 + FMA + F16C ---

#define HUBNODE_AVX2 __attribute__((target("avx2,fma,f16c")))

HUBNODE_AVX2 inline __m256 Load8(const void* row, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32:
      return _mm256_loadu_ps(static_cast<const float*>(row) + i);
    case DType::kBF16: {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    case DType::kF16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i)));
  }
  return _mm256_setzero_ps();
}

HUBNODE_AVX2 inline float Hsum8(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

HUBNODE_AVX2 void DotRowsAvx2(const float* x, const void* w, DType dt, int64_t stride, int64_t in,
                              int rows, float* out) {
  __m256 acc[kBlockRows];
  for (int r = 0; r < rows; ++r) acc[r] = _mm256_setzero_ps();
  const int64_t main = in & ~int64_t{7};
  for (int64_t i = 0; i < main; i += 8) {
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int r = 0; r < rows; ++r) {
      acc[r] = _mm256_fmadd_ps(xv, Load8(RowPtr(w, dt, r * stride), dt, i), acc[r]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    float sum = Hsum8(acc[r]);
    const void* row = RowPtr(w, dt, r * stride);
    for (int64_t i = main; i < in; ++i) sum += x[i] * LoadScalar(row, dt, i);
    out[r] = sum;
  }
}

HUBNODE_AVX2 void ToF32Avx2(const void* src, DType dt, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, Load8(src, dt, i));
  for (; i < n; ++i) dst[i] = LoadScalar(src, dt, i);
}

HUBNODE_AVX2 float DotF32Avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float sum = Hsum8(acc);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

HUBNODE_AVX2 void AxpyAvx2(float s, const float* x, float* y, int64_t n) {
  const __m256 sv = _mm256_set1_ps(s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(sv, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += s * x[i];
}

// --- AVX-512F ---

#define HUBNODE_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

HUBNODE_AVX512 inline __m512 Load16(const void* row, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32:
      return _mm512_loadu_ps(static_cast<const float*>(row) + i);
    case DType::kBF16: {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case DType::kF16:
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
  }
  return _mm512_setzero_ps();
}

HUBNODE_AVX512 void DotRowsAvx512(const float* x, const void* w, DType dt, int64_t stride,
                                  int64_t in, int rows, float* out) {
  __m512 acc[kBlockRows];
  for (int r = 0; r < rows; ++r) acc[r] = _mm512_setzero_ps();
  const int64_t main = in & ~int64_t{15};
  for (int64_t i = 0; i < main; i += 16) {
    const __m512 xv = _mm512_loadu_ps(x + i);
    for (int r = 0; r < rows; ++r) {
      acc[r] = _mm512_fmadd_ps(xv, Load16(RowPtr(w, dt, r * stride), dt, i), acc[r]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    float sum = _mm512_reduce_add_ps(acc[r]);
    const void* row = RowPtr(w, dt, r * stride);
    for (int64_t i = main; i < in; ++i) sum += x[i] * LoadScalar(row, dt, i);
    out[r] = sum;
  }
}

HUBNODE_AVX512 void ToF32Avx512(const void* src, DType dt, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, Load16(src, dt, i));
  for (; i < n; ++i) dst[i] = LoadScalar(src, dt, i);
}

HUBNODE_AVX512 float DotF32Avx512(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  float sum = _mm512_reduce_add_ps(acc);
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

HUBNODE_AVX512 void AxpyAvx512(float s, const float* x, float* y, int64_t n) {
  const __m512 sv = _mm512_set1_ps(s);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(sv, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += s * x[i];
}

constexpr KernelSet kScalar{"scalar", DotRowsScalar, ToF32Scalar, DotF32Scalar, AxpyScalar};
constexpr KernelSet kAvx2{"avx2", DotRowsAvx2, ToF32Avx2, DotF32Avx2, AxpyAvx2};
constexpr KernelSet kAvx512{"avx512", DotRowsAvx512, ToF32Avx512, DotF32Avx512, AxpyAvx512};

const KernelSet& Choose() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f");
  const char* forced = std::getenv("HUBNODE_CPU_KERNELS");
  const std::string want = forced ? forced : "";
  if (want == "scalar") return kScalar;
  if (want == "avx2" && avx2) return kAvx2;
  if (avx512) return kAvx512;
  if (avx2) return kAvx2;
  return kScalar;
}

}  // namespace

const KernelSet& Select() {
  static const KernelSet& chosen = Choose();
  return chosen;
}

const KernelSet& Scalar() { return kScalar; }

const KernelSet* ByName(std::string_view name) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (name == "scalar") return &kScalar;
  if (name == "avx2" && avx2) return &kAvx2;
  if (name == "avx512" && avx2 && __builtin_cpu_supports("avx512f")) return &kAvx512;
  return nullptr;
}

}  // namespace hubnode::runtime::kernels

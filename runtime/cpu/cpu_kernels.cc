#include "runtime/cpu/cpu_kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/cpu/simd.h"

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
    default:
      return 0;  // block-scaled dtypes have their own kernels (quant_kernels.cc)
  }
}

const void* RowPtr(const void* w, DType dt, int64_t offset) {
  return static_cast<const uint8_t*>(w) + offset * (dt == DType::kF32 ? 4 : 2);  // f32, f16, bf16
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


template <DType kDt>
HUBNODE_AVX2 inline __m256 Load8(const void* row, int64_t i) {
  if constexpr (kDt == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(row) + i);
  } else if constexpr (kDt == DType::kBF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(row) + i)));
  }
}

HUBNODE_AVX2 inline __m256 Load8(const void* row, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32: return Load8<DType::kF32>(row, i);
    case DType::kBF16: return Load8<DType::kBF16>(row, i);
    case DType::kF16: return Load8<DType::kF16>(row, i);
    default: return _mm256_setzero_ps();
  }
}

// The dtype is a template parameter so the inner loop has no branch on it.
template <DType kDt>
HUBNODE_AVX2 void DotRowsAvx2T(const float* x, const void* w, int64_t stride, int64_t in, int rows, float* out) {
  __m256 acc[kBlockRows];
  const void* row[kBlockRows];
  for (int r = 0; r < rows; ++r) {
    acc[r] = _mm256_setzero_ps();
    row[r] = RowPtr(w, kDt, r * stride);
  }
  const int64_t main = in & ~int64_t{7};
  const char* ahead = static_cast<const char*>(RowPtr(w, kDt, rows * stride));  // see DotRowsAvx512T
  const int64_t block_bytes = rows * stride * static_cast<int64_t>(DTypeSize(kDt));
  int64_t prefetched = 0;
  const int64_t per_step = (block_bytes + (main / 8) - 1) / std::max<int64_t>(1, main / 8);
  for (int64_t i = 0; i < main; i += 8) {
    for (int64_t p = 0; p < per_step && prefetched < block_bytes; p += 64, prefetched += 64) {
      _mm_prefetch(ahead + prefetched, _MM_HINT_T0);
    }
    const __m256 xv = _mm256_loadu_ps(x + i);
    for (int r = 0; r < rows; ++r) acc[r] = _mm256_fmadd_ps(xv, Load8<kDt>(row[r], i), acc[r]);
  }
  for (int r = 0; r < rows; ++r) {
    float sum = Hsum8(acc[r]);
    for (int64_t i = main; i < in; ++i) sum += x[i] * LoadScalar(row[r], kDt, i);
    out[r] = sum;
  }
}

void DotRowsAvx2(const float* x, const void* w, DType dt, int64_t stride, int64_t in, int rows, float* out) {
  switch (dt) {
    case DType::kF32: return DotRowsAvx2T<DType::kF32>(x, w, stride, in, rows, out);
    case DType::kBF16: return DotRowsAvx2T<DType::kBF16>(x, w, stride, in, rows, out);
    case DType::kF16: return DotRowsAvx2T<DType::kF16>(x, w, stride, in, rows, out);
    default: return;
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


template <DType kDt>
HUBNODE_AVX512 inline __m512 Load16(const void* row, int64_t i) {
  if constexpr (kDt == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  } else if constexpr (kDt == DType::kBF16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
  }
}

HUBNODE_AVX512 inline __m512 Load16(const void* row, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32: return Load16<DType::kF32>(row, i);
    case DType::kBF16: return Load16<DType::kBF16>(row, i);
    case DType::kF16: return Load16<DType::kF16>(row, i);
    default: return _mm512_setzero_ps();
  }
}

template <DType kDt>
HUBNODE_AVX512 void DotRowsAvx512T(const float* x, const void* w, int64_t stride, int64_t in, int rows, float* out) {
  __m512 acc[kBlockRows];
  const void* row[kBlockRows];
  for (int r = 0; r < rows; ++r) {
    acc[r] = _mm512_setzero_ps();
    row[r] = RowPtr(w, kDt, r * stride);
  }
  const int64_t main = in & ~int64_t{15};
  // Software prefetch one block ahead: rows are short (a few KiB), too short for the hardware
  // prefetcher to ramp up on each of the block's streams.
  const char* ahead = static_cast<const char*>(RowPtr(w, kDt, rows * stride));
  const int64_t block_bytes = rows * stride * static_cast<int64_t>(DTypeSize(kDt));
  int64_t prefetched = 0;
  const int64_t per_step = (block_bytes + (main / 16) - 1) / std::max<int64_t>(1, main / 16);
  for (int64_t i = 0; i < main; i += 16) {
    for (int64_t p = 0; p < per_step && prefetched < block_bytes; p += 64, prefetched += 64) {
      _mm_prefetch(ahead + prefetched, _MM_HINT_T0);
    }
    const __m512 xv = _mm512_loadu_ps(x + i);
    for (int r = 0; r < rows; ++r) acc[r] = _mm512_fmadd_ps(xv, Load16<kDt>(row[r], i), acc[r]);
  }
  for (int r = 0; r < rows; ++r) {
    float sum = _mm512_reduce_add_ps(acc[r]);
    for (int64_t i = main; i < in; ++i) sum += x[i] * LoadScalar(row[r], kDt, i);
    out[r] = sum;
  }
}

void DotRowsAvx512(const float* x, const void* w, DType dt, int64_t stride, int64_t in, int rows, float* out) {
  switch (dt) {
    case DType::kF32: return DotRowsAvx512T<DType::kF32>(x, w, stride, in, rows, out);
    case DType::kBF16: return DotRowsAvx512T<DType::kBF16>(x, w, stride, in, rows, out);
    case DType::kF16: return DotRowsAvx512T<DType::kF16>(x, w, stride, in, rows, out);
    default: return;
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

template <auto kDotRows>
void DotTileByRows(const float* x, int64_t x_stride, int nx, const float* w, int64_t stride, int64_t in, int rows,
                   float* out) {
  for (int j = 0; j < nx; ++j) kDotRows(x + j * x_stride, w, DType::kF32, stride, in, rows, out + j * kBlockRows);
}

// 4 activation rows x 4 weight rows per pass: 16 accumulators, 8 loads per 16 FMAs (one
// activation row at a time needs 9 loads per 8 FMAs and is load-bound).
HUBNODE_AVX512 void DotTileAvx512(const float* x, int64_t x_stride, int nx, const float* w, int64_t stride,
                                  int64_t in, int rows, float* out) {
  if (nx != 4) return DotTileByRows<DotRowsAvx512>(x, x_stride, nx, w, stride, in, rows, out);
  const int64_t main = in & ~int64_t{15};
  for (int r0 = 0; r0 < rows; r0 += 4) {
    const int nr = std::min(4, rows - r0);
    if (nr != 4) {
      for (int j = 0; j < 4; ++j) {
        DotRowsAvx512(x + j * x_stride, w + r0 * stride, DType::kF32, stride, in, nr, out + j * kBlockRows + r0);
      }
      continue;
    }
    __m512 acc[4][4];
    for (auto& a : acc)
      for (auto& v : a) v = _mm512_setzero_ps();
    const float* wr = w + r0 * stride;
    for (int64_t i = 0; i < main; i += 16) {
      const __m512 w0 = _mm512_loadu_ps(wr + i), w1 = _mm512_loadu_ps(wr + stride + i);
      const __m512 w2 = _mm512_loadu_ps(wr + 2 * stride + i), w3 = _mm512_loadu_ps(wr + 3 * stride + i);
      for (int j = 0; j < 4; ++j) {
        const __m512 xv = _mm512_loadu_ps(x + j * x_stride + i);
        acc[j][0] = _mm512_fmadd_ps(xv, w0, acc[j][0]);
        acc[j][1] = _mm512_fmadd_ps(xv, w1, acc[j][1]);
        acc[j][2] = _mm512_fmadd_ps(xv, w2, acc[j][2]);
        acc[j][3] = _mm512_fmadd_ps(xv, w3, acc[j][3]);
      }
    }
    for (int j = 0; j < 4; ++j) {
      for (int r = 0; r < 4; ++r) {
        float sum = _mm512_reduce_add_ps(acc[j][r]);
        for (int64_t i = main; i < in; ++i) sum += x[j * x_stride + i] * wr[r * stride + i];
        out[j * kBlockRows + r0 + r] = sum;
      }
    }
  }
}

constexpr KernelSet kScalar{"scalar",       DotRowsScalar, DotTileByRows<DotRowsScalar>, ToF32Scalar, DotF32Scalar,
                            AxpyScalar,     DotRowsQScalar, nullptr, DotTileQScalar,               DequantRowsScalar};
constexpr KernelSet kAvx2{"avx2",       DotRowsAvx2, DotTileByRows<DotRowsAvx2>, ToF32Avx2, DotF32Avx2,
                          AxpyAvx2,     DotRowsQAvx2, nullptr, DotTileQAvx2,               DequantRowsAvx2};
constexpr KernelSet kAvx512{"avx512",       DotRowsAvx512, DotTileAvx512,  ToF32Avx512, DotF32Avx512,
                            AxpyAvx512,     DotRowsQAvx512, RawRowsAvx512, DotTileQAvx512, DequantRowsAvx512};

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

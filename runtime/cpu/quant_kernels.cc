#include "runtime/cpu/quant_kernels.h"

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*); a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/cpu/cpu_kernels.h"

namespace hubnode::runtime::kernels {
namespace {

// Columns per scale: the whole row when the block is at least as wide.
inline int64_t BlockCols(const WeightView& w) {
  return w.block_cols > 0 && w.block_cols < w.cols ? w.block_cols : w.cols;
}

// The scales of row r (one per column block).
inline const float* ScaleRow(const WeightView& w, int64_t r) {
  const int64_t bc = BlockCols(w);
  const int64_t nbc = (w.cols + bc - 1) / bc;
  const int64_t br = w.block_rows > 0 ? w.block_rows : 1;
  return w.scales + (r / br) * nbc;
}

// Row r's first byte (rows of kI4 have an even column count, so they start on a byte).
inline const uint8_t* DataRow(const WeightView& w, int64_t r) {
  return static_cast<const uint8_t*>(w.data) + DTypeBytes(w.dtype, static_cast<uint64_t>(r * w.cols));
}

// The factor a block's scale is used with: e4m3 widened through fp16 is 2^-8 of its value.
template <DType kDt>
inline float ScaleFactor(float s) {
  return kDt == DType::kF8E4M3 ? s * 256.0f : s;
}

inline uint16_t F8ToF16Bits(uint8_t v) {
  return static_cast<uint16_t>(((v & 0x7Fu) << 7) | ((v & 0x80u) << 8));
}

// Element i of a row, with its block's factor (ScaleFactor) applied.
template <DType kDt>
inline float DequantScalar(const uint8_t* row, int64_t i, float factor) {
  if constexpr (kDt == DType::kI8) {
    return static_cast<float>(static_cast<int8_t>(row[i])) * factor;
  } else if constexpr (kDt == DType::kI4) {
    return static_cast<float>(static_cast<int>((row[i / 2] >> ((i & 1) * 4)) & 0xF) - 8) * factor;
  } else {
    return F16ToF32(F8ToF16Bits(row[i])) * factor;
  }
}

template <DType kDt>
void DequantRowsScalarT(const WeightView& w, int64_t row0, int rows, float* dst) {
  const int64_t bc = BlockCols(w);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow(w, row0 + r);
    const float* s = ScaleRow(w, row0 + r);
    float* d = dst + r * w.cols;
    for (int64_t i = 0; i < w.cols; ++i) d[i] = DequantScalar<kDt>(row, i, ScaleFactor<kDt>(s[i / bc]));
  }
}

// --- AVX2 + FMA + F16C ---

#define HUBNODE_AVX2 __attribute__((target("avx2,fma,f16c")))

template <DType kDt>
HUBNODE_AVX2 inline __m256 LoadQ8(const uint8_t* row, int64_t i, __m256 factor) {
  __m256 v;
  if constexpr (kDt == DType::kI8) {
    v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i))));
  } else if constexpr (kDt == DType::kI4) {
    int32_t four;
    std::memcpy(&four, row + i / 2, 4);
    const __m128i b = _mm_cvtsi32_si128(four), m = _mm_set1_epi8(0x0F);
    const __m128i e = _mm_unpacklo_epi8(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
    v = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(e), _mm256_set1_epi32(8)));
  } else {
    const __m128i w = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i)));
    const __m128i h = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x7F)), 7),
                                   _mm_slli_epi16(_mm_and_si128(w, _mm_set1_epi16(0x80)), 8));
    v = _mm256_cvtph_ps(h);
  }
  return _mm256_mul_ps(v, factor);
}

// As cpu_kernels.cc's (the f32 product's reduction, which these must match).
HUBNODE_AVX2 inline float Hsum8(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

template <DType kDt>
HUBNODE_AVX2 void DotRowsQAvx2T(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  const int64_t in = w.cols, bc = BlockCols(w), main = in & ~int64_t{7};
  __m256 acc[kBlockRows];
  const uint8_t* row[kBlockRows];
  const float* srow[kBlockRows];
  for (int r = 0; r < rows; ++r) {
    acc[r] = _mm256_setzero_ps();
    row[r] = DataRow(w, row0 + r);
    srow[r] = ScaleRow(w, row0 + r);
  }
  for (int64_t c0 = 0; c0 < main; c0 += bc) {
    const int64_t c1 = std::min(c0 + bc, main);
    __m256 f[kBlockRows];
    for (int r = 0; r < rows; ++r) f[r] = _mm256_set1_ps(ScaleFactor<kDt>(srow[r][c0 / bc]));
    for (int64_t i = c0; i < c1; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      for (int r = 0; r < rows; ++r) acc[r] = _mm256_fmadd_ps(xv, LoadQ8<kDt>(row[r], i, f[r]), acc[r]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    float sum = Hsum8(acc[r]);
    for (int64_t i = main; i < in; ++i) sum += x[i] * DequantScalar<kDt>(row[r], i, ScaleFactor<kDt>(srow[r][i / bc]));
    out[r] = sum;
  }
}

template <DType kDt>
HUBNODE_AVX2 void DequantRowsAvx2T(const WeightView& w, int64_t row0, int rows, float* dst) {
  const int64_t in = w.cols, bc = BlockCols(w), main = in & ~int64_t{7};
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow(w, row0 + r);
    const float* s = ScaleRow(w, row0 + r);
    float* d = dst + r * in;
    for (int64_t c0 = 0; c0 < main; c0 += bc) {
      const __m256 f = _mm256_set1_ps(ScaleFactor<kDt>(s[c0 / bc]));
      for (int64_t i = c0; i < std::min(c0 + bc, main); i += 8) _mm256_storeu_ps(d + i, LoadQ8<kDt>(row, i, f));
    }
    for (int64_t i = main; i < in; ++i) d[i] = DequantScalar<kDt>(row, i, ScaleFactor<kDt>(s[i / bc]));
  }
}

// --- AVX-512F ---

#define HUBNODE_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

template <DType kDt>
HUBNODE_AVX512 inline __m512 LoadQ16(const uint8_t* row, int64_t i, __m512 factor) {
  __m512 v;
  if constexpr (kDt == DType::kI8) {
    v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i))));
  } else if constexpr (kDt == DType::kI4) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i / 2)), m = _mm_set1_epi8(0x0F);
    const __m128i e = _mm_unpacklo_epi8(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
    v = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(e), _mm512_set1_epi32(8)));
  } else {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x7F)), 7),
                                      _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8));
    v = _mm512_cvtph_ps(h);
  }
  return _mm512_mul_ps(v, factor);
}

template <DType kDt>
HUBNODE_AVX512 void DotRowsQAvx512T(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  const int64_t in = w.cols, bc = BlockCols(w), main = in & ~int64_t{15};
  __m512 acc[kBlockRows];
  const uint8_t* row[kBlockRows];
  const float* srow[kBlockRows];
  for (int r = 0; r < rows; ++r) {
    acc[r] = _mm512_setzero_ps();
    row[r] = DataRow(w, row0 + r);
    srow[r] = ScaleRow(w, row0 + r);
  }
  // Software prefetch of the next block of rows, as for bf16 (cpu_kernels.cc).
  const char* ahead = reinterpret_cast<const char*>(DataRow(w, row0 + rows));
  const int64_t block_bytes = static_cast<int64_t>(DTypeBytes(kDt, static_cast<uint64_t>(rows * in)));
  const int64_t per_step = (block_bytes + (main / 16) - 1) / std::max<int64_t>(1, main / 16);
  int64_t prefetched = 0;
  for (int64_t c0 = 0; c0 < main; c0 += bc) {
    const int64_t c1 = std::min(c0 + bc, main);
    __m512 f[kBlockRows];
    for (int r = 0; r < rows; ++r) f[r] = _mm512_set1_ps(ScaleFactor<kDt>(srow[r][c0 / bc]));
    for (int64_t i = c0; i < c1; i += 16) {
      for (int64_t p = 0; p < per_step && prefetched < block_bytes; p += 64, prefetched += 64) {
        _mm_prefetch(ahead + prefetched, _MM_HINT_T0);
      }
      const __m512 xv = _mm512_loadu_ps(x + i);
      for (int r = 0; r < rows; ++r) acc[r] = _mm512_fmadd_ps(xv, LoadQ16<kDt>(row[r], i, f[r]), acc[r]);
    }
  }
  for (int r = 0; r < rows; ++r) {
    float sum = _mm512_reduce_add_ps(acc[r]);
    for (int64_t i = main; i < in; ++i) sum += x[i] * DequantScalar<kDt>(row[r], i, ScaleFactor<kDt>(srow[r][i / bc]));
    out[r] = sum;
  }
}

template <DType kDt>
HUBNODE_AVX512 void DequantRowsAvx512T(const WeightView& w, int64_t row0, int rows, float* dst) {
  const int64_t in = w.cols, bc = BlockCols(w), main = in & ~int64_t{15};
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow(w, row0 + r);
    const float* s = ScaleRow(w, row0 + r);
    float* d = dst + r * in;
    for (int64_t c0 = 0; c0 < main; c0 += bc) {
      const __m512 f = _mm512_set1_ps(ScaleFactor<kDt>(s[c0 / bc]));
      for (int64_t i = c0; i < std::min(c0 + bc, main); i += 16) _mm512_storeu_ps(d + i, LoadQ16<kDt>(row, i, f));
    }
    for (int64_t i = main; i < in; ++i) d[i] = DequantScalar<kDt>(row, i, ScaleFactor<kDt>(s[i / bc]));
  }
}

}  // namespace

#define HUBNODE_DISPATCH(fn, ...)                                       \
  switch (w.dtype) {                                                    \
    case DType::kI8: return fn<DType::kI8>(__VA_ARGS__);                \
    case DType::kI4: return fn<DType::kI4>(__VA_ARGS__);                \
    case DType::kF8E4M3: return fn<DType::kF8E4M3>(__VA_ARGS__);        \
    default: return;                                                    \
  }

void DequantRowsScalar(const WeightView& w, int64_t row0, int rows, float* dst) {
  HUBNODE_DISPATCH(DequantRowsScalarT, w, row0, rows, dst)
}

void DotRowsQScalar(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  // The f32 scalar product over the dequantized row: bit for bit what prefill computes.
  thread_local std::vector<float> row;
  row.resize(static_cast<size_t>(w.cols));
  for (int r = 0; r < rows; ++r) {
    DequantRowsScalar(w, row0 + r, 1, row.data());
    Scalar().dot_rows(x, row.data(), DType::kF32, w.cols, w.cols, 1, out + r);
  }
}

void DotRowsQAvx2(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  HUBNODE_DISPATCH(DotRowsQAvx2T, x, w, row0, rows, out)
}

void DequantRowsAvx2(const WeightView& w, int64_t row0, int rows, float* dst) {
  HUBNODE_DISPATCH(DequantRowsAvx2T, w, row0, rows, dst)
}

void DotRowsQAvx512(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  HUBNODE_DISPATCH(DotRowsQAvx512T, x, w, row0, rows, out)
}

void DequantRowsAvx512(const WeightView& w, int64_t row0, int rows, float* dst) {
  HUBNODE_DISPATCH(DequantRowsAvx512T, w, row0, rows, dst)
}

}  // namespace hubnode::runtime::kernels

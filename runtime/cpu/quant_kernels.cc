#include "runtime/cpu/quant_kernels.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/simd.h"

namespace hubnode::runtime::kernels {
namespace {

// Columns per scale: the whole row when the block is at least as wide.
inline int64_t BlockCols(const WeightView& w) {
  return w.block_cols > 0 && w.block_cols < w.cols ? w.block_cols : w.cols;
}

// A weight's block geometry, worked out once per call (divisions are dear next to a short row).
struct Geo {
  int64_t bc, nbc, br;
};
inline Geo MakeGeo(const WeightView& w) {
  const int64_t bc = BlockCols(w);
  return Geo{bc, bc == w.cols ? 1 : (w.cols + bc - 1) / bc, w.block_rows > 0 ? w.block_rows : 1};
}

// The scales of row r (one per column block).
inline const float* ScaleRow(const WeightView& w, const Geo& g, int64_t r) {
  return w.scales + (g.br == 1 ? r : r / g.br) * g.nbc;
}

// Row r's first byte (rows of kI4 have an even column count, so they start on a byte).
template <DType kDt>
inline const uint8_t* DataRow(const WeightView& w, int64_t r) {
  const int64_t at = r * w.cols;
  return static_cast<const uint8_t*>(w.data) + (kDt == DType::kI4 ? at / 2 : at);
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
  const Geo g = MakeGeo(w);
  const int64_t bc = g.bc;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow<kDt>(w, row0 + r);
    const float* s = ScaleRow(w, g, row0 + r);
    float* d = dst + r * w.cols;
    for (int64_t i = 0; i < w.cols; ++i) d[i] = DequantScalar<kDt>(row, i, ScaleFactor<kDt>(s[i / bc]));
  }
}

// The stored value as f32 (float8: its fp16 widening, 2^-8 of the value; ScaleFactor has the 2^8).
template <DType kDt>
inline float RawScalar(const uint8_t* row, int64_t i) {
  if constexpr (kDt == DType::kI8) {
    return static_cast<float>(static_cast<int8_t>(row[i]));
  } else if constexpr (kDt == DType::kI4) {
    return static_cast<float>(static_cast<int>((row[i / 2] >> ((i & 1) * 4)) & 0xF) - 8);
  } else {
    return F16ToF32(F8ToF16Bits(row[i]));
  }
}

template <DType kDt>
void DotRowsQScalarT(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  const Geo g = MakeGeo(w);
  const int64_t bc = g.bc;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow<kDt>(w, row0 + r);
    const float* s = ScaleRow(w, g, row0 + r);
    float total = 0;
    for (int64_t c0 = 0, b = 0; c0 < w.cols; c0 += bc, ++b) {
      float block = 0;
      for (int64_t i = c0; i < std::min(c0 + bc, w.cols); ++i) block += x[i] * RawScalar<kDt>(row, i);
      total += block * ScaleFactor<kDt>(s[b]);
    }
    out[r] = total;
  }
}

// --- AVX2 + FMA + F16C ---


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

template <DType kDt>
HUBNODE_AVX2 void DotRowsQAvx2T(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  const Geo g = MakeGeo(w);
  const int64_t in = w.cols, bc = g.bc, main = in & ~int64_t{7};
  __m256 acc[kBlockRows];
  const uint8_t* row[kBlockRows];
  const float* srow[kBlockRows];
  for (int r = 0; r < rows; ++r) {
    acc[r] = _mm256_setzero_ps();
    row[r] = DataRow<kDt>(w, row0 + r);
    srow[r] = ScaleRow(w, g, row0 + r);
  }
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t c0 = 0, b = 0; c0 < main; c0 += bc, ++b) {
    const int64_t c1 = std::min(c0 + bc, main);
    __m256 block[kBlockRows];
    for (int r = 0; r < rows; ++r) block[r] = _mm256_setzero_ps();
    for (int64_t i = c0; i < c1; i += 8) {
      const __m256 xv = _mm256_loadu_ps(x + i);
      for (int r = 0; r < rows; ++r) block[r] = _mm256_fmadd_ps(xv, LoadQ8<kDt>(row[r], i, one), block[r]);
    }
    for (int r = 0; r < rows; ++r) {
      acc[r] = _mm256_fmadd_ps(block[r], _mm256_set1_ps(ScaleFactor<kDt>(srow[r][b])), acc[r]);
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
  const Geo g = MakeGeo(w);
  const int64_t in = w.cols, bc = g.bc, main = in & ~int64_t{7};
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow<kDt>(w, row0 + r);
    const float* s = ScaleRow(w, g, row0 + r);
    float* d = dst + r * in;
    for (int64_t c0 = 0, b = 0; c0 < main; c0 += bc, ++b) {
      const __m256 f = _mm256_set1_ps(ScaleFactor<kDt>(s[b]));
      for (int64_t i = c0; i < std::min(c0 + bc, main); i += 8) _mm256_storeu_ps(d + i, LoadQ8<kDt>(row, i, f));
    }
    for (int64_t i = main; i < in; ++i) d[i] = DequantScalar<kDt>(row, i, ScaleFactor<kDt>(s[i / bc]));
  }
}

// --- AVX-512F ---


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

// 32 int4 values (16 bytes) at once: elements i .. i + 15 and i + 16 .. i + 31 as f32.
HUBNODE_AVX512 inline void RawI4x32(const uint8_t* row, int64_t i, __m512* lo, __m512* hi) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i / 2)), m = _mm_set1_epi8(0x0F);
  const __m128i l = _mm_and_si128(b, m), h = _mm_and_si128(_mm_srli_epi16(b, 4), m), eight = _mm_set1_epi8(8);
  *lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_sub_epi8(_mm_unpacklo_epi8(l, h), eight)));
  *hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_sub_epi8(_mm_unpackhi_epi8(l, h), eight)));
}

// 16 stored values as f32 (float8: 2^-8 of its value).
template <DType kDt>
HUBNODE_AVX512 inline __m512 Raw16(const uint8_t* row, int64_t i) {
  if constexpr (kDt == DType::kI8) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i))));
  } else if constexpr (kDt == DType::kI4) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + i / 2)), m = _mm_set1_epi8(0x0F);
    const __m128i e = _mm_unpacklo_epi8(_mm_and_si128(b, m), _mm_and_si128(_mm_srli_epi16(b, 4), m));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_sub_epi8(e, _mm_set1_epi8(8))));
  } else {
    // S.EEEE.MMM -> fp16 S.0EEEE.MMM0000000: the byte to the top, one arithmetic shift right,
    // the copied sign bit cleared.
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i)));
    const __m256i h = _mm256_and_si256(_mm256_srai_epi16(_mm256_slli_epi16(w, 8), 1), _mm256_set1_epi16(-16385));
    return _mm512_cvtph_ps(h);
  }
}

// Block sums for NR weight rows and NX activation rows over columns [c0, c1) (a multiple of 16
// long), in the one order dot_rows_q and dot_tile_q share: ascending columns, one FMA per 16.
// The weights come as stored (kF32 = false: converted here) or already converted to their raw
// f32 values (kF32: prefill converts a block of rows once for all its activation rows); the
// conversion is exact, so both give the same bits.
template <DType kDt, bool kF32, int NX, int NR>
HUBNODE_AVX512 inline void BlockSums(const float* const* x, const void* const* row, int64_t c0, int64_t c1,
                                     __m512 (&block)[NX][NR]) {
  for (int j = 0; j < NX; ++j)
    for (int r = 0; r < NR; ++r) block[j][r] = _mm512_setzero_ps();
  int64_t i = c0;
  if constexpr (kDt == DType::kI4 && !kF32) {
    for (; i + 32 <= c1; i += 32) {
      __m512 lo[NR], hi[NR];
      for (int r = 0; r < NR; ++r) RawI4x32(static_cast<const uint8_t*>(row[r]), i, &lo[r], &hi[r]);
      for (int j = 0; j < NX; ++j) {
        const __m512 x0 = _mm512_loadu_ps(x[j] + i);
        for (int r = 0; r < NR; ++r) block[j][r] = _mm512_fmadd_ps(x0, lo[r], block[j][r]);
      }
      for (int j = 0; j < NX; ++j) {
        const __m512 x1 = _mm512_loadu_ps(x[j] + i + 16);
        for (int r = 0; r < NR; ++r) block[j][r] = _mm512_fmadd_ps(x1, hi[r], block[j][r]);
      }
    }
  }
  for (; i < c1; i += 16) {
    __m512 wv[NR];
    for (int r = 0; r < NR; ++r) {
      if constexpr (kF32) {
        wv[r] = _mm512_loadu_ps(static_cast<const float*>(row[r]) + i);
      } else {
        wv[r] = Raw16<kDt>(static_cast<const uint8_t*>(row[r]), i);
      }
    }
    for (int j = 0; j < NX; ++j) {
      const __m512 xv = _mm512_loadu_ps(x[j] + i);
      for (int r = 0; r < NR; ++r) block[j][r] = _mm512_fmadd_ps(xv, wv[r], block[j][r]);
    }
  }
}

// NX activation rows x NR weight rows from row0: out[j * kBlockRows + r]. `src` is the rows as
// stored, or (kF32) converted to raw f32 with `src_stride` floats between rows.
template <DType kDt, bool kF32, int NX, int NR>
HUBNODE_AVX512 void DotQAvx512T(const float* const* x, const WeightView& w, int64_t row0, const float* src,
                                int64_t src_stride, float* out) {
  const Geo g = MakeGeo(w);
  const int64_t in = w.cols, bc = g.bc, main = in & ~int64_t{15};
  const uint8_t* row[NR];
  const void* from[NR];
  const float* srow[NR];
  __m512 acc[NX][NR];
  for (int r = 0; r < NR; ++r) {
    row[r] = DataRow<kDt>(w, row0 + r);
    from[r] = kF32 ? static_cast<const void*>(src + r * src_stride) : row[r];
    srow[r] = ScaleRow(w, g, row0 + r);
  }
  for (int j = 0; j < NX; ++j)
    for (int r = 0; r < NR; ++r) acc[j][r] = _mm512_setzero_ps();
  for (int64_t c0 = 0, b = 0; c0 < main; c0 += bc, ++b) {
    __m512 block[NX][NR];
    BlockSums<kDt, kF32, NX, NR>(x, from, c0, std::min(c0 + bc, main), block);
    for (int r = 0; r < NR; ++r) {
      const __m512 f = _mm512_set1_ps(ScaleFactor<kDt>(srow[r][b]));
      for (int j = 0; j < NX; ++j) acc[j][r] = _mm512_fmadd_ps(block[j][r], f, acc[j][r]);
    }
  }
  for (int j = 0; j < NX; ++j) {
    for (int r = 0; r < NR; ++r) {
      float sum = _mm512_reduce_add_ps(acc[j][r]);
      for (int64_t i = main; i < in; ++i) sum += x[j][i] * DequantScalar<kDt>(row[r], i, ScaleFactor<kDt>(srow[r][i / bc]));
      out[j * kBlockRows + r] = sum;
    }
  }
}

template <DType kDt>
HUBNODE_AVX512 void DotRowsQAvx512T(const float* x, const WeightView& w, int64_t row0, int rows, float* out) {
  // Software prefetch of the next block of rows (rows are short: see cpu_kernels.cc).
  const char* ahead = reinterpret_cast<const char*>(DataRow<kDt>(w, row0 + rows));
  const int64_t bytes = static_cast<int64_t>(DTypeBytes(kDt, static_cast<uint64_t>(rows * w.cols)));
  for (int64_t p = 0; p < bytes; p += 64) _mm_prefetch(ahead + p, _MM_HINT_T1);
  const float* xs[1] = {x};
  int r = 0;
  for (; r + 4 <= rows; r += 4) DotQAvx512T<kDt, false, 1, 4>(xs, w, row0 + r, nullptr, 0, out + r);
  for (; r < rows; ++r) DotQAvx512T<kDt, false, 1, 1>(xs, w, row0 + r, nullptr, 0, out + r);
}

template <DType kDt>
HUBNODE_AVX512 void RawRowsAvx512T(const WeightView& w, int64_t row0, int rows, float* raw) {
  const int64_t in = w.cols, main = in & ~int64_t{15};
  for (int r = 0; r < rows; ++r) {
    const uint8_t* q = DataRow<kDt>(w, row0 + r);
    float* d = raw + r * in;
    int64_t i = 0;
    if constexpr (kDt == DType::kI4) {
      for (; i + 32 <= main; i += 32) {
        __m512 lo, hi;
        RawI4x32(q, i, &lo, &hi);
        _mm512_storeu_ps(d + i, lo);
        _mm512_storeu_ps(d + i + 16, hi);
      }
    }
    for (; i < main; i += 16) _mm512_storeu_ps(d + i, Raw16<kDt>(q, i));
  }
}

template <DType kDt>
HUBNODE_AVX512 void DotTileQAvx512T(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0,
                                    int rows, const float* raw, float* out) {
  // Four activation rows (missing ones read row 0 and are not stored) x two weight rows at a
  // time, over the block's raw values.
  const float* xs[4];
  for (int j = 0; j < 4; ++j) xs[j] = x + (j < nx ? j : 0) * x_stride;
  float tmp[4 * kBlockRows];
  int r = 0;
  for (; r + 2 <= rows; r += 2) DotQAvx512T<kDt, true, 4, 2>(xs, w, row0 + r, raw + r * w.cols, w.cols, tmp + r);
  for (; r < rows; ++r) DotQAvx512T<kDt, true, 4, 1>(xs, w, row0 + r, raw + r * w.cols, w.cols, tmp + r);
  for (int j = 0; j < nx; ++j)
    for (int q = 0; q < rows; ++q) out[j * kBlockRows + q] = tmp[j * kBlockRows + q];
}

template <DType kDt>
HUBNODE_AVX512 void DequantRowsAvx512T(const WeightView& w, int64_t row0, int rows, float* dst) {
  const Geo g = MakeGeo(w);
  const int64_t in = w.cols, bc = g.bc, main = in & ~int64_t{15};
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = DataRow<kDt>(w, row0 + r);
    const float* s = ScaleRow(w, g, row0 + r);
    float* d = dst + r * in;
    for (int64_t c0 = 0, b = 0; c0 < main; c0 += bc, ++b) {
      const __m512 f = _mm512_set1_ps(ScaleFactor<kDt>(s[b]));
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
  HUBNODE_DISPATCH(DotRowsQScalarT, x, w, row0, rows, out)
}

void DotTileQScalar(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                    const float*, float* out) {
  for (int j = 0; j < nx; ++j) DotRowsQScalar(x + j * x_stride, w, row0, rows, out + j * kBlockRows);
}

void DotTileQAvx2(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                  const float*, float* out) {
  for (int j = 0; j < nx; ++j) DotRowsQAvx2(x + j * x_stride, w, row0, rows, out + j * kBlockRows);
}

void DotTileQAvx512(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                    const float* raw, float* out) {
  HUBNODE_DISPATCH(DotTileQAvx512T, x, x_stride, nx, w, row0, rows, raw, out)
}

void RawRowsAvx512(const WeightView& w, int64_t row0, int rows, float* raw) {
  HUBNODE_DISPATCH(RawRowsAvx512T, w, row0, rows, raw)
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

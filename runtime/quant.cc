#include "runtime/quant.h"

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*); a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace hubnode::runtime {

QuantFormat DefaultQuantFormat(DType dtype) {
  // int4 needs small groups (its 15 levels lose much more to one outlier); int8 and fp8 keep
  // ~1/4 bit per weight of scale overhead with 128.
  return QuantFormat{dtype, 1, dtype == DType::kI4 ? 32 : 128};
}

uint64_t QuantScaleCount(int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols) {
  const uint64_t br = static_cast<uint64_t>((rows + block_rows - 1) / block_rows);
  const uint64_t bc = static_cast<uint64_t>((cols + block_cols - 1) / block_cols);
  return br * bc;
}

uint64_t QuantDataBytes(int64_t rows, int64_t cols, DType dtype) {
  return (DTypeBytes(dtype, static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols)) + 63) / 64 * 64;
}

uint64_t QuantBytes(int64_t rows, int64_t cols, const QuantFormat& f) {
  return QuantDataBytes(rows, cols, f.dtype) + 4 * QuantScaleCount(rows, cols, f.block_rows, f.block_cols);
}

uint8_t F32ToF8E4M3(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  const uint8_t sign = static_cast<uint8_t>((b >> 24) & 0x80);
  b &= 0x7FFFFFFFu;
  if (b > 0x7F800000u) return 0x7F;  // NaN
  const float a = std::fabs(v);
  if (a >= 448.0f) return sign | 0x7E;  // saturate (the format has no infinity)
  if (a < 0.015625f) {                  // below 2^-6: subnormal, m · 2^-9
    const int m = static_cast<int>(std::nearbyint(a * 512.0f));  // m == 8 is 2^-6, encoded 0x08
    return sign | static_cast<uint8_t>(m);
  }
  uint32_t e = (b >> 23) - 127 + 7;  // 1..15
  uint32_t r = (b & 0x7FFFFFu) >> 20;
  const uint32_t rem = b & 0xFFFFFu, half = 0x80000u;
  if (rem > half || (rem == half && (r & 1))) ++r;
  if (r == 8) {
    r = 0;
    ++e;
  }
  const uint32_t out = std::min<uint32_t>((e << 3) | r, 0x7E);
  return sign | static_cast<uint8_t>(out);
}

float F8E4M3ToF32(uint8_t v) {
  const int e = (v >> 3) & 0xF, m = v & 7;
  float a;
  if (e == 15 && m == 7) {
    a = std::nanf("");
  } else if (e == 0) {
    a = std::ldexp(static_cast<float>(m), -9);
  } else {
    a = std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
  }
  return (v & 0x80) ? -a : a;
}

namespace {

// 1 / scale, or 0 for a scale below the smallest normal float, whose inverse would overflow to
// infinity (0 · inf is NaN): such a block's weights (all under ~1e-36) quantize to 0.
inline float InverseScale(float scale) { return scale >= std::numeric_limits<float>::min() ? 1.0f / scale : 0.0f; }

// int8 / int4 with one scale per `bc` columns of a row (bc a multiple of 32, cols a multiple of
// bc or bc == cols a multiple of 32): the same values as the scalar loop below (round to nearest
// even, the same scale), 16 at a time. Returns false at a non-finite weight.
__attribute__((target("avx512f"))) bool QuantizeRowsAvx512(const float* src, int64_t rows, int64_t cols, DType dt,
                                                            int64_t bc, uint8_t* data, float* scales) {
  const float levels = dt == DType::kI8 ? 127.0f : 7.0f;
  const __m512i lo = _mm512_set1_epi32(dt == DType::kI8 ? -127 : -8), hi = _mm512_set1_epi32(dt == DType::kI8 ? 127 : 7);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = src + r * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += bc) {
      __m512 m = _mm512_setzero_ps();
      __mmask16 bad = 0;
      for (int64_t c = c0; c < c0 + bc; c += 16) {
        const __m512 v = _mm512_loadu_ps(row + c);
        bad |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, _mm512_abs_ps(v));
      }
      const float amax = _mm512_reduce_max_ps(m);
      if (bad || !std::isfinite(amax)) return false;
      const float scale = amax / levels;
      const float inv = InverseScale(scale);
      *scales++ = scale;
      const __m512 iv = _mm512_set1_ps(inv);
      for (int64_t c = c0; c < c0 + bc; c += 16) {
        // _mm512_cvtps_epi32 rounds to nearest even (the default MXCSR mode), as nearbyint does.
        const __m512i q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + c), iv)), lo), hi);
        const int64_t at = r * cols + c;
        if (dt == DType::kI8) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(data + at), _mm512_cvtepi32_epi8(q));
        } else {
          const __m128i b = _mm512_cvtepi32_epi8(_mm512_add_epi32(q, _mm512_set1_epi32(8)));  // 16 nibbles in bytes
          const __m128i even = _mm_and_si128(b, _mm_set1_epi16(0x00FF)), odd = _mm_srli_epi16(b, 8);
          const __m128i packed = _mm_packus_epi16(_mm_or_si128(even, _mm_slli_epi16(odd, 4)), _mm_setzero_si128());
          _mm_storel_epi64(reinterpret_cast<__m128i*>(data + at / 2), packed);
        }
      }
    }
  }
  return true;
}

bool HasAvx512() {
  static const bool yes = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
  }();
  return yes;
}

}  // namespace

Status Quantize(const float* src, int64_t rows, int64_t cols, const QuantFormat& f, uint8_t* data, float* scales) {
  const DType dt = f.dtype;
  if (!IsBlockScaled(dt)) return InvalidArgumentError("quantize: " + std::string(DTypeName(dt)) + " is not a block-scaled dtype");
  if (rows < 1 || cols < 1 || f.block_rows < 1 || f.block_cols < 1) return InvalidArgumentError("quantize: empty shape or block");
  const int64_t unit = dt == DType::kI4 ? 32 : 16;
  if (f.block_cols < cols && f.block_cols % unit != 0) {
    return InvalidArgumentError("quantize: block_cols " + std::to_string(f.block_cols) + " is not a multiple of " +
                                std::to_string(unit));
  }
  if (dt == DType::kI4 && cols % 2 != 0) return InvalidArgumentError("quantize: int4 rows need an even column count");
  const int64_t bc = std::min(f.block_cols, cols);
  if ((dt == DType::kI8 || dt == DType::kI4) && f.block_rows == 1 && bc % 32 == 0 && cols % bc == 0 && HasAvx512()) {
    if (!QuantizeRowsAvx512(src, rows, cols, dt, bc, data, scales)) return InvalidArgumentError("quantize: a weight is not finite");
    return OkStatus();
  }
  const float levels = dt == DType::kI8 ? 127.0f : dt == DType::kI4 ? 7.0f : 448.0f;
  const int64_t nbc = (cols + f.block_cols - 1) / f.block_cols;
  if (dt == DType::kI4) std::memset(data, 0, DTypeBytes(dt, static_cast<uint64_t>(rows * cols)));
  for (int64_t r0 = 0; r0 < rows; r0 += f.block_rows) {
    const int64_t r1 = std::min(rows, r0 + f.block_rows);
    for (int64_t bc = 0; bc < nbc; ++bc) {
      const int64_t c0 = bc * f.block_cols, c1 = std::min(cols, c0 + f.block_cols);
      float amax = 0;
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = src + r * cols;
        for (int64_t c = c0; c < c1; ++c) {
          if (!std::isfinite(row[c])) return InvalidArgumentError("quantize: a weight is not finite");
          amax = std::max(amax, std::fabs(row[c]));
        }
      }
      const float scale = amax / levels;
      const float inv = InverseScale(scale);
      scales[(r0 / f.block_rows) * nbc + bc] = scale;
      for (int64_t r = r0; r < r1; ++r) {
        const float* row = src + r * cols;
        for (int64_t c = c0; c < c1; ++c) {
          const float q = row[c] * inv;
          const int64_t at = r * cols + c;
          if (dt == DType::kI8) {
            data[at] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(q), -127.0f, 127.0f)));
          } else if (dt == DType::kI4) {
            const int n = static_cast<int>(std::clamp(std::nearbyint(q), -8.0f, 7.0f)) + 8;
            data[at / 2] |= static_cast<uint8_t>(n << ((at & 1) * 4));
          } else {
            data[at] = F32ToF8E4M3(q);
          }
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace hubnode::runtime

// What the SIMD kernel files share: the target attributes of each kernel set and the fixed-order
// horizontal sum every 8-lane product reduces with (products that must agree bit for bit, such as
// bf16's and the block-scaled ones, use this one function).
#pragma once

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*); a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#define HUBNODE_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HUBNODE_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

namespace hubnode::runtime::kernels {

HUBNODE_AVX2 inline float Hsum8(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace hubnode::runtime::kernels

#include "runtime/cpu/amx.h"

// GCC 12 warns inside its own AVX-512 headers (_mm512_undefined_*); a known false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace hubnode::runtime::amx {
namespace {

#define HUBNODE_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16")))

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr long kXfeatureXtiledata = 18;     // the AMX tile data

bool Probe() {
#if defined(__x86_64__) && defined(__linux__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bf16") ||
      !__builtin_cpu_supports("amx-tile") || !__builtin_cpu_supports("amx-bf16")) {
    return false;
  }
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

// The 64-byte operand of LDTILECFG (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: C 0..3 (16 weight rows x cols fp32: rows 0-15 / 16-31 of the block x m tile 0 / 1),
// A 4, 5 (16 weight rows x 32 bf16), B 6, 7 (16 pairs x cols pairs).
thread_local int loaded_cols = 0;

HUBNODE_AMX void Configure(int cols) {
  if (loaded_cols == cols) return;
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = static_cast<uint16_t>(t == 4 || t == 5 ? 64 : cols * 4);
  }
  _tile_loadconfig(&c);
  loaded_cols = cols;
}

// One block of up to 32 weight rows (a0: rows 0-15, a1: rows 16-31, `a_stride` bytes apart)
// against m tiles [mt, mt + 1 or 2); results to c[4][16][16] (tile t at c + t * 256, rows 64
// bytes apart). kTwoR: a1 is used; kTwoM: m tile mt + 1 is used.
// Steps [0, main_steps) read A in place (a0, `a_stride` bytes per row); a last step past them
// reads `tail` (32 rows x 64 bytes: the k elements past the last whole step, zero padded).
template <bool kTwoR, bool kTwoM, bool kSplit>
HUBNODE_AMX void Block(const PackedX& x, const uint8_t* a0, int64_t a_stride, int64_t main_steps, const uint8_t* tail,
                       int64_t mt, float* c, const char* ahead, int64_t ahead_bytes) {
  const int64_t tile = 16 * static_cast<int64_t>(x.cols);  // pairs per B tile
  const uint32_t* bh0 = x.hi.data() + mt * x.k_steps * tile;
  const uint32_t* bh1 = bh0 + x.k_steps * tile;
  const uint32_t* bl0 = kSplit ? x.lo.data() + mt * x.k_steps * tile : nullptr;
  const uint32_t* bl1 = kSplit ? bl0 + x.k_steps * tile : nullptr;
  const int64_t b_stride = static_cast<int64_t>(x.cols) * 4;
  _tile_zero(0);
  if constexpr (kTwoM) _tile_zero(1);
  if constexpr (kTwoR) _tile_zero(2);
  if constexpr (kTwoR && kTwoM) _tile_zero(3);
  // Software prefetch of the next block of weight rows, spread over the steps: rows are a few
  // KiB, too short for the hardware prefetcher to ramp up on each of 32 streams (decode).
  const int64_t per_step = ahead ? (ahead_bytes + x.k_steps - 1) / x.k_steps : 0;
  int64_t prefetched = 0;
  for (int64_t ks = 0; ks < x.k_steps; ++ks) {
    for (int64_t p = 0; p < per_step && prefetched < ahead_bytes; p += 64, prefetched += 64) {
      _mm_prefetch(ahead + prefetched, _MM_HINT_T0);
    }
    const uint8_t* pa = ks < main_steps ? a0 + ks * 64 : tail;
    const int64_t sa = ks < main_steps ? a_stride : 64;
    _tile_loadd(4, pa, sa);
    if constexpr (kTwoR) _tile_loadd(5, pa + 16 * sa, sa);
    _tile_loadd(6, bh0 + ks * tile, b_stride);
    if constexpr (kTwoM) _tile_loadd(7, bh1 + ks * tile, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kTwoM) _tile_dpbf16ps(1, 4, 7);
    if constexpr (kTwoR) _tile_dpbf16ps(2, 5, 6);
    if constexpr (kTwoR && kTwoM) _tile_dpbf16ps(3, 5, 7);
    if constexpr (kSplit) {
      _tile_loadd(6, bl0 + ks * tile, b_stride);
      if constexpr (kTwoM) _tile_loadd(7, bl1 + ks * tile, b_stride);
      _tile_dpbf16ps(0, 4, 6);
      if constexpr (kTwoM) _tile_dpbf16ps(1, 4, 7);
      if constexpr (kTwoR) _tile_dpbf16ps(2, 5, 6);
      if constexpr (kTwoR && kTwoM) _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, 64);
  if constexpr (kTwoM) _tile_stored(1, c + 256, 64);
  if constexpr (kTwoR) _tile_stored(2, c + 512, 64);
  if constexpr (kTwoR && kTwoM) _tile_stored(3, c + 768, 64);
}

using BlockFn = void (*)(const PackedX&, const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, float*, const char*,
                        int64_t);

template <bool kSplit>
BlockFn Choose(bool two_r, bool two_m) {
  if (two_r) return two_m ? Block<true, true, kSplit> : Block<true, false, kSplit>;
  return two_m ? Block<false, true, kSplit> : Block<false, false, kSplit>;
}

}  // namespace

bool Available() {
  static const bool ok = Probe();
  return ok;
}

// rows[c][kk] -> tile[kk][c] for a 16 x 16 block of 32-bit pairs (four shuffle stages).
HUBNODE_AMX void Transpose16(const uint32_t* rows, uint32_t* tile) {
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(rows + 16 * i);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_si512(tile + 16 * i, r[i]);
}

HUBNODE_AMX void Pack(const float* x, int64_t n, int64_t x_stride, int64_t k, bool split, PackedX& out) {
  out.n = n;
  out.k = k;
  out.split = split;
  out.cols = static_cast<int>(std::min<int64_t>(n, 16));
  out.m_tiles = (n + 15) / 16;
  out.k_steps = (k + 31) / 32;
  const int cols = out.cols;
  const int64_t tile = 16 * static_cast<int64_t>(cols);
  out.hi.resize(static_cast<size_t>(out.m_tiles * out.k_steps * tile));
  out.lo.resize(split ? out.hi.size() : 0);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i lo_half = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_half = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i high_bits = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  // One m tile and k step at a time: the 16 rows' pairs (rows past n are zero), then transposed
  // into the tile (pair kk of column c at kk * cols + c).
  alignas(64) uint32_t hi[16 * 16], lo[16 * 16];
  for (int64_t mt = 0; mt < out.m_tiles; ++mt) {
    const int rows = static_cast<int>(std::min<int64_t>(16, n - mt * 16));
    if (rows < 16) {
      std::fill(hi + rows * 16, hi + 256, 0u);
      std::fill(lo + rows * 16, lo + 256, 0u);
    }
    for (int64_t ks = 0; ks < out.k_steps; ++ks) {
      const int64_t i = ks * 32, left = std::min<int64_t>(32, k - i);
      const __mmask16 m0 = static_cast<__mmask16>(left >= 16 ? 0xFFFF : (1u << left) - 1);
      const __mmask16 m1 = static_cast<__mmask16>(left >= 32 ? 0xFFFF : left <= 16 ? 0 : (1u << (left - 16)) - 1);
      for (int c = 0; c < rows; ++c) {
        const float* row = x + (mt * 16 + c) * x_stride + i;
        const __m512 v0 = _mm512_maskz_loadu_ps(m0, row), v1 = _mm512_maskz_loadu_ps(m1, row + 16);
        // Round to nearest even; the 32 bf16 in order are the 16 pairs.
        const __m512i h = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(v1, v0));
        _mm512_store_si512(hi + 16 * c, h);
        if (!split) continue;
        // Residuals of the even (low half of each pair) and odd elements, in order.
        const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(h, 16));
        const __m512 h1 = _mm512_castsi512_ps(_mm512_and_si512(h, high_bits));
        __m512 r0 = _mm512_sub_ps(_mm512_permutex2var_ps(v0, even, v1), h0);
        __m512 r1 = _mm512_sub_ps(_mm512_permutex2var_ps(v0, odd, v1), h1);
        // An infinite activation has no residual (inf - inf is NaN); a NaN one is carried by hi.
        r0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r0, r0, _CMP_ORD_Q), r0);
        r1 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r1, r1, _CMP_ORD_Q), r1);
        const __m512 a = _mm512_permutex2var_ps(r0, lo_half, r1), b = _mm512_permutex2var_ps(r0, hi_half, r1);
        _mm512_store_si512(lo + 16 * c, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
      }
      uint32_t* th = out.hi.data() + (mt * out.k_steps + ks) * tile;
      uint32_t* tl = split ? out.lo.data() + (mt * out.k_steps + ks) * tile : nullptr;
      if (cols == 16) {
        Transpose16(hi, th);
        if (split) Transpose16(lo, tl);
      } else {
        for (int kk = 0; kk < 16; ++kk) {
          for (int c = 0; c < cols; ++c) {
            th[kk * cols + c] = hi[16 * c + kk];
            if (split) tl[kk * cols + c] = lo[16 * c + kk];
          }
        }
      }
    }
  }
}

HUBNODE_AMX void Product(const PackedX& x, const uint16_t* w, int64_t w_stride, int rows, float* y,
                         int64_t y_stride, const float* bias, bool accumulate) {
  Configure(x.cols);
  const int64_t kpad = x.k_steps * 32;
  const uint8_t* a = reinterpret_cast<const uint8_t*>(w);
  int64_t a_stride = w_stride * 2, main_steps = x.k / 32;
  // A tile reads 16 rows x 64 bytes. Rows past `rows` would be read beyond the block (past the
  // tensor's end for its last rows): such a block (a tensor's last, rarely) is copied whole into
  // zero-padded scratch. Elements past k would be read from the next row (and NaN x 0 is NaN):
  // the last partial step is copied into a zero-padded 32 x 32 tail.
  const bool two_r = rows > 16;
  thread_local std::vector<uint16_t> padded;
  alignas(64) uint16_t tail[32 * 32];
  const uint8_t* tail_ptr = nullptr;
  if (rows % 16 != 0) {
    padded.assign(static_cast<size_t>(two_r ? 32 : 16) * kpad, 0);
    for (int r = 0; r < rows; ++r) std::memcpy(padded.data() + r * kpad, w + r * w_stride, x.k * 2);
    a = reinterpret_cast<const uint8_t*>(padded.data());
    a_stride = kpad * 2;
    main_steps = x.k_steps;
  } else if (main_steps < x.k_steps) {
    const int64_t done = main_steps * 32, left = x.k - done;
    std::memset(tail, 0, sizeof tail);
    for (int r = 0; r < rows; ++r) std::memcpy(tail + r * 32, w + r * w_stride + done, left * 2);
    tail_ptr = reinterpret_cast<const uint8_t*>(tail);
  }
  // Next block of this tensor's rows (the task that usually follows on this thread).
  const char* ahead = reinterpret_cast<const char*>(w + rows * w_stride);
  const int64_t ahead_bytes = x.m_tiles <= 2 ? rows * w_stride * 2 : 0;
  const __m512i transpose = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(16));
  alignas(64) float c[4 * 256];
  for (int64_t mt = 0; mt < x.m_tiles; mt += 2) {
    const bool two_m = mt + 1 < x.m_tiles;
    const BlockFn fn = x.split ? Choose<true>(two_r, two_m) : Choose<false>(two_r, two_m);
    fn(x, a, a_stride, main_steps, tail_ptr, mt, c, mt == 0 ? ahead : nullptr, ahead_bytes);
    // Tile t holds c[r][m] (weight row r, token m): gather column m for token m's row of y.
    for (int t = 0; t < 4; ++t) {
      const int64_t m0 = (mt + (t & 1)) * 16;
      const int r0 = (t >> 1) * 16;
      if (m0 >= x.n || r0 >= rows) continue;
      const int64_t nm = std::min<int64_t>(16, x.n - m0);
      const int nr = std::min(16, rows - r0);
      const __mmask16 mask = static_cast<__mmask16>(nr == 16 ? 0xFFFF : (1u << nr) - 1);
      const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + r0) : _mm512_setzero_ps();
      const float* ct = c + t * 256;
      for (int64_t m = 0; m < nm; ++m) {
        float* yr = y + (m0 + m) * y_stride + r0;
        __m512 v = _mm512_add_ps(_mm512_i32gather_ps(transpose, ct + m, 4), b);
        if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, yr), v);
        _mm512_mask_storeu_ps(yr, mask, v);
      }
    }
  }
}

}  // namespace hubnode::runtime::amx

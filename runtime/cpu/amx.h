// Matrix products of bf16 weights on Intel AMX (AMX-TILE + AMX-BF16): the CPU backend's path for
// bf16 weights where the CPU has it, for prefill and decode alike.
//
// A product y[n, rows] = x[n, k] · wᵀ runs as C = A · B with A = 16 weight rows (read in place
// from the row-major weight, no packing) and B = the activations packed once per product as
// bf16 pairs (AMX's "VNNI" layout). TDPBF16PS multiplies bf16 pairs exactly and accumulates in
// fp32. Activations are fp32 in the runtime, so they are split: x = hi + lo, both bf16 (hi =
// bf16(x), lo = bf16(x - hi)), about 16 significant bits instead of fp32's 24 and bf16's 8; the
// weights are bf16 already and exact. `split = false` keeps only hi (activations rounded to bf16,
// as llama.cpp's bf16 path does): half the work, a stated option, never the default.
//
// Each output element is computed from its own row of x and row of w in a fixed order, so
// results do not depend on n, on the other rows of the batch or on the thread count.
//
// Thread safety: Pack is pure; Product loads the tile configuration on the calling thread.
#pragma once

#include <cstdint>
#include <vector>

namespace hubnode::runtime::amx {

// Whether this CPU has AMX-TILE, AMX-BF16 and AVX512-BF16 and the kernel lets this process use
// the tile state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). Asked once.
bool Available();

// x[n, k] packed as AMX's B operand: per tile of 16 rows of x ("m tile") and step of 32 elements
// of k, 16 rows of `cols` bf16 pairs (pair kk of column c = x[c][2kk], x[c][2kk + 1]); zero
// padded past n and k. cols = min(n, 16).
struct PackedX {
  int64_t n = 0, k = 0;
  int64_t m_tiles = 0, k_steps = 0;
  int cols = 0;
  bool split = false;
  std::vector<uint32_t> hi, lo;  // m_tiles * k_steps * 16 * cols pairs each (lo only if split)
};
void Pack(const float* x, int64_t n, int64_t x_stride, int64_t k, bool split, PackedX& out);

// y[m * y_stride + r] (+)= Σ_i x[m][i] · w[r][i] (+ bias[r]) for m < x.n, r < rows (1..32); w:
// `rows` bf16 rows of x.k elements, `w_stride` elements apart; bias optional.
// REQUIRES: Available().
void Product(const PackedX& x, const uint16_t* w, int64_t w_stride, int rows, float* y, int64_t y_stride,
             const float* bias, bool accumulate);

}  // namespace hubnode::runtime::amx

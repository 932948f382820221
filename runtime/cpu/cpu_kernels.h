// SIMD kernels of the CPU backend, chosen once at run time from the CPU's features.
//
// Every kernel set computes a dot product the same way whether the weight row is read in its
// stored dtype or was converted to f32 first, so prefill (converted blocks) and decode (direct)
// agree bit for bit within one kernel set. Results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <string_view>

#include "runtime/cpu/quant_kernels.h"
#include "runtime/runtime.h"

namespace hubnode::runtime::kernels {

inline constexpr int kBlockRows = 8;

struct KernelSet {
  std::string_view name;
  // out[r] = Σ x[i] · w[r][i] for r < rows (rows <= kBlockRows); rows are `stride` elements apart.
  // f32, f16 and bf16 weights (block-scaled ones go through dot_rows_q).
  void (*dot_rows)(const float* x, const void* w, DType dtype, int64_t stride, int64_t in,
                   int rows, float* out);
  // out[j * kBlockRows + r] = Σ x[j][i] · w[r][i] for j < nx (<= 4), r < rows: f32 weights,
  // several activation rows at once (prefill). Bit-identical to dot_rows per (j, r).
  void (*dot_tile)(const float* x, int64_t x_stride, int nx, const float* w, int64_t stride, int64_t in,
                   int rows, float* out);
  // dst[i] = float(src[i]).
  void (*to_f32)(const void* src, DType dtype, int64_t n, float* dst);
  // Σ a[i] · b[i].
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  // y[i] += s · x[i].
  void (*axpy)(float s, const float* x, float* y, int64_t n);
  // Block-scaled weights (quant_kernels.h): one activation row (decode), up to four (prefill;
  // bit-identical per row to dot_rows_q), and rows dequantized to f32 (embeddings, conversions).
  DotRowsQFn dot_rows_q;
  RawRowsFn raw_rows;
  DotTileQFn dot_tile_q;
  DequantRowsFn dequant_rows;
};

// The best set this CPU supports, or the one HUBNODE_CPU_KERNELS names (if supported).
const KernelSet& Select();
const KernelSet& Scalar();
// A kernel set by name ("scalar", "avx2", "avx512") if this CPU supports it, else nullptr.
const KernelSet* ByName(std::string_view name);

// bf16 / fp16 bit patterns to float.
float Bf16ToF32(uint16_t v);
float F16ToF32(uint16_t v);

}  // namespace hubnode::runtime::kernels

// Kernels for block-scaled weights (kF8E4M3, kI8, kI4; runtime.h): each element is converted to
// f32 and multiplied by its block's scale, then used exactly as an f32 weight, so a product read
// in place (decode) and one over rows dequantized first (prefill) agree bit for bit, as they do
// for bf16 (cpu_kernels.h).
//
// float8 e4m3 is widened through fp16 (exact: every e4m3 value is an fp16 value times 2^-8, and
// the 2^8 is folded into the scale), so its NaN pattern reads as ±480: weights are finite.
#pragma once

#include <cstdint>

#include "runtime/backend.h"

namespace hubnode::runtime::kernels {

// out[r] = Σ_i x[i] · w(row0 + r, i) for r < rows (rows <= kBlockRows).
using DotRowsQFn = void (*)(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
// dst[r · w.cols + i] = w(row0 + r, i) for r < rows.
using DequantRowsFn = void (*)(const WeightView& w, int64_t row0, int rows, float* dst);

void DotRowsQScalar(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DequantRowsScalar(const WeightView& w, int64_t row0, int rows, float* dst);
void DotRowsQAvx2(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DequantRowsAvx2(const WeightView& w, int64_t row0, int rows, float* dst);
void DotRowsQAvx512(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DequantRowsAvx512(const WeightView& w, int64_t row0, int rows, float* dst);

}  // namespace hubnode::runtime::kernels

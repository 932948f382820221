// Kernels for block-scaled weights (kF8E4M3, kI8, kI4; runtime.h). A product sums x · q over each
// block's columns (q the stored value as f32, exact), then adds that sum times the block's scale
// into the row's total: one multiply per block instead of one per weight. Prefill (dot_tile_q,
// several activation rows at once) does the same operations in the same order per (activation,
// weight row), so its results are bit-identical to dot_rows_q's (a token's logits do not depend
// on its batch). Columns past the last multiple of the vector width are added one by one with
// their dequantized value.
//
// float8 e4m3 is widened through fp16 (exact: every e4m3 value is an fp16 value times 2^8, folded
// into the scale), so its NaN pattern reads as ±480: weights are finite.
#pragma once

#include <cstdint>

#include "runtime/backend.h"

namespace hubnode::runtime::kernels {

// out[r] = Σ_i x[i] · w(row0 + r, i) for r < rows (rows <= kBlockRows).
using DotRowsQFn = void (*)(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
// The raw (unscaled) f32 values of rows [row0, row0 + rows), `w.cols` apart in `raw`: what
// dot_tile_q reads instead of converting the block once per four activation rows. nullptr in a
// kernel set whose dot_tile_q does not use it.
using RawRowsFn = void (*)(const WeightView& w, int64_t row0, int rows, float* raw);
// out[j · kBlockRows + r] = Σ_i x[j · x_stride + i] · w(row0 + r, i) for j < nx (<= 4), r < rows;
// `raw` is raw_rows' conversion of those rows (when the set has raw_rows).
using DotTileQFn = void (*)(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                            const float* raw, float* out);
// dst[r · w.cols + i] = w(row0 + r, i) for r < rows.
using DequantRowsFn = void (*)(const WeightView& w, int64_t row0, int rows, float* dst);

void DotRowsQScalar(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DotTileQScalar(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                    const float* raw, float* out);
void DotTileQAvx2(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                  const float* raw, float* out);
void DotTileQAvx512(const float* x, int64_t x_stride, int nx, const WeightView& w, int64_t row0, int rows,
                    const float* raw, float* out);
void RawRowsAvx512(const WeightView& w, int64_t row0, int rows, float* raw);
void DequantRowsScalar(const WeightView& w, int64_t row0, int rows, float* dst);
void DotRowsQAvx2(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DequantRowsAvx2(const WeightView& w, int64_t row0, int rows, float* dst);
void DotRowsQAvx512(const float* x, const WeightView& w, int64_t row0, int rows, float* out);
void DequantRowsAvx512(const WeightView& w, int64_t row0, int rows, float* dst);

}  // namespace hubnode::runtime::kernels

// Block-scaled weights on the host: the formats the expert cache holds experts in
// (`--expert-dtype`), quantization from f32/f16/bf16, and float8 e4m3 conversions.
//
// Every format is symmetric with one f32 scale per block of block_rows × block_cols elements
// (backend.h WeightView): kI8 (scale = absmax / 127), kI4 (scale = absmax / 7), kF8E4M3
// (scale = absmax / 448, the largest e4m3 value). docs/runtime-quant.md has the layout and the
// measured accuracy.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"
#include "runtime/runtime.h"

namespace hubnode::runtime {

struct QuantFormat {
  DType dtype = DType::kI8;
  int64_t block_rows = 1, block_cols = 128;
};

// The format the cache uses for `dtype` (kF8E4M3: 1 × 128; kI8: 1 × 128; kI4: 1 × 32).
QuantFormat DefaultQuantFormat(DType dtype);

// Scales of a [rows, cols] weight in `format`.
uint64_t QuantScaleCount(int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols);
// Data bytes of a [rows, cols] weight of `dtype`, rounded up to a multiple of 64 (so the scales
// that follow it in one buffer are aligned), and data + scale bytes in `format`.
uint64_t QuantDataBytes(int64_t rows, int64_t cols, DType dtype);
uint64_t QuantBytes(int64_t rows, int64_t cols, const QuantFormat& format);

// Quantizes rows [0, rows) of the f32 matrix `src` [rows, cols] into `data` (QuantDataBytes) and
// `scales` (QuantScaleCount). InvalidArgument for a format the kernels cannot read (block_cols
// not a multiple of 16 short of the whole row, kI4's not a multiple of 32 or cols odd) or a
// non-finite input. block_rows may be anything >= 1 (DeepSeek-V3 ships 128 × 128).
Status Quantize(const float* src, int64_t rows, int64_t cols, const QuantFormat& format, uint8_t* data, float* scales);

// float8 e4m3fn: round to nearest even, saturating to ±448 (no infinities in the format);
// NaN → 0x7F.
uint8_t F32ToF8E4M3(float v);
float F8E4M3ToF32(uint8_t v);

}  // namespace hubnode::runtime

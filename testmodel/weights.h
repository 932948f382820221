// Deterministic random weights: a per-tensor seed from (seed, tensor name), xoshiro256** streams
// and normal deviates, converted to bf16/fp16/fp32 little-endian bytes.
//
// A tensor's values are cut into streams of kBlockElements elements, each seeded from
// (tensor seed, block index), so blocks can be drawn in parallel in any order and the bytes never
// depend on the thread count or on how a writer buffers them. Only IEEE basic operations are
// used (no libm), so the bytes are the same on every conforming machine.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "testmodel/testmodel.h"

namespace hubnode::testmodel {

// Elements per independent random stream (a writer's natural unit of work).
inline constexpr uint64_t kBlockElements = uint64_t{1} << 20;

// How a tensor is initialised: N(0, 0.02) for matrices and biases, 1 + N(0, 0.02) for the
// RMSNorm scales (so a runtime still sees distinct, near-identity norms).
enum class Init { kNormal, kNormScale };
Init InitFor(std::string_view tensor_name);

size_t DTypeSize(DType dtype);  // kF8E4M3: 1
// The safetensors dtype string: "BF16", "F16", "F32", "F8_E4M3".
std::string_view SafetensorsDType(DType dtype);

// Round-to-nearest-even conversions. NaN stays NaN, overflow becomes infinity.
uint16_t FloatToBf16(float f);
uint16_t FloatToF16(float f);
float Bf16ToFloat(uint16_t h);

// The stream seed of tensor `name` in a model drawn from `seed`.
uint64_t TensorSeed(uint64_t seed, std::string_view name);

// Writes elements [first, first + count) of the tensor with stream seed `tensor_seed` to `out`
// (count * DTypeSize(dtype) bytes, little-endian). Cheapest when `first` is a multiple of
// kBlockElements (otherwise the start of its block is drawn and discarded).
void FillElements(uint64_t tensor_seed, Init init, DType dtype, uint64_t first, uint64_t count,
                  char* out);

// float8 e4m3fn (bias 7, no infinities, S.1111.111 NaN): round to nearest, ties to even,
// saturating at ±448.
uint8_t FloatToF8E4M3(float f);
float F8E4M3ToFloat(uint8_t b);

// DeepSeek-V3's FP8 layout of a [rows, cols] weight drawn with (tensor_seed, init): one scale
// per 128 x 128 block (absmax / 448, 1 for an all-zero block), the weight quantized as
// value / scale. Writes rows·cols bytes to `data` (if not null) and the ceil(rows/128) ·
// ceil(cols/128) f32 scales, little-endian, to `scales` (if not null).
void FillFp8(uint64_t tensor_seed, Init init, int64_t rows, int64_t cols, char* data, char* scales);

// Exposed for tests: a natural logarithm from basic operations only. REQUIRES: x > 0, normal.
double PortableLog(double x);

}  // namespace hubnode::testmodel

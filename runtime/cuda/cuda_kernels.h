// The CUDA backend's kernels, behind launch functions with plain arguments: this header is shared
// by the nvcc-compiled kernels (cuda_kernels.cu) and the g++-compiled backend (cuda_backend.cc),
// so it includes nothing of the project but <cuda_runtime.h>.
//
// Every launch is asynchronous on the given stream and returns the launch's error (a bad
// configuration); faults show at the next synchronisation. Pointers are device memory unless a
// comment says otherwise.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace hubnode::runtime::cuda {

// Weight element codes (runtime::DType in the same order).
enum WCode : int { kWF32 = 0, kWF16 = 1, kWBF16 = 2, kWF8 = 3, kWI8 = 4, kWI4 = 5 };

// One product of a grouped matrix-vector launch: y[n, rows] (+)= x[n, cols] · wᵀ (+ bias).
// The launch's blocks are numbered across its products: product p owns blocks
// [first_block, first_block + row_blocks · token_tiles), a block computing kGemvRowsPerBlock rows
// for up to `tile` tokens.
struct GemvProduct {
  const float* x;
  const void* w;
  const float* scales;  // block-scaled weights; else null
  const float* bias;    // optional
  float* y;
  int64_t x_stride, y_stride, rows, cols;
  int64_t block_rows, block_cols, scale_cols;  // block-scaled weights
  int64_t first_block;
  int32_t n, accumulate, row_blocks, token_tiles;
};

inline constexpr int kGemvRowsPerBlock = 8;  // 4 warps of 2 rows
inline constexpr int kGemvThreads = 128;

// The products (a device array of `count`, sorted by first_block) all of weight code `code`; `tile`
// tokens per block (1, 2, 4 or 8); `vec`: every weight's rows are whole 16-byte loads (cols a
// multiple of 8 for 16-bit and f32 weights, 16 for 8-bit, 32 for int4) and its data 16-byte
// aligned, else element loads.
cudaError_t LaunchGemv(const GemvProduct* products, int count, int64_t blocks, int code, int tile, bool vec,
                       cudaStream_t stream);

// y[i, r] += bias[r] for i < n, r < rows.
cudaError_t LaunchAddBias(float* y, int64_t n, int64_t rows, int64_t y_stride, const float* bias, cudaStream_t stream);

// hi/lo[n, cols] (bf16, contiguous) = x[n, cols] split as x ≈ hi + lo (each rounded to nearest even).
cudaError_t LaunchSplitBf16(const float* x, int64_t n, int64_t cols, int64_t x_stride, void* hi, void* lo,
                            cudaStream_t stream);

// y[n, d] = x / sqrt(mean(x²) + eps) · w; w of code kWF32, kWF16 or kWBF16.
cudaError_t LaunchRmsNorm(const float* x, float* y, int64_t n, int64_t d, const void* w, int code, float eps,
                          cudaStream_t stream);

// Rotate-half RoPE in place (runtime/backend.h RopeArgs); positions [n], inv_freq [head_dim / 2].
cudaError_t LaunchRope(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t x_stride,
                       const int32_t* positions, const float* inv_freq, float scale, cudaStream_t stream);

struct AttentionParams {
  const float* q;
  int64_t q_stride;
  const float* k;
  const float* v;
  float* out;
  int64_t out_stride;
  int64_t n, heads, kv_heads, head_dim;
  const int32_t* positions;
  int64_t window;
  float scale;
  // The context of each query is cut into `splits` slices of `chunk` keys (a block each); with
  // splits > 1 the slices' partial results go to `partial` [n · heads · splits · (head_dim + 2)]
  // and a second kernel combines them.
  int64_t chunk;
  int32_t splits;
  float* partial;
};
inline constexpr int64_t kAttentionMaxHeadDim = 1024;
cudaError_t LaunchAttention(const AttentionParams& p, cudaStream_t stream);

// a[n, d] = silu(a) · b.
cudaError_t LaunchSiluMul(float* a, const float* b, int64_t n, int64_t d, int64_t a_stride, int64_t b_stride,
                          cudaStream_t stream);

// y[r, :] (+)= scale[i] · x[i, :] (runtime/backend.h AddScaledArgs; scale may be null). Without
// `first`, r = i; with it, target row r takes the sources by_row[first[r] .. first[r + 1]) in that
// order (increasing i: the order of the CPU's adds), for r < targets.
cudaError_t LaunchAddScaled(float* y, const float* x, const float* scale, const int32_t* first, const int32_t* by_row,
                            int64_t targets, int64_t n, int64_t d, int64_t y_stride, int64_t x_stride, bool assign,
                            cudaStream_t stream);

// y[i, :] = table[ids[i], :] as f32 (block-scaled tables with their scales).
cudaError_t LaunchEmbed(const void* table, int code, int64_t cols, const float* scales, int64_t block_rows,
                        int64_t block_cols, const int32_t* ids, int64_t n, float* y, cudaStream_t stream);

}  // namespace hubnode::runtime::cuda

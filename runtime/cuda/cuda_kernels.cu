// The CUDA backend's kernels (cuda_kernels.h). fp32 arithmetic throughout: weights are converted
// to f32 as they are read (bf16/f16 exactly, float8/int8/int4 times their block's scale).
//
// The matrix-vector product is the decode path and bandwidth-bound: each warp streams two weight
// rows with 16-byte loads (four loads per row in flight per lane), the block's activations staged
// in shared memory 1024 columns at a time, and one launch covers every product of a MatMul call
// (all experts of a layer), so a layer's small expert matrices fill the GPU together.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "runtime/cuda/cuda_kernels.h"

namespace hubnode::runtime::cuda {
namespace {

constexpr int kWarpsPerBlock = kGemvThreads / 32;
constexpr int kRowsPerWarp = kGemvRowsPerBlock / kWarpsPerBlock;
constexpr int kUnroll = 4;  // 16-byte weight loads per lane and row in flight (at most)

__device__ __forceinline__ float Bf16ToF32(uint32_t bits16) { return __uint_as_float(bits16 << 16); }

__device__ __forceinline__ float F16ToF32(uint32_t bits16) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(bits16)));
}

// float8 e4m3 as the CPU kernels read it (runtime/cpu/quant_kernels.cc F8ToF16Bits): its bits
// widened into an fp16 (the value times 2⁻⁸), converted by the hardware, times 2⁸ (exact).
// S.1111.111 reads as ±480 there too (the quantizer never writes it).
__device__ __forceinline__ float F8ToF32(uint32_t v) {
  const unsigned short h = static_cast<unsigned short>(((v & 0x7Fu) << 7) | ((v & 0x80u) << 8));
  return __half2float(__ushort_as_half(h)) * 256.0f;
}

// Element `i` (row-major, flat) of a weight of code D.
template <int D>
__device__ __forceinline__ float Elem(const void* w, int64_t i) {
  if constexpr (D == kWF32) {
    return __ldg(static_cast<const float*>(w) + i);
  } else if constexpr (D == kWF16) {
    return F16ToF32(__ldg(static_cast<const unsigned short*>(w) + i));
  } else if constexpr (D == kWBF16) {
    return Bf16ToF32(__ldg(static_cast<const unsigned short*>(w) + i));
  } else if constexpr (D == kWF8) {
    return F8ToF32(__ldg(static_cast<const unsigned char*>(w) + i));
  } else if constexpr (D == kWI8) {
    return static_cast<float>(static_cast<signed char>(__ldg(static_cast<const unsigned char*>(w) + i)));
  } else {
    const uint32_t b = __ldg(static_cast<const unsigned char*>(w) + i / 2);
    return static_cast<float>(static_cast<int>((b >> ((i & 1) * 4)) & 0xFu) - 8);
  }
}

// A lane's weight load: kGroup elements in one 16-byte load (two for f32).
template <int D>
struct Fmt {
  static constexpr int kGroup = D == kWF32 || D == kWF16 || D == kWBF16 ? 8 : D == kWI4 ? 32 : 16;
};

struct Raw {
  uint4 a, b;  // b: f32's second half only
};

// Raw bits of element `i` (flat), for the element-load path: f32 bits, a 16-bit value, a byte, or
// an int4 nibble.
template <int D>
__device__ __forceinline__ uint32_t ElemBits(const void* w, int64_t i) {
  if constexpr (D == kWF32) {
    return __float_as_uint(__ldg(static_cast<const float*>(w) + i));
  } else if constexpr (D == kWF16 || D == kWBF16) {
    return __ldg(static_cast<const unsigned short*>(w) + i);
  } else if constexpr (D == kWF8 || D == kWI8) {
    return __ldg(static_cast<const unsigned char*>(w) + i);
  } else {
    return (__ldg(static_cast<const unsigned char*>(w) + i / 2) >> ((i & 1) * 4)) & 0xFu;
  }
}

__device__ __forceinline__ void PutBits(Raw& raw, int bit, uint32_t v) {
  uint32_t* words = bit < 128 ? &raw.a.x : &raw.b.x;
  bit &= 127;
  words[bit / 32] |= v << (bit % 32);
}

// Elements [i, i + kGroup) of row-major weight data, `valid` of them in range (the rest read as 0).
// kVec: one 16-byte load (two for f32); REQUIRES i % kGroup == 0, the data 16-byte aligned and the
// row width a multiple of kGroup.
template <int D, bool kVec>
__device__ __forceinline__ Raw LoadRaw(const void* w, int64_t i, int valid) {
  Raw raw{};
  if constexpr (kVec) {
    if constexpr (D == kWF32) {
      const uint4* p = reinterpret_cast<const uint4*>(static_cast<const float*>(w) + i);
      raw.a = __ldg(p);
      raw.b = __ldg(p + 1);
    } else {
      const auto* bytes = static_cast<const unsigned char*>(w);
      raw.a = __ldg(reinterpret_cast<const uint4*>(bytes + (D == kWI4 ? i / 2 : D == kWF8 || D == kWI8 ? i : 2 * i)));
    }
  } else {
    constexpr int kBits = D == kWF32 ? 32 : D == kWF16 || D == kWBF16 ? 16 : D == kWI4 ? 4 : 8;
    for (int e = 0; e < Fmt<D>::kGroup; ++e) {
      // Out of range: 0, which is the value 0 in every format but int4 (nibble 8 is 0 there).
      const uint32_t bits = e < valid ? ElemBits<D>(w, i + e) : (D == kWI4 ? 8u : 0u);
      PutBits(raw, e * kBits, bits);
    }
  }
  return raw;
}

// Elements [8·sub, 8·sub + 8) of a raw load, as f32 (block scale not applied).
template <int D>
__device__ __forceinline__ void Decode(const Raw& raw, int sub, float (&f)[8]) {
  if constexpr (D == kWF32) {
    const uint32_t words[8] = {raw.a.x, raw.a.y, raw.a.z, raw.a.w, raw.b.x, raw.b.y, raw.b.z, raw.b.w};
#pragma unroll
    for (int k = 0; k < 8; ++k) f[k] = __uint_as_float(words[k]);
  } else if constexpr (D == kWF16 || D == kWBF16) {
    const uint32_t words[4] = {raw.a.x, raw.a.y, raw.a.z, raw.a.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if constexpr (D == kWBF16) {
        f[2 * k] = __uint_as_float(words[k] << 16);
        f[2 * k + 1] = __uint_as_float(words[k] & 0xFFFF0000u);
      } else {
        f[2 * k] = F16ToF32(words[k] & 0xFFFFu);
        f[2 * k + 1] = F16ToF32(words[k] >> 16);
      }
    }
  } else if constexpr (D == kWF8 || D == kWI8) {
    const uint32_t lo = sub == 0 ? raw.a.x : raw.a.z, hi = sub == 0 ? raw.a.y : raw.a.w;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const uint32_t b = ((k < 4 ? lo : hi) >> ((k & 3) * 8)) & 0xFFu;
      if constexpr (D == kWF8) {
        f[k] = F8ToF32(b);
      } else {
        // b as signed, exactly, without an int-to-float conversion: 2²³ + (b ^ 0x80) − (2²³ + 128).
        f[k] = __uint_as_float(0x4B000000u | (b ^ 0x80u)) - 8388736.0f;
      }
    }
  } else {
    const uint32_t u = sub == 0 ? raw.a.x : sub == 1 ? raw.a.y : sub == 2 ? raw.a.z : raw.a.w;
    // nibble − 8, exactly: 2²³ + nibble − (2²³ + 8).
#pragma unroll
    for (int k = 0; k < 8; ++k) f[k] = __uint_as_float(0x4B000000u | ((u >> (4 * k)) & 0xFu)) - 8388616.0f;
  }
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, o);
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float BlockSum(float v) {
  __shared__ float partial[32];
  __shared__ float total;
  v = WarpSum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0.0f;
    s = WarpSum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const float out = total;
  __syncthreads();  // `partial` and `total` may be reused by the caller's next BlockSum
  return out;
}

// Activation columns staged per pass: 16 KB of shared memory per token row up to 32 KB in all.
template <int T>
__host__ __device__ constexpr int ChunkFor() {
  return T <= 2 ? 4096 : 8192 / T;
}

template <int D, int T, bool kVec>
__global__ void __launch_bounds__(kGemvThreads) GemvKernel(const GemvProduct* __restrict__ products, int count) {
  constexpr int kChunk = ChunkFor<T>();
  constexpr int kGroup = Fmt<D>::kGroup;
  constexpr int kSubs = kGroup / 8;
  // Loads in flight per lane and row: as many as a chunk holds, at most kUnroll.
  constexpr int kU = kChunk / (32 * kGroup) < kUnroll ? (kChunk / (32 * kGroup) > 0 ? kChunk / (32 * kGroup) : 1) : kUnroll;
  constexpr int kStep = 32 * kGroup;  // columns a warp covers with one load per lane
  __shared__ __align__(16) float xs[T][kChunk];
  // The product this block belongs to: the last whose first_block <= blockIdx.x.
  const int64_t block = blockIdx.x;
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (products[mid].first_block <= block) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const GemvProduct p = products[lo];
  const int64_t local = block - p.first_block;
  const int64_t row_block = local % p.row_blocks, tile = local / p.row_blocks;
  const int64_t tok0 = tile * T;
  const int nt = static_cast<int>(min(static_cast<int64_t>(T), static_cast<int64_t>(p.n) - tok0));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t row0 = row_block * kGemvRowsPerBlock + warp * kRowsPerWarp;
  constexpr bool kScaled = D == kWF8 || D == kWI8 || D == kWI4;

  float acc[kRowsPerWarp][T];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
    for (int t = 0; t < T; ++t) acc[r][t] = 0.0f;
  }

  for (int64_t k0 = 0; k0 < p.cols; k0 += kChunk) {
    const int kc = static_cast<int>(min(static_cast<int64_t>(kChunk), p.cols - k0));
    __syncthreads();  // the previous chunk is consumed
    // Rows t >= nt are never read; columns past kc (to the next multiple of 8) read as 0.
    const int kcs = (kc + 7) & ~7;
    for (int idx = threadIdx.x; idx < nt * kcs; idx += kGemvThreads) {
      const int t = idx / kcs, c = idx % kcs;
      xs[t][c] = c < kc ? p.x[(tok0 + t) * p.x_stride + k0 + c] : 0.0f;
    }
    __syncthreads();
    for (int g0 = lane * kGroup; g0 < kc; g0 += kStep * kU) {
      Raw raw[kU][kRowsPerWarp];
      // Every load first (bytes in flight), then the arithmetic.
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int g = g0 + u * kStep;
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
          const int64_t row = row0 + r;
          if (g < kc && row < p.rows) {
            raw[u][r] = LoadRaw<D, kVec>(p.w, row * p.cols + k0 + g, static_cast<int>(min(static_cast<int64_t>(kGroup), p.cols - k0 - g)));
          } else {
            raw[u][r] = Raw{};
          }
        }
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int g = g0 + u * kStep;
        if (g >= kc) break;
#pragma unroll
        for (int sub = 0; sub < kSubs; ++sub) {
          const int gs = g + sub * 8;  // this 8-element group's first column in the chunk
          if (gs >= kc) break;
          float wv[kRowsPerWarp][8];
          float sc[kRowsPerWarp];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
            Decode<D>(raw[u][r], sub, wv[r]);
            sc[r] = 1.0f;
            if constexpr (kScaled) {
              // block_cols is a multiple of 16 or the whole row: 8 aligned columns share a block.
              const int64_t row = min(row0 + r, p.rows - 1);
              sc[r] = __ldg(p.scales + (row / p.block_rows) * p.scale_cols + (k0 + gs) / p.block_cols);
            }
          }
#pragma unroll
          for (int t = 0; t < T; ++t) {
            if (t >= nt) break;  // block-uniform: a product with fewer rows than the tile
            const float4 a = *reinterpret_cast<const float4*>(&xs[t][gs]);
            const float4 b = *reinterpret_cast<const float4*>(&xs[t][gs + 4]);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
              const float* w = wv[r];
              float d = w[0] * a.x;
              d = fmaf(w[1], a.y, d);
              d = fmaf(w[2], a.z, d);
              d = fmaf(w[3], a.w, d);
              d = fmaf(w[4], b.x, d);
              d = fmaf(w[5], b.y, d);
              d = fmaf(w[6], b.z, d);
              d = fmaf(w[7], b.w, d);
              acc[r][t] = fmaf(d, sc[r], acc[r][t]);
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t row = row0 + r;
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float v = WarpSum(acc[r][t]);
      if (lane == 0 && row < p.rows && t < nt) {
        float* y = p.y + (tok0 + t) * p.y_stride + row;
        const float out = v + (p.bias ? p.bias[row] : 0.0f);
        *y = p.accumulate ? *y + out : out;
      }
    }
  }
}

template <int D, int T>
cudaError_t GemvFor(const GemvProduct* products, int count, int64_t blocks, bool vec, cudaStream_t stream) {
  if (vec) {
    GemvKernel<D, T, true><<<static_cast<unsigned>(blocks), kGemvThreads, 0, stream>>>(products, count);
  } else {
    GemvKernel<D, T, false><<<static_cast<unsigned>(blocks), kGemvThreads, 0, stream>>>(products, count);
  }
  return cudaGetLastError();
}

template <int D>
cudaError_t GemvTile(const GemvProduct* products, int count, int64_t blocks, int tile, bool vec, cudaStream_t stream) {
  switch (tile) {
    case 1: return GemvFor<D, 1>(products, count, blocks, vec, stream);
    case 2: return GemvFor<D, 2>(products, count, blocks, vec, stream);
    case 4: return GemvFor<D, 4>(products, count, blocks, vec, stream);
    case 8: return GemvFor<D, 8>(products, count, blocks, vec, stream);
  }
  return cudaErrorInvalidValue;
}

__global__ void AddBiasKernel(float* y, int64_t n, int64_t rows, int64_t y_stride, const float* bias) {
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n * rows; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / rows, r = idx % rows;
    y[i * y_stride + r] += bias[r];
  }
}

__global__ void SplitBf16Kernel(const float* x, int64_t n, int64_t cols, int64_t x_stride, unsigned short* hi,
                                unsigned short* lo) {
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n * cols; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / cols, c = idx % cols;
    const float v = x[i * x_stride + c];
    const __nv_bfloat16 h = __float2bfloat16_rn(v);
    const float r = v - __bfloat162float(h);
    const __nv_bfloat16 l = __float2bfloat16_rn(r == r ? r : 0.0f);  // an infinite v: hi carries it (as the CPU)
    hi[idx] = __bfloat16_as_ushort(h);
    if (lo) lo[idx] = __bfloat16_as_ushort(l);
  }
}

template <int D>
__global__ void RmsNormKernel(const float* x, float* y, int64_t d, const void* w, float eps) {
  const float* xr = x + blockIdx.x * d;
  float* yr = y + blockIdx.x * d;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) ss = fmaf(xr[j], xr[j], ss);
  const float inv = 1.0f / sqrtf(BlockSum(ss) / static_cast<float>(d) + eps);
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) yr[j] = xr[j] * inv * Elem<D>(w, j);
}

__global__ void RopeKernel(float* x, int64_t heads, int64_t head_dim, int64_t x_stride, const int32_t* positions,
                           const float* inv_freq, float scale) {
  const int64_t i = blockIdx.x, half = head_dim / 2;
  const double pos = static_cast<double>(positions[i]);
  for (int64_t idx = threadIdx.x; idx < heads * half; idx += blockDim.x) {
    const int64_t h = idx / half, j = idx % half;
    double s, c;
    sincos(pos * static_cast<double>(inv_freq[j]), &s, &c);
    const float cs = static_cast<float>(c) * scale, sn = static_cast<float>(s) * scale;
    float* p = x + i * x_stride + h * head_dim;
    const float x1 = p[j], x2 = p[j + half];
    p[j] = x1 * cs - x2 * sn;
    p[j + half] = x2 * cs + x1 * sn;
  }
}

// One block per (query, head, slice of the context): 4 warps take the slice's keys in turn, each
// with an online softmax over its keys (lane l holds dimensions l, l + 32, ...), then the warps'
// states are merged.
constexpr int kAttentionWarps = 4;

template <int E>
__global__ void __launch_bounds__(kAttentionWarps * 32) AttentionKernel(AttentionParams p) {
  __shared__ float state_m[kAttentionWarps], state_l[kAttentionWarps];
  __shared__ float state_acc[kAttentionWarps][E * 32];
  const int64_t i = blockIdx.x / p.heads, h = blockIdx.x % p.heads;
  const int64_t kvh = h / (p.heads / p.kv_heads), hd = p.head_dim;
  const int64_t last = p.positions[i];
  const int64_t begin = p.window > 0 ? max(int64_t{0}, last - p.window + 1) : 0;
  const int64_t t0 = begin + blockIdx.y * p.chunk, t1 = min(last + 1, t0 + p.chunk);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t kv_stride = p.kv_heads * hd;

  float q[E], acc[E];
  const float* qr = p.q + i * p.q_stride + h * hd;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    const int64_t dim = lane + 32 * e;
    q[e] = dim < hd ? qr[dim] : 0.0f;
    acc[e] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t t = t0 + warp; t < t1; t += kAttentionWarps) {
    const float* kr = p.k + t * kv_stride + kvh * hd;
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int64_t dim = lane + 32 * e;
      if (dim < hd) s = fmaf(q[e], kr[dim], s);
    }
    s = WarpSum(s) * p.scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new), w = expf(s - m_new);
    l = l * corr + w;
    const float* vr = p.v + t * kv_stride + kvh * hd;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int64_t dim = lane + 32 * e;
      acc[e] = acc[e] * corr + (dim < hd ? w * vr[dim] : 0.0f);
    }
    m = m_new;
  }
  if (lane == 0) {
    state_m[warp] = m;
    state_l[warp] = l;
  }
#pragma unroll
  for (int e = 0; e < E; ++e) state_acc[warp][lane + 32 * e] = acc[e];
  __syncthreads();
  float big = -INFINITY;
  for (int w = 0; w < kAttentionWarps; ++w) big = fmaxf(big, state_m[w]);
  float total = 0.0f;
  for (int w = 0; w < kAttentionWarps; ++w) {
    if (state_m[w] != -INFINITY) total += state_l[w] * expf(state_m[w] - big);
  }
  float* part = p.splits > 1 ? p.partial + ((i * p.heads + h) * p.splits + blockIdx.y) * (hd + 2) : nullptr;
  if (part && threadIdx.x == 0) {
    part[0] = big;
    part[1] = total;
  }
  for (int64_t dim = threadIdx.x; dim < hd; dim += blockDim.x) {
    float a = 0.0f;
    for (int w = 0; w < kAttentionWarps; ++w) {
      if (state_m[w] != -INFINITY) a += state_acc[w][dim] * expf(state_m[w] - big);
    }
    if (part) {
      part[2 + dim] = a;
    } else {
      p.out[i * p.out_stride + h * hd + dim] = a / total;
    }
  }
}

__global__ void AttentionCombineKernel(AttentionParams p) {
  const int64_t i = blockIdx.x / p.heads, h = blockIdx.x % p.heads, hd = p.head_dim;
  const float* base = p.partial + (i * p.heads + h) * p.splits * (hd + 2);
  float big = -INFINITY;
  for (int s = 0; s < p.splits; ++s) big = fmaxf(big, base[s * (hd + 2)]);
  float total = 0.0f;
  for (int s = 0; s < p.splits; ++s) {
    const float ms = base[s * (hd + 2)];
    if (ms != -INFINITY) total += base[s * (hd + 2) + 1] * expf(ms - big);
  }
  for (int64_t dim = threadIdx.x; dim < hd; dim += blockDim.x) {
    float a = 0.0f;
    for (int s = 0; s < p.splits; ++s) {
      const float ms = base[s * (hd + 2)];
      if (ms != -INFINITY) a += base[s * (hd + 2) + 2 + dim] * expf(ms - big);
    }
    p.out[i * p.out_stride + h * hd + dim] = a / total;
  }
}

// Prefill (several queries of a sequence, head_dim <= 128): a block takes 16 queries of one head
// and walks their keys in tiles of 32 staged in shared memory, so each key is read once per 16
// queries rather than once per query. Warp w owns queries 4w..4w+3; lane l scores key l of the
// tile against a query (keys padded to a stride of 129 floats: no bank conflicts), then owns
// output dimensions l, l + 32, ... of the weighted sum (online softmax per query).
constexpr int kTileQ = 16, kTileK = 32, kTileHd = 128, kTileQPerWarp = kTileQ / kAttentionWarps;

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, o));
  return v;
}

__global__ void __launch_bounds__(kAttentionWarps * 32) AttentionTiledKernel(AttentionParams p) {
  __shared__ float ks[kTileK][kTileHd + 1];
  __shared__ float vs[kTileK][kTileHd];
  __shared__ float qs[kTileQ][kTileHd];
  __shared__ float ps[kAttentionWarps][kTileK];
  const int64_t h = blockIdx.y, i0 = int64_t{blockIdx.x} * kTileQ;
  const int nq = static_cast<int>(min(static_cast<int64_t>(kTileQ), p.n - i0));
  const int64_t kvh = h / (p.heads / p.kv_heads), hd = p.head_dim, kv_stride = p.kv_heads * hd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t idx = threadIdx.x; idx < nq * hd; idx += blockDim.x) {
    const int64_t qi = idx / hd, d = idx % hd;
    qs[qi][d] = p.q[(i0 + qi) * p.q_stride + h * hd + d];
  }
  // The keys any of the block's queries attends to, and each of this warp's queries' own range.
  int64_t lo = INT64_MAX, hi = -1;
  for (int qi = 0; qi < nq; ++qi) {
    const int64_t last = p.positions[i0 + qi];
    lo = min(lo, p.window > 0 ? max(int64_t{0}, last - p.window + 1) : int64_t{0});
    hi = max(hi, last);
  }
  float m[kTileQPerWarp], l[kTileQPerWarp], acc[kTileQPerWarp][kTileHd / 32];
  int64_t first[kTileQPerWarp], last[kTileQPerWarp];
#pragma unroll
  for (int j = 0; j < kTileQPerWarp; ++j) {
    const int qi = warp * kTileQPerWarp + j;
    last[j] = qi < nq ? p.positions[i0 + qi] : -1;
    first[j] = p.window > 0 ? max(int64_t{0}, last[j] - p.window + 1) : 0;
    m[j] = -INFINITY;
    l[j] = 0.0f;
#pragma unroll
    for (int e = 0; e < kTileHd / 32; ++e) acc[j][e] = 0.0f;
  }
  for (int64_t t0 = lo; t0 <= hi; t0 += kTileK) {
    __syncthreads();  // the previous tile is consumed (and, the first time, qs written)
    for (int64_t idx = threadIdx.x; idx < kTileK * hd; idx += blockDim.x) {
      const int64_t kk = idx / hd, d = idx % hd, t = t0 + kk;
      ks[kk][d] = t <= hi ? p.k[t * kv_stride + kvh * hd + d] : 0.0f;
      vs[kk][d] = t <= hi ? p.v[t * kv_stride + kvh * hd + d] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kTileQPerWarp; ++j) {
      const int qi = warp * kTileQPerWarp + j;
      if (qi >= nq) break;  // warp-uniform
      const int64_t t = t0 + lane;
      float s = -INFINITY;
      if (t >= first[j] && t <= last[j]) {
        s = 0.0f;
        for (int64_t d = 0; d < hd; ++d) s = fmaf(qs[qi][d], ks[lane][d], s);
        s *= p.scale;
      }
      const float m_new = fmaxf(m[j], WarpMax(s));
      if (m_new == -INFINITY) continue;  // no key of this query yet (warp-uniform)
      const float w = expf(s - m_new), corr = expf(m[j] - m_new);
      l[j] = l[j] * corr + WarpSum(w);
      ps[warp][lane] = w;
      __syncwarp();
#pragma unroll
      for (int e = 0; e < kTileHd / 32; ++e) {
        const int64_t d = lane + 32 * e;
        float a = acc[j][e] * corr;
        if (d < hd) {
          for (int kk = 0; kk < kTileK; ++kk) a = fmaf(ps[warp][kk], vs[kk][d], a);
        }
        acc[j][e] = a;
      }
      __syncwarp();
      m[j] = m_new;
    }
  }
#pragma unroll
  for (int j = 0; j < kTileQPerWarp; ++j) {
    const int qi = warp * kTileQPerWarp + j;
    if (qi >= nq) break;
#pragma unroll
    for (int e = 0; e < kTileHd / 32; ++e) {
      const int64_t d = lane + 32 * e;
      if (d < hd) p.out[(i0 + qi) * p.out_stride + h * hd + d] = acc[j][e] / l[j];
    }
  }
}

template <int E>
cudaError_t AttentionFor(const AttentionParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(p.n * p.heads), static_cast<unsigned>(p.splits));
  AttentionKernel<E><<<grid, kAttentionWarps * 32, 0, stream>>>(p);
  if (p.splits > 1) AttentionCombineKernel<<<static_cast<unsigned>(p.n * p.heads), 128, 0, stream>>>(p);
  return cudaGetLastError();
}

__global__ void SiluMulKernel(float* a, const float* b, int64_t n, int64_t d, int64_t a_stride, int64_t b_stride) {
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n * d; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / d, j = idx % d;
    float* x = a + i * a_stride + j;
    const float v = *x;
    *x = v / (1.0f + expf(-v)) * b[i * b_stride + j];
  }
}

// One thread per element of a target row: its sources (by_row[first[r] .. first[r + 1]), in
// increasing order of i) added in that order, as the CPU does for repeated rows.
__global__ void AddScaledRowsKernel(float* y, const float* x, const float* scale, const int32_t* first,
                                    const int32_t* by_row, int64_t targets, int64_t d, int64_t y_stride,
                                    int64_t x_stride, bool assign) {
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < targets * d; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = idx / d, j = idx % d;
    float* out = y + r * y_stride + j;
    for (int32_t q = first[r]; q < first[r + 1]; ++q) {
      const int64_t i = by_row[q];
      const float v = (scale ? scale[i] : 1.0f) * x[i * x_stride + j];
      *out = assign ? v : *out + v;
    }
  }
}

__global__ void AddScaledKernel(float* y, const float* x, const float* scale, int64_t n, int64_t d, int64_t y_stride,
                                int64_t x_stride, bool assign) {
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n * d; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / d, j = idx % d;
    const float v = (scale ? scale[i] : 1.0f) * x[i * x_stride + j];
    float* out = y + i * y_stride + j;
    *out = assign ? v : *out + v;
  }
}

template <int D>
__global__ void EmbedKernel(const void* table, int64_t cols, const float* scales, int64_t block_rows, int64_t block_cols,
                            const int32_t* ids, int64_t n, float* y) {
  const int64_t scale_cols = block_cols > 0 ? (cols + block_cols - 1) / block_cols : 0;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < n * cols; idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = idx / cols, c = idx % cols, r = ids[i];
    float v = Elem<D>(table, r * cols + c);
    if (scales) v *= scales[(r / block_rows) * scale_cols + c / block_cols];
    y[idx] = v;
  }
}

// Blocks for a grid-stride loop over `items`: enough to fill any current GPU, never more than needed.
unsigned GridFor(int64_t items, int threads = 256) {
  const int64_t blocks = (items + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

}  // namespace

cudaError_t LaunchGemv(const GemvProduct* products, int count, int64_t blocks, int code, int tile, bool vec,
                       cudaStream_t stream) {
  if (count <= 0 || blocks <= 0) return cudaSuccess;
  if (blocks > 0x7FFFFFFF) return cudaErrorInvalidConfiguration;
  switch (code) {
    case kWF32: return GemvTile<kWF32>(products, count, blocks, tile, vec, stream);
    case kWF16: return GemvTile<kWF16>(products, count, blocks, tile, vec, stream);
    case kWBF16: return GemvTile<kWBF16>(products, count, blocks, tile, vec, stream);
    case kWF8: return GemvTile<kWF8>(products, count, blocks, tile, vec, stream);
    case kWI8: return GemvTile<kWI8>(products, count, blocks, tile, vec, stream);
    case kWI4: return GemvTile<kWI4>(products, count, blocks, tile, vec, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t LaunchAddBias(float* y, int64_t n, int64_t rows, int64_t y_stride, const float* bias, cudaStream_t stream) {
  if (n <= 0 || rows <= 0) return cudaSuccess;
  AddBiasKernel<<<GridFor(n * rows), 256, 0, stream>>>(y, n, rows, y_stride, bias);
  return cudaGetLastError();
}

cudaError_t LaunchSplitBf16(const float* x, int64_t n, int64_t cols, int64_t x_stride, void* hi, void* lo,
                            cudaStream_t stream) {
  if (n <= 0 || cols <= 0) return cudaSuccess;
  SplitBf16Kernel<<<GridFor(n * cols), 256, 0, stream>>>(x, n, cols, x_stride, static_cast<unsigned short*>(hi),
                                                         static_cast<unsigned short*>(lo));
  return cudaGetLastError();
}

cudaError_t LaunchRmsNorm(const float* x, float* y, int64_t n, int64_t d, const void* w, int code, float eps,
                          cudaStream_t stream) {
  if (n <= 0 || d <= 0) return cudaSuccess;
  if (n > 0x7FFFFFFF) return cudaErrorInvalidConfiguration;
  const int threads = d >= 1024 ? 1024 : d >= 256 ? 256 : 64;
  switch (code) {
    case kWF32: RmsNormKernel<kWF32><<<static_cast<unsigned>(n), threads, 0, stream>>>(x, y, d, w, eps); break;
    case kWF16: RmsNormKernel<kWF16><<<static_cast<unsigned>(n), threads, 0, stream>>>(x, y, d, w, eps); break;
    case kWBF16: RmsNormKernel<kWBF16><<<static_cast<unsigned>(n), threads, 0, stream>>>(x, y, d, w, eps); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

cudaError_t LaunchRope(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t x_stride,
                       const int32_t* positions, const float* inv_freq, float scale, cudaStream_t stream) {
  if (n <= 0 || heads <= 0 || head_dim < 2) return cudaSuccess;
  if (n > 0x7FFFFFFF) return cudaErrorInvalidConfiguration;
  RopeKernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(x, heads, head_dim, x_stride, positions, inv_freq, scale);
  return cudaGetLastError();
}

cudaError_t LaunchAttention(const AttentionParams& p, cudaStream_t stream) {
  if (p.n <= 0 || p.heads <= 0) return cudaSuccess;
  if (p.head_dim > kAttentionMaxHeadDim || p.kv_heads <= 0 || p.heads % p.kv_heads != 0 || p.splits < 1 ||
      p.n * p.heads > 0x7FFFFFFF) {
    return cudaErrorInvalidValue;
  }
  if (p.n > 1 && p.splits == 1 && p.head_dim <= kTileHd) {  // prefill: key tiles shared by 16 queries
    const dim3 grid(static_cast<unsigned>((p.n + kTileQ - 1) / kTileQ), static_cast<unsigned>(p.heads));
    if (p.heads > 65535) return cudaErrorInvalidConfiguration;
    AttentionTiledKernel<<<grid, kAttentionWarps * 32, 0, stream>>>(p);
    return cudaGetLastError();
  }
  if (p.head_dim <= 128) return AttentionFor<4>(p, stream);
  if (p.head_dim <= 256) return AttentionFor<8>(p, stream);
  if (p.head_dim <= 640) return AttentionFor<20>(p, stream);
  return AttentionFor<32>(p, stream);
}

cudaError_t LaunchSiluMul(float* a, const float* b, int64_t n, int64_t d, int64_t a_stride, int64_t b_stride,
                          cudaStream_t stream) {
  if (n <= 0 || d <= 0) return cudaSuccess;
  SiluMulKernel<<<GridFor(n * d), 256, 0, stream>>>(a, b, n, d, a_stride, b_stride);
  return cudaGetLastError();
}

cudaError_t LaunchAddScaled(float* y, const float* x, const float* scale, const int32_t* first, const int32_t* by_row,
                            int64_t targets, int64_t n, int64_t d, int64_t y_stride, int64_t x_stride, bool assign,
                            cudaStream_t stream) {
  if (n <= 0 || d <= 0) return cudaSuccess;
  if (first) {
    if (targets <= 0) return cudaSuccess;
    AddScaledRowsKernel<<<GridFor(targets * d), 256, 0, stream>>>(y, x, scale, first, by_row, targets, d, y_stride,
                                                                  x_stride, assign);
  } else {
    AddScaledKernel<<<GridFor(n * d), 256, 0, stream>>>(y, x, scale, n, d, y_stride, x_stride, assign);
  }
  return cudaGetLastError();
}

cudaError_t LaunchEmbed(const void* table, int code, int64_t cols, const float* scales, int64_t block_rows,
                        int64_t block_cols, const int32_t* ids, int64_t n, float* y, cudaStream_t stream) {
  if (n <= 0 || cols <= 0) return cudaSuccess;
  const unsigned grid = GridFor(n * cols);
  switch (code) {
    case kWF32: EmbedKernel<kWF32><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    case kWF16: EmbedKernel<kWF16><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    case kWBF16: EmbedKernel<kWBF16><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    case kWF8: EmbedKernel<kWF8><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    case kWI8: EmbedKernel<kWI8><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    case kWI4: EmbedKernel<kWI4><<<grid, 256, 0, stream>>>(table, cols, scales, block_rows, block_cols, ids, n, y); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace hubnode::runtime::cuda

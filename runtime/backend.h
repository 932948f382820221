// The compute backend interface, after ggml-backend: a backend owns memory for weights and
// activations and runs the ops of a decoder layer on it. The CPU backend (cpu_backend.cc) is
// complete and the reference; a device backend (runtime/cuda/, later) implements the same
// interface (runtime/cuda/), says which ops and dtypes it supports, and is tested op by op against
// the CPU (tests/runtime/cuda/backend_test.cc).
//
// Activation and weight pointers in op arguments point into memory of the backend that runs the
// op (host memory for the CPU); the small per-step index arrays (token ids, positions, RoPE
// frequencies, routing rows and weights) are host memory, which a device backend copies in with
// the launch (a few KiB per step). Arguments travel as small structs by value. All shapes are
// row-major.
//
// Thread safety: a backend runs one op at a time (the engine's scheduler thread); Alloc, Upload and
// freeing a Buffer may happen on any thread (the expert cache's loader).
//
// A device backend queues ops asynchronously: an op returns before it ran, Download waits for
// everything queued, and faults (a lost device) show in Check(), which the model calls once per
// forward pass.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "base/status.h"
#include "runtime/runtime.h"

namespace hubnode::runtime {

enum class Op { kMatMul, kRmsNorm, kRope, kAttention, kSiluMul, kAddScaled, kEmbed };

// A 2-D weight [rows, cols] in its stored dtype. Block-scaled dtypes (IsBlockScaled) also carry
// f32 scales, row-major [ceil(rows / block_rows), ceil(cols / block_cols)]: element (r, c) is
// data(r, c) · scales[(r / block_rows) · ceil(cols / block_cols) + c / block_cols]. block_cols is
// a multiple of 16 (kI4: of 32) unless it covers the whole row.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0;
  const float* scales = nullptr;
  int64_t block_rows = 0, block_cols = 0;
};

// y[n, w.rows] (+)= x[n, w.cols] · wᵀ (+ bias[w.rows]); row strides in floats.
struct MatMulArgs {
  const float* x = nullptr;
  int64_t n = 0;
  int64_t x_stride = 0;
  WeightView w;
  const float* bias = nullptr;  // f32, optional
  float* y = nullptr;
  int64_t y_stride = 0;
  bool accumulate = false;
};

// y[n, d] = x / sqrt(mean(x²) + eps) · weight; x may equal y.
struct RmsNormArgs {
  const float* x = nullptr;
  float* y = nullptr;
  int64_t n = 0, d = 0;
  WeightView weight;  // [1, d]
  float eps = 1e-6f;
};

// In place on x[n, heads, head_dim] (row stride x_stride floats): rotate-half RoPE at
// positions[n] with inv_freq[head_dim/2], cos/sin multiplied by scale.
struct RopeArgs {
  float* x = nullptr;
  int64_t n = 0, heads = 0, head_dim = 0, x_stride = 0;
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  float scale = 1.0f;
};

// Causal attention of one sequence: q[n, heads, head_dim] at positions[n] over the sequence's
// cache k/v[ctx, kv_heads, head_dim] (positions 0..positions[i] valid); out[n, heads, head_dim].
struct AttentionArgs {
  const float* q = nullptr;
  int64_t q_stride = 0;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  int64_t out_stride = 0;
  int64_t n = 0, heads = 0, kv_heads = 0, head_dim = 0;
  const int32_t* positions = nullptr;
  int64_t window = 0;  // 0 = unlimited
  float scale = 1.0f;
};

// a[n, d] = silu(a) · b (row strides in floats).
struct SiluMulArgs {
  float* a = nullptr;
  const float* b = nullptr;
  int64_t n = 0, d = 0, a_stride = 0, b_stride = 0;
};

// y[r, :] += scale[i] · x[i, :] for i in [0, n), r = rows ? rows[i] : i, in order of i (rows
// may repeat: a token's k experts add into its one row).
struct AddScaledArgs {
  float* y = nullptr;
  const float* x = nullptr;
  const float* scale = nullptr;  // n factors; nullptr = all 1
  const int32_t* rows = nullptr;
  int64_t n = 0, d = 0, y_stride = 0, x_stride = 0;
  bool assign = false;  // y = scale · x instead of +=
};

// y[i, :] = table[ids[i], :] as f32 (also the row gather of activations: an f32 table).
struct EmbedArgs {
  WeightView table;
  const int32_t* ids = nullptr;
  int64_t n = 0;
  float* y = nullptr;
};

// Backend memory holding weights or activations.
class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t size() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // The instruction set or device the kernels use, e.g. "avx512" or "H200".
  virtual std::string_view device() const = 0;
  virtual bool Supports(Op op, DType weight_dtype) const = 0;
  // Whether its buffers are host memory the CPU may write directly (then weights are read straight
  // into them, without a staging copy and Upload).
  virtual bool host_memory() const { return false; }

  // The first asynchronous error (a failed launch, a fault, a lost device): sticky; once it is set
  // every later op is skipped and Download returns zeros. Always OK on the CPU.
  virtual Status Check() { return OkStatus(); }

  // Bytes the backend could still allocate (a device's free memory); 0 = not bounded this way (the
  // CPU, whose budget the user sets).
  virtual uint64_t free_memory() { return 0; }

  // ResourceExhausted when the memory cannot be had.
  virtual Result<std::unique_ptr<Buffer>> Alloc(size_t bytes) = 0;
  // Copies host bytes into backend memory at `dst` (a pointer into one of its buffers).
  virtual void Upload(void* dst, std::span<const uint8_t> src) = 0;
  // Copies backend memory to the host (router logits, output logits).
  virtual void Download(void* dst, const void* src, size_t bytes) = 0;

  // Runs the products together (one parallel region for all: the experts of a token).
  virtual void MatMul(std::span<const MatMulArgs> products) = 0;
  virtual void RmsNorm(const RmsNormArgs& args) = 0;
  virtual void Rope(const RopeArgs& args) = 0;
  virtual void Attention(const AttentionArgs& args) = 0;
  virtual void SiluMul(const SiluMulArgs& args) = 0;
  virtual void AddScaled(const AddScaledArgs& args) = 0;
  virtual void Embed(const EmbedArgs& args) = 0;
};

// The CPU backend with `threads` compute threads (0 = hardware concurrency); kernels chosen at
// run time: AVX-512, AVX2+FMA+F16C, or portable scalar code; bf16 products on AMX per `precision`.
std::unique_ptr<Backend> MakeCpuBackend(int threads, MatMulPrecision precision = MatMulPrecision::kAuto);

// The precision a CPU backend made with `requested` runs bf16 products in on this CPU (kFp32,
// kBf16x2 or kBf16: never kAuto).
MatMulPrecision CpuMatMulPrecision(MatMulPrecision requested);

// Which kernel set the CPU backend would use ("avx512", "avx2", "scalar"); HUBNODE_CPU_KERNELS
// (one of those names) forces a lower one, for tests and benchmarks.
std::string_view CpuKernelSet();

// The CUDA backend on GPU `device` (runtime/cuda/): Unavailable when this binary was built without
// CUDA ("built without CUDA"), when there is no usable device ("no CUDA device: ..."), or when the
// device is older than compute capability 8.0. `precision` treats bf16 products of more than 8
// activation rows (prefill; on cuBLAS) as the CPU does: kAuto and kBf16x2 split each activation into
// two bf16, kBf16 rounds it to one, kFp32 keeps fp32 (our kernel; slower prefill). Smaller products
// are always fp32.
Result<std::unique_ptr<Backend>> MakeCudaBackend(int device, MatMulPrecision precision = MatMulPrecision::kAuto);
// Whether this binary has the CUDA backend.
bool CudaBuilt();

// Converts `n` elements of `dtype` in host memory to fp32 with the CPU backend's portable code,
// for weights prepared on the host before their upload (biases are added in fp32).
void HostToF32(const void* src, DType dtype, int64_t n, float* dst);

// Rows [row0, row0 + rows) of `w` (any dtype; block-scaled ones with their scales) in host memory
// as f32, with the fastest kernel set this CPU has: for weights converted on the host as they
// load (runtime/expert_load.cc).
void HostRowsToF32(const WeightView& w, int64_t row0, int64_t rows, float* dst);

}  // namespace hubnode::runtime

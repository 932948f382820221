// The CUDA backend (runtime/backend.h) on one NVIDIA GPU: weights and activations in device
// memory, the ops as kernels (cuda_kernels.cu) queued on one compute stream, large products of
// bf16 and f32 weights on cuBLAS.
//
// Products: a MatMul call's products of at most kGemvMaxTokens activation rows run as one grouped
// matrix-vector launch per weight dtype (the decode path: all experts of a layer in one launch);
// larger ones of bf16 weights run on cuBLAS with each activation split into two bf16 (hi + lo, as
// the CPU's bf16x2: ~16 significant bits, fp32 accumulation), of f32 weights on cuBLAS in fp32, and
// of the other dtypes in the grouped kernel, 8 activation rows per block.
//
// Host arrays of an op (token ids, positions, RoPE frequencies, routing rows and weights, the
// product table) are copied to the device through a pinned staging ring on the compute stream, so
// ops queue without waiting for the GPU; Download waits for it. Uploads (weights, experts loaded
// on the cache's loader thread) use a second stream and pinned bounce buffers, overlapping the
// compute stream. Allocation is stream-ordered: a buffer's free is queued after every kernel that
// may still read it (an evicted expert), and the host does not wait.
//
// Errors are values: an allocation that fails is ResourceExhausted; a failed launch or a fault
// (a lost device) makes the backend's Check() fail, and every later op is skipped.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cuda/cuda_kernels.h"

namespace hubnode::runtime {
namespace {

using cuda::GemvProduct;

constexpr int64_t kGemvMaxTokens = 8;        // products with more rows go to cuBLAS when it can take them
constexpr size_t kStageBytes = 64u << 20;    // staging ring for per-op host arrays
constexpr size_t kBounceBytes = 16u << 20;   // each of the two upload bounce buffers
constexpr int64_t kAttentionChunk = 256;     // keys per block of a split context

std::string CudaError(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

std::string Gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / 1073741824.0);
  return buf;
}

// cuBLAS, opened when the first CUDA backend is made: linking it would map its ~600 MB into every
// hubnode process (+0.1 s and +220 MB resident at each start, measured), GPU or not. Without it
// the backend still runs every product in its own kernel (prefill slower) and says so.
struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  std::string error;  // why it is absent
};

const Cublas& LoadCublas() {
  static const Cublas loaded = [] {
    Cublas c;
    const std::string so = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = nullptr;
    for (const std::string& path : {so, "/usr/local/cuda/lib64/" + so}) {
      if ((lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
    }
    if (!lib) {
      c.error = "cannot open " + so;
      return c;
    }
    auto sym = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_reference_t<decltype(*fn)>>(dlsym(lib, name));
      if (!*fn && c.error.empty()) c.error = so + " has no " + name;
    };
    sym(&c.create, "cublasCreate_v2");
    sym(&c.destroy, "cublasDestroy_v2");
    sym(&c.set_stream, "cublasSetStream_v2");
    sym(&c.set_math_mode, "cublasSetMathMode");
    sym(&c.gemm_ex, "cublasGemmEx");
    sym(&c.status_string, "cublasGetStatusString");
    return c;
  }();
  return loaded;
}

// What buffers need after the backend is gone: the device, the compute stream a free is ordered
// after, and the stream allocations are made on.
struct Device {
  int id = 0;
  cudaStream_t stream = nullptr;
  // Stream-ordered allocation (cudaMallocAsync): a freed buffer returns to the pool when the
  // compute stream has passed the kernels queued before the free, without the host waiting for
  // them (cudaFree waits for the whole device: an expert evicted under the cache's lock stalled
  // the scheduler). Without pool support: cudaMalloc, and a free waits for the compute stream.
  bool pools = false;
  cudaStream_t alloc_stream = nullptr;
  std::mutex alloc_mu;
  ~Device() {
    cudaSetDevice(id);
    for (cudaStream_t s : {stream, alloc_stream}) {
      if (s) {
        cudaStreamSynchronize(s);
        cudaStreamDestroy(s);
      }
    }
  }
};

class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(std::shared_ptr<Device> device, void* data, size_t size) : device_(std::move(device)), data_(data), size_(size) {}
  ~CudaBuffer() override {
    cudaSetDevice(device_->id);
    if (device_->pools) {
      cudaFreeAsync(data_, device_->stream);  // after every kernel queued so far; the host goes on
    } else {
      cudaStreamSynchronize(device_->stream);  // no queued kernel reads it any more
      cudaFree(data_);
    }
  }
  void* data() override { return data_; }
  size_t size() const override { return size_; }

 private:
  std::shared_ptr<Device> device_;
  void* data_;
  size_t size_;
};

int Code(DType d) {
  switch (d) {
    case DType::kF32: return cuda::kWF32;
    case DType::kF16: return cuda::kWF16;
    case DType::kBF16: return cuda::kWBF16;
    case DType::kF8E4M3: return cuda::kWF8;
    case DType::kI8: return cuda::kWI8;
    case DType::kI4: return cuda::kWI4;
  }
  return -1;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<Device> device, std::string description, int sms, MatMulPrecision precision)
      : dev_(std::move(device)), device_(std::move(description)), sms_(sms),
        precision_(precision == MatMulPrecision::kAuto ? MatMulPrecision::kBf16x2 : precision) {}

  ~CudaBackend() override {
    cudaSetDevice(dev_->id);
    cudaStreamSynchronize(dev_->stream);
    if (cublas_) blas_.destroy(cublas_);
    if (copy_stream_) {
      cudaStreamSynchronize(copy_stream_);
      cudaStreamDestroy(copy_stream_);
    }
    for (int i = 0; i < 2; ++i) {
      if (bounce_done_[i]) cudaEventDestroy(bounce_done_[i]);
      if (bounce_[i]) cudaFreeHost(bounce_[i]);
    }
    if (stage_host_) cudaFreeHost(stage_host_);
    if (stage_dev_) cudaFree(stage_dev_);
    for (void* scratch : {split_, partial_}) {
      if (scratch) dev_->pools ? cudaFreeAsync(scratch, dev_->stream) : cudaFree(scratch);
    }
    cudaStreamSynchronize(dev_->stream);
  }

  // The resources beyond the stream; Unavailable naming what failed.
  Status Init() {
    cudaSetDevice(dev_->id);
    auto fail = [](const char* what, cudaError_t e) {
      cudaGetLastError();
      return UnavailableError(std::string("cuda: ") + what + ": " + CudaError(e));
    };
    if (cudaError_t e = cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking); e != cudaSuccess) return fail("stream", e);
    if (cudaError_t e = cudaHostAlloc(&stage_host_, kStageBytes, cudaHostAllocDefault); e != cudaSuccess) return fail("pinned memory", e);
    if (cudaError_t e = cudaMalloc(&stage_dev_, kStageBytes); e != cudaSuccess) return fail("staging memory", e);
    for (int i = 0; i < 2; ++i) {
      if (cudaError_t e = cudaHostAlloc(&bounce_[i], kBounceBytes, cudaHostAllocDefault); e != cudaSuccess) return fail("pinned memory", e);
      if (cudaError_t e = cudaEventCreateWithFlags(&bounce_done_[i], cudaEventDisableTiming); e != cudaSuccess) return fail("event", e);
    }
    device_ += std::string(", prefill ") + (precision_ == MatMulPrecision::kFp32 ? "fp32" : MatMulPrecisionName(precision_).data());
    if (!blas_.error.empty()) {
      device_ += ", without cuBLAS (" + blas_.error + "): prefill runs on the grouped kernel";
    } else if (cublasStatus_t s = blas_.create(&cublas_); s != CUBLAS_STATUS_SUCCESS) {
      cublas_ = nullptr;
      return UnavailableError(std::string("cuda: cuBLAS: ") + blas_.status_string(s));
    } else {
      blas_.set_stream(cublas_, dev_->stream);
      blas_.set_math_mode(cublas_, CUBLAS_DEFAULT_MATH);  // fp32 products stay fp32 (no TF32)
    }
    return OkStatus();
  }

  std::string_view name() const override { return "cuda"; }
  std::string_view device() const override { return device_; }
  bool Supports(Op op, DType dtype) const override {
    if (op == Op::kRmsNorm) return !IsBlockScaled(dtype);
    return true;
  }

  uint64_t free_memory() override {
    cudaSetDevice(dev_->id);
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    // Memory the pool holds but no buffer uses is free to this backend too.
    cudaMemPool_t pool = nullptr;
    uint64_t reserved = 0, used = 0;
    if (dev_->pools && cudaDeviceGetDefaultMemPool(&pool, dev_->id) == cudaSuccess &&
        cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved) == cudaSuccess &&
        cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used) == cudaSuccess && reserved > used) {
      free_bytes += reserved - used;
    }
    cudaGetLastError();
    return free_bytes;
  }

  Status Check() override {
    std::lock_guard lock(error_mu_);
    return error_;
  }

  Result<std::unique_ptr<Buffer>> Alloc(size_t bytes) override {
    cudaSetDevice(dev_->id);
    void* p = nullptr;
    const size_t rounded = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
    cudaError_t e = cudaSuccess;
    if (dev_->pools) {
      // Allocated in order on the allocation stream, then waited for: usable by every stream.
      std::lock_guard lock(dev_->alloc_mu);
      e = cudaMallocAsync(&p, rounded, dev_->alloc_stream);
      if (e == cudaSuccess) {
        if (cudaError_t sync = cudaStreamSynchronize(dev_->alloc_stream); sync != cudaSuccess) {
          Note(sync, "alloc");  // a fault, not a lack of memory
          cudaFreeAsync(p, dev_->alloc_stream);
          return UnavailableError("cuda: allocation on " + device_ + ": " + CudaError(sync));
        }
      }
    } else {
      e = cudaMalloc(&p, rounded);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();  // not sticky: the caller may try less
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      return ResourceExhaustedError("cuda: cannot allocate " + std::to_string(bytes) + " bytes (" + Gib(free_bytes) +
                                    " of " + Gib(total) + " free): " + CudaError(e));
    }
    return std::unique_ptr<Buffer>(new CudaBuffer(dev_, p, bytes));
  }

  void Upload(void* dst, std::span<const uint8_t> src) override {
    std::lock_guard lock(upload_mu_);
    cudaSetDevice(dev_->id);
    // Two pinned bounce buffers: the host copy into one overlaps the DMA out of the other.
    size_t done = 0;
    int which = 0;
    while (done < src.size()) {
      const size_t n = std::min(kBounceBytes, src.size() - done);
      Note(cudaEventSynchronize(bounce_done_[which]), "upload");
      std::memcpy(bounce_[which], src.data() + done, n);
      Note(cudaMemcpyAsync(static_cast<uint8_t*>(dst) + done, bounce_[which], n, cudaMemcpyHostToDevice, copy_stream_), "upload");
      Note(cudaEventRecord(bounce_done_[which], copy_stream_), "upload");
      done += n;
      which ^= 1;
    }
    Note(cudaStreamSynchronize(copy_stream_), "upload");
  }

  void Download(void* dst, const void* src, size_t bytes) override {
    cudaSetDevice(dev_->id);
    if (Ok()) {
      Note(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, dev_->stream), "download");
      Note(cudaStreamSynchronize(dev_->stream), "download");
    }
    if (!Ok()) std::memset(dst, 0, bytes);  // never garbage, even from the call that found the fault
  }

  void MatMul(std::span<const MatMulArgs> products) override {
    if (!Ok()) return;
    cudaSetDevice(dev_->id);
    // Group the products for the grouped kernel by (dtype, 16-byte loads); larger ones cuBLAS
    // can take go there one by one.
    struct Group {
      int code;
      bool vec;
      int64_t max_n = 0;
      std::vector<GemvProduct> items;
    };
    std::vector<Group> groups;
    for (const MatMulArgs& a : products) {
      if (a.n <= 0 || a.w.rows <= 0) continue;
      if (cublas_ && a.n > kGemvMaxTokens &&
          (a.w.dtype == DType::kF32 || (a.w.dtype == DType::kBF16 && precision_ != MatMulPrecision::kFp32))) {
        Blas(a);
        continue;
      }
      const int code = Code(a.w.dtype);
      // 16-byte loads of 8 (16-bit, f32: two loads), 16 (8-bit) or 32 (int4) elements: whole row
      // widths of them, and aligned data.
      const int64_t group = a.w.dtype == DType::kI4 ? 32 : DTypeSize(a.w.dtype) == 1 ? 16 : 8;
      const bool vec = a.w.cols % group == 0 && reinterpret_cast<uintptr_t>(a.w.data) % 16 == 0;
      auto it = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.code == code && g.vec == vec; });
      if (it == groups.end()) {
        groups.push_back(Group{code, vec, 0, {}});
        it = std::prev(groups.end());
      }
      GemvProduct p{};
      p.x = a.x;
      p.w = a.w.data;
      p.scales = IsBlockScaled(a.w.dtype) ? a.w.scales : nullptr;
      p.bias = a.bias;
      p.y = a.y;
      p.x_stride = a.x_stride;
      p.y_stride = a.y_stride;
      p.rows = a.w.rows;
      p.cols = a.w.cols;
      p.block_rows = std::max<int64_t>(1, a.w.block_rows);
      // 0 (or wider than the row) means one block across the row, as the CPU reads it.
      p.block_cols = a.w.block_cols > 0 && a.w.block_cols < a.w.cols ? a.w.block_cols : std::max<int64_t>(1, a.w.cols);
      p.scale_cols = (a.w.cols + p.block_cols - 1) / p.block_cols;
      p.n = static_cast<int32_t>(a.n);
      p.accumulate = a.accumulate;
      p.row_blocks = static_cast<int32_t>((a.w.rows + cuda::kGemvRowsPerBlock - 1) / cuda::kGemvRowsPerBlock);
      it->max_n = std::max(it->max_n, a.n);
      it->items.push_back(p);
    }
    for (Group& g : groups) {
      const int tile = g.max_n <= 1 ? 1 : g.max_n <= 2 ? 2 : g.max_n <= 4 ? 4 : 8;
      int64_t blocks = 0;
      for (GemvProduct& p : g.items) {
        p.token_tiles = static_cast<int32_t>((p.n + tile - 1) / tile);
        p.first_block = blocks;
        blocks += int64_t{p.row_blocks} * p.token_tiles;
      }
      const GemvProduct* table = Stage(g.items.data(), g.items.size());
      if (!table) return;
      Launched(cuda::LaunchGemv(table, static_cast<int>(g.items.size()), blocks, g.code, tile, g.vec, dev_->stream), "matmul");
    }
  }

  void RmsNorm(const RmsNormArgs& a) override {
    if (!Ok() || a.n <= 0) return;
    cudaSetDevice(dev_->id);
    if (IsBlockScaled(a.weight.dtype)) return Fail("rmsnorm: block-scaled weight");
    Launched(cuda::LaunchRmsNorm(a.x, a.y, a.n, a.d, a.weight.data, Code(a.weight.dtype), a.eps, dev_->stream), "rmsnorm");
  }

  void Rope(const RopeArgs& a) override {
    if (!Ok() || a.n <= 0) return;
    cudaSetDevice(dev_->id);
    Reserve({a.n * sizeof(int32_t), a.head_dim / 2 * sizeof(float)});
    const int32_t* pos = Stage(a.positions, a.n);
    const float* inv = Stage(a.inv_freq, a.head_dim / 2);
    if (!pos || !inv) return;
    Launched(cuda::LaunchRope(a.x, a.n, a.heads, a.head_dim, a.x_stride, pos, inv, a.scale, dev_->stream), "rope");
  }

  void Attention(const AttentionArgs& a) override {
    if (!Ok() || a.n <= 0) return;
    cudaSetDevice(dev_->id);
    if (a.head_dim > cuda::kAttentionMaxHeadDim) return Fail("attention: head_dim above " + std::to_string(cuda::kAttentionMaxHeadDim));
    // Split the context across blocks when the queries and heads alone do not fill the GPU.
    int64_t longest = 0;
    for (int64_t i = 0; i < a.n; ++i) {
      const int64_t last = a.positions[i];
      const int64_t begin = a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0;
      longest = std::max(longest, last - begin + 1);
    }
    cuda::AttentionParams p{};
    p.q = a.q;
    p.q_stride = a.q_stride;
    p.k = a.k;
    p.v = a.v;
    p.out = a.out;
    p.out_stride = a.out_stride;
    p.n = a.n;
    p.heads = a.heads;
    p.kv_heads = a.kv_heads;
    p.head_dim = a.head_dim;
    p.window = a.window;
    p.scale = a.scale;
    p.chunk = std::max<int64_t>(longest, 1);
    p.splits = 1;
    if (a.n * a.heads < 2 * sms_ && longest > kAttentionChunk) {
      const int64_t want = std::min<int64_t>((longest + kAttentionChunk - 1) / kAttentionChunk, 4 * sms_ / std::max<int64_t>(1, a.n * a.heads) + 1);
      p.splits = static_cast<int32_t>(std::max<int64_t>(1, std::min<int64_t>(want, 256)));
      p.chunk = (longest + p.splits - 1) / p.splits;
    }
    if (p.splits > 1) {
      const size_t need = static_cast<size_t>(a.n * a.heads * p.splits * (a.head_dim + 2)) * sizeof(float);
      if (!Grow(&partial_, &partial_bytes_, need)) return;
      p.partial = static_cast<float*>(partial_);
    }
    p.positions = Stage(a.positions, a.n);
    if (!p.positions) return;
    Launched(cuda::LaunchAttention(p, dev_->stream), "attention");
  }

  void SiluMul(const SiluMulArgs& a) override {
    if (!Ok()) return;
    cudaSetDevice(dev_->id);
    Launched(cuda::LaunchSiluMul(a.a, a.b, a.n, a.d, a.a_stride, a.b_stride, dev_->stream), "silu_mul");
  }

  void AddScaled(const AddScaledArgs& a) override {
    if (!Ok() || a.n <= 0) return;
    cudaSetDevice(dev_->id);
    // Repeated target rows: each row's sources in order (a stable bucket sort), so every element
    // takes its adds in the CPU's order and rows run in parallel.
    std::vector<int32_t> first, by_row;
    if (a.rows) {
      int32_t targets = 0;
      for (int64_t i = 0; i < a.n; ++i) {
        if (a.rows[i] < 0) return Fail("add_scaled: negative row");
        targets = std::max(targets, a.rows[i] + 1);
      }
      first.assign(targets + 1, 0);
      for (int64_t i = 0; i < a.n; ++i) ++first[a.rows[i] + 1];
      for (int32_t r = 0; r < targets; ++r) first[r + 1] += first[r];
      by_row.resize(a.n);
      std::vector<int32_t> next(first.begin(), first.end() - 1);
      for (int64_t i = 0; i < a.n; ++i) by_row[next[a.rows[i]]++] = static_cast<int32_t>(i);
    }
    Reserve({a.scale ? a.n * sizeof(float) : 0, first.size() * sizeof(int32_t), by_row.size() * sizeof(int32_t)});
    const float* scale = a.scale ? Stage(a.scale, a.n) : nullptr;
    const int32_t* first_dev = a.rows ? Stage(first.data(), static_cast<int64_t>(first.size())) : nullptr;
    const int32_t* by_row_dev = a.rows ? Stage(by_row.data(), static_cast<int64_t>(by_row.size())) : nullptr;
    if ((a.scale && !scale) || (a.rows && (!first_dev || !by_row_dev))) return;
    Launched(cuda::LaunchAddScaled(a.y, a.x, scale, first_dev, by_row_dev, static_cast<int64_t>(first.size()) - 1, a.n,
                                   a.d, a.y_stride, a.x_stride, a.assign, dev_->stream),
             "add_scaled");
  }

  void Embed(const EmbedArgs& a) override {
    if (!Ok() || a.n <= 0) return;
    cudaSetDevice(dev_->id);
    const int32_t* ids = Stage(a.ids, a.n);
    if (!ids) return;
    const bool scaled = IsBlockScaled(a.table.dtype);
    Launched(cuda::LaunchEmbed(a.table.data, Code(a.table.dtype), a.table.cols, scaled ? a.table.scales : nullptr,
                               scaled ? std::max<int64_t>(1, a.table.block_rows) : 0,
                               scaled ? (a.table.block_cols > 0 && a.table.block_cols < a.table.cols
                                             ? a.table.block_cols
                                             : std::max<int64_t>(1, a.table.cols))
                                      : 0,
                               ids, a.n, a.y, dev_->stream),
             "embed");
  }

 private:
  bool Ok() {
    std::lock_guard lock(error_mu_);
    return error_.ok();
  }

  void Fail(const std::string& what) {
    std::lock_guard lock(error_mu_);
    if (error_.ok()) error_ = InternalError("cuda: " + what);
  }

  // A failed call of the runtime: a lost device or a fault poisons the context; every later op is skipped.
  void Note(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    std::lock_guard lock(error_mu_);
    if (error_.ok()) error_ = UnavailableError(std::string("cuda: ") + what + " on " + device_ + ": " + CudaError(e));
  }
  void Launched(cudaError_t e, const char* what) { Note(e, what); }

  // Makes room in the staging ring for all of one op's arrays before the first is staged: a wrap
  // between two of them would reuse the first's bytes before its kernel ran.
  void Reserve(std::initializer_list<size_t> sizes) {
    size_t total = 0;
    for (size_t b : sizes) total += (b + 255) / 256 * 256;
    if (total > kStageBytes) {
      Fail("an op's host arrays exceed the staging ring (" + std::to_string(total) + " bytes)");
      return;
    }
    if ((stage_at_ + 255) / 256 * 256 + total > kStageBytes) {
      Note(cudaStreamSynchronize(dev_->stream), "staging");
      stage_at_ = 0;
    }
  }

  // Copies `count` host elements to the device through the staging ring (stream-ordered: the
  // ring's bytes are reused only after the stream has drained). Null (and the backend failed)
  // when they cannot be.
  template <typename T>
  const T* Stage(const T* host, int64_t count) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(count, 0)) * sizeof(T);
    if (bytes == 0) return reinterpret_cast<const T*>(stage_dev_);
    if (bytes > kStageBytes) {
      Fail("an op's host arrays exceed the staging ring (" + std::to_string(bytes) + " bytes)");
      return nullptr;
    }
    size_t at = (stage_at_ + 255) / 256 * 256;
    if (at + bytes > kStageBytes) {  // wrap: everything queued from the ring must be done
      Note(cudaStreamSynchronize(dev_->stream), "staging");
      at = 0;
    }
    std::memcpy(static_cast<uint8_t*>(stage_host_) + at, host, bytes);
    Note(cudaMemcpyAsync(static_cast<uint8_t*>(stage_dev_) + at, static_cast<uint8_t*>(stage_host_) + at, bytes,
                         cudaMemcpyHostToDevice, dev_->stream),
         "staging");
    stage_at_ = at + bytes;
    return Ok() ? reinterpret_cast<const T*>(static_cast<uint8_t*>(stage_dev_) + at) : nullptr;
  }

  // Scratch device memory of at least `need` bytes (grown after the stream drained).
  bool Grow(void** buf, size_t* have, size_t need) {
    if (*have >= need) return true;
    const size_t want = std::max(need, *have * 2);
    cudaError_t e = cudaSuccess;
    if (dev_->pools) {  // stream-ordered on the compute stream, the only one that uses scratch
      if (*buf) cudaFreeAsync(*buf, dev_->stream);
      *buf = nullptr;
      *have = 0;
      e = cudaMallocAsync(buf, want, dev_->stream);
    } else {
      Note(cudaStreamSynchronize(dev_->stream), "scratch");
      if (*buf) cudaFree(*buf);
      *buf = nullptr;
      *have = 0;
      e = cudaMalloc(buf, want);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      *buf = nullptr;
      Fail("cannot allocate " + std::to_string(want) + " bytes of scratch: " + CudaError(e));
      return false;
    }
    *have = want;
    return true;
  }

  // y (+)= x · wᵀ (+ bias) on cuBLAS: bf16 weights with x split into bf16 hi + lo, f32 in fp32.
  void Blas(const MatMulArgs& a) {
    const float one = 1.0f, zero = 0.0f;
    const int m = static_cast<int>(a.w.rows), n = static_cast<int>(a.n), k = static_cast<int>(a.w.cols);
    auto check = [&](cublasStatus_t s) {
      if (s != CUBLAS_STATUS_SUCCESS) Fail(std::string("cuBLAS: ") + blas_.status_string(s));
    };
    // Column-major view: yᵀ[rows, n] = w[rows, cols] (stored as colsᵀ: op T) · xᵀ[cols, n].
    if (a.w.dtype == DType::kF32) {
      check(blas_.gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a.w.data, CUDA_R_32F, k, a.x, CUDA_R_32F,
                         static_cast<int>(a.x_stride), a.accumulate ? &one : &zero, a.y, CUDA_R_32F,
                         static_cast<int>(a.y_stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    } else {
      const size_t half = (static_cast<size_t>(a.n * a.w.cols) * 2 + 255) / 256 * 256;  // lo 256-byte aligned
      if (!Grow(&split_, &split_bytes_, 2 * half)) return;
      void* hi = split_;
      void* lo = precision_ == MatMulPrecision::kBf16x2 ? static_cast<uint8_t*>(split_) + half : nullptr;
      Launched(cuda::LaunchSplitBf16(a.x, a.n, a.w.cols, a.x_stride, hi, lo, dev_->stream), "split");
      check(blas_.gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a.w.data, CUDA_R_16BF, k, hi, CUDA_R_16BF, k,
                         a.accumulate ? &one : &zero, a.y, CUDA_R_32F, static_cast<int>(a.y_stride), CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
      if (precision_ == MatMulPrecision::kBf16x2) {
        check(blas_.gemm_ex(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, a.w.data, CUDA_R_16BF, k, lo, CUDA_R_16BF, k,
                            &one, a.y, CUDA_R_32F, static_cast<int>(a.y_stride), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      }
    }
    if (a.bias) Launched(cuda::LaunchAddBias(a.y, a.n, a.w.rows, a.y_stride, a.bias, dev_->stream), "bias");
  }

  std::shared_ptr<Device> dev_;
  std::string device_;
  const Cublas& blas_ = LoadCublas();
  int64_t sms_;
  const MatMulPrecision precision_;  // of bf16 products on cuBLAS: kBf16x2, kBf16 or kFp32
  cublasHandle_t cublas_ = nullptr;
  cudaStream_t copy_stream_ = nullptr;
  std::mutex upload_mu_;
  void* bounce_[2] = {nullptr, nullptr};
  cudaEvent_t bounce_done_[2] = {nullptr, nullptr};
  void* stage_host_ = nullptr;
  void* stage_dev_ = nullptr;
  size_t stage_at_ = 0;
  void* split_ = nullptr;
  size_t split_bytes_ = 0;
  void* partial_ = nullptr;
  size_t partial_bytes_ = 0;
  std::mutex error_mu_;
  Status error_;
};

}  // namespace

bool CudaBuilt() { return true; }

Result<std::unique_ptr<Backend>> MakeCudaBackend(int device, MatMulPrecision precision) {
  int count = 0;
  if (cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess) {
    cudaGetLastError();
    return UnavailableError("no CUDA device: " + CudaError(e));
  }
  if (count == 0) return UnavailableError("no CUDA device");
  if (device < 0 || device >= count) {
    return UnavailableError("no CUDA device " + std::to_string(device) + " (" + std::to_string(count) + " present)");
  }
  cudaDeviceProp prop{};
  if (cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) {
    return UnavailableError("CUDA device " + std::to_string(device) + ": " + CudaError(e));
  }
  if (prop.major < 8) {
    return UnavailableError(std::string("CUDA device ") + prop.name + " has compute capability " +
                            std::to_string(prop.major) + "." + std::to_string(prop.minor) + "; hubnode needs 8.0 or newer");
  }
  if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) {
    return UnavailableError("CUDA device " + std::to_string(device) + ": " + CudaError(e));
  }
  auto dev = std::make_shared<Device>();
  dev->id = device;
  for (cudaStream_t* s : {&dev->stream, &dev->alloc_stream}) {
    if (cudaError_t e = cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); e != cudaSuccess) {
      *s = nullptr;
      return UnavailableError("CUDA device " + std::to_string(device) + ": " + CudaError(e));
    }
  }
  int pools = 0;
  cudaMemPool_t pool = nullptr;
  if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device) == cudaSuccess && pools &&
      cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    uint64_t keep = UINT64_MAX;  // freed memory stays in the pool for the next expert
    dev->pools = cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) == cudaSuccess;
  }
  cudaGetLastError();
  const std::string description = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                                  ", " + Gib(prop.totalGlobalMem) + ")";
  auto backend = std::make_unique<CudaBackend>(std::move(dev), description, prop.multiProcessorCount, precision);
  RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<Backend>(std::move(backend));
}

}  // namespace hubnode::runtime

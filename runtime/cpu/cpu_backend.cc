// The CPU backend: the reference implementation of every op, multithreaded with a fork-join
// pool and vectorised through the kernel set chosen at run time.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/amx.h"
#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/parallel.h"

namespace hubnode::runtime {
namespace {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(void* data, size_t size) : data_(data), size_(size) {}
  ~CpuBuffer() override { std::free(data_); }
  void* data() override { return data_; }
  size_t size() const override { return size_; }

 private:
  void* data_;
  size_t size_;
};

const void* Offset(const void* base, DType dt, int64_t elements) {
  return static_cast<const uint8_t*>(base) + elements * static_cast<int64_t>(DTypeSize(dt));
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, MatMulPrecision precision)
      : pool_(threads), k_(kernels::Select()), precision_(CpuMatMulPrecision(precision)) {
    device_ = std::string(k_.name);
    if (precision_ != MatMulPrecision::kFp32) device_ += "+amx-" + std::string(MatMulPrecisionName(precision_));
  }

  std::string_view name() const override { return "cpu"; }
  std::string_view device() const override { return device_; }
  bool Supports(Op, DType) const override { return true; }
  bool host_memory() const override { return true; }

  Result<std::unique_ptr<Buffer>> Alloc(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return ResourceExhaustedError("cpu: cannot allocate " + std::to_string(bytes) + " bytes");
    return std::unique_ptr<Buffer>(new CpuBuffer(p, bytes));
  }

  void Upload(void* dst, std::span<const uint8_t> src) override {
    std::memcpy(dst, src.data(), src.size());
  }

  void Download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }

  void MatMul(std::span<const MatMulArgs> products) override {
    // One task per (product, block of weight rows); prefix sums map task -> product. Products of
    // bf16 weights on AMX take blocks of 32 rows and share one packing of each distinct input.
    const size_t np = products.size();
    std::vector<int64_t> first(np + 1, 0);
    std::vector<int> pack_of(np, -1);
    std::vector<size_t> pack_source;
    for (size_t p = 0; p < np; ++p) {
      const MatMulArgs& a = products[p];
      int64_t block = kernels::kBlockRows;
      if (precision_ != MatMulPrecision::kFp32 && a.w.dtype == DType::kBF16 && a.n > 0) {
        block = kAmxRows;
        for (size_t q = 0; q < pack_source.size() && pack_of[p] < 0; ++q) {
          const MatMulArgs& b = products[pack_source[q]];
          if (b.x == a.x && b.n == a.n && b.x_stride == a.x_stride && b.w.cols == a.w.cols) pack_of[p] = static_cast<int>(q);
        }
        if (pack_of[p] < 0) {
          pack_of[p] = static_cast<int>(pack_source.size());
          pack_source.push_back(p);
        }
      }
      first[p + 1] = first[p] + (a.w.rows + block - 1) / block;
    }
    if (!pack_source.empty()) {
      if (packs_.size() < pack_source.size()) packs_.resize(pack_source.size());
      const bool split = precision_ == MatMulPrecision::kBf16x2;
      auto pack = [&](int64_t q) {
        const MatMulArgs& a = products[pack_source[q]];
        amx::Pack(a.x, a.n, a.x_stride, a.w.cols, split, packs_[q]);
      };
      // A fork-join costs more than packing a few rows (decode): pack those on this thread.
      int64_t elements = 0;
      for (size_t q : pack_source) elements += products[q].n * products[q].w.cols;
      if (elements < (int64_t{1} << 16)) {
        for (size_t q = 0; q < pack_source.size(); ++q) pack(static_cast<int64_t>(q));
      } else {
        pool_.Run(static_cast<int64_t>(pack_source.size()), pack);
      }
    }
    pool_.Run(first.back(), [&](int64_t task) {
      const size_t p = std::upper_bound(first.begin(), first.end(), task) - first.begin() - 1;
      if (pack_of[p] >= 0) {
        AmxBlock(products[p], packs_[pack_of[p]], (task - first[p]) * kAmxRows);
      } else {
        RowBlock(products[p], (task - first[p]) * kernels::kBlockRows);
      }
    });
  }

  void RmsNorm(const RmsNormArgs& a) override {
    // The weight in f32 once per call (exact), not one conversion per element.
    const float* w = static_cast<const float*>(a.weight.data);
    if (a.weight.dtype != DType::kF32) {
      norm_weight_.resize(a.d);
      k_.to_f32(a.weight.data, a.weight.dtype, a.d, norm_weight_.data());
      w = norm_weight_.data();
    }
    ForRows(a.n, [&](int64_t i) {
      const float* x = a.x + i * a.d;
      float* y = a.y + i * a.d;
      const float ms = k_.dot_f32(x, x, a.d) / static_cast<float>(a.d);
      const float inv = 1.0f / std::sqrt(ms + a.eps);
      for (int64_t j = 0; j < a.d; ++j) y[j] = x[j] * inv * w[j];
    });
  }

  void Rope(const RopeArgs& a) override {
    const int64_t half = a.head_dim / 2;
    ForRows(a.n, [&](int64_t i) {
      std::vector<float> cs(half), sn(half);
      for (int64_t j = 0; j < half; ++j) {
        const double angle = static_cast<double>(a.positions[i]) * a.inv_freq[j];
        cs[j] = static_cast<float>(std::cos(angle)) * a.scale;
        sn[j] = static_cast<float>(std::sin(angle)) * a.scale;
      }
      for (int64_t h = 0; h < a.heads; ++h) {
        float* x = a.x + i * a.x_stride + h * a.head_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float x1 = x[j], x2 = x[j + half];
          x[j] = x1 * cs[j] - x2 * sn[j];
          x[j + half] = x2 * cs[j] + x1 * sn[j];
        }
      }
    });
  }

  void Attention(const AttentionArgs& a) override {
    const int64_t group = a.heads / a.kv_heads;
    const int64_t kv_stride = a.kv_heads * a.head_dim;
    pool_.Run(a.n * a.heads, [&](int64_t task) {
      const int64_t i = task / a.heads, h = task % a.heads, kvh = h / group;
      const int64_t last = a.positions[i];
      const int64_t begin = a.window > 0 ? std::max<int64_t>(0, last - a.window + 1) : 0;
      thread_local std::vector<float> scores;
      scores.resize(last - begin + 1);
      const float* q = a.q + i * a.q_stride + h * a.head_dim;
      float max_score = -INFINITY;
      for (int64_t t = begin; t <= last; ++t) {
        const float s = k_.dot_f32(q, a.k + t * kv_stride + kvh * a.head_dim, a.head_dim) * a.scale;
        scores[t - begin] = s;
        max_score = std::max(max_score, s);
      }
      float sum = 0;
      for (float& s : scores) {
        s = std::exp(s - max_score);
        sum += s;
      }
      float* out = a.out + i * a.out_stride + h * a.head_dim;
      std::fill(out, out + a.head_dim, 0.0f);
      for (int64_t t = begin; t <= last; ++t) {
        k_.axpy(scores[t - begin] / sum, a.v + t * kv_stride + kvh * a.head_dim, out, a.head_dim);
      }
    });
  }

  void SiluMul(const SiluMulArgs& a) override {
    ForRows(a.n, [&](int64_t i) {
      float* x = a.a + i * a.a_stride;
      const float* b = a.b + i * a.b_stride;
      for (int64_t j = 0; j < a.d; ++j) x[j] = x[j] / (1.0f + std::exp(-x[j])) * b[j];
    });
  }

  void AddScaled(const AddScaledArgs& a) override {
    auto one = [&](int64_t i) {
      const int64_t r = a.rows ? a.rows[i] : i;
      const float s = a.scale ? a.scale[i] : 1.0f;
      float* y = a.y + r * a.y_stride;
      const float* x = a.x + i * a.x_stride;
      if (a.assign) {
        for (int64_t j = 0; j < a.d; ++j) y[j] = s * x[j];
      } else {
        k_.axpy(s, x, y, a.d);
      }
    };
    if (a.rows) {
      // Repeated target rows (a token's k experts add into its one row): every element takes its
      // adds in order of i, and threads split the columns (slices of 256: a multiple of every
      // kernel set's vector width, so the bits are those of whole rows).
      constexpr int64_t kSlice = 256;
      const int64_t slices = (a.d + kSlice - 1) / kSlice;
      auto slice = [&](int64_t sl) {
        const int64_t j0 = sl * kSlice, len = std::min(kSlice, a.d - j0);
        for (int64_t i = 0; i < a.n; ++i) {
          const float s = a.scale ? a.scale[i] : 1.0f;
          float* y = a.y + a.rows[i] * a.y_stride + j0;
          const float* x = a.x + i * a.x_stride + j0;
          if (a.assign) {
            for (int64_t j = 0; j < len; ++j) y[j] = s * x[j];
          } else {
            k_.axpy(s, x, y, len);
          }
        }
      };
      if (slices < 2 || a.n * a.d < (int64_t{1} << 15)) {
        for (int64_t sl = 0; sl < slices; ++sl) slice(sl);
      } else {
        pool_.Run(slices, slice);
      }
    } else {
      ForRows(a.n, one);
    }
  }

  void Embed(const EmbedArgs& a) override {
    for (int64_t i = 0; i < a.n; ++i) {
      if (IsBlockScaled(a.table.dtype)) {
        k_.dequant_rows(a.table, a.ids[i], 1, a.y + i * a.table.cols);
        continue;
      }
      k_.to_f32(Offset(a.table.data, a.table.dtype, a.ids[i] * a.table.cols), a.table.dtype,
                a.table.cols, a.y + i * a.table.cols);
    }
  }

 private:
  // Row-wise ops: parallel only when there are enough rows to pay for the fork.
  template <typename Fn>
  void ForRows(int64_t n, Fn&& fn) {
    if (n < 4) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    pool_.Run(n, [&](int64_t i) { fn(i); });
  }

  void RowBlock(const MatMulArgs& a, int64_t row0) {
    const int rows = static_cast<int>(std::min<int64_t>(kernels::kBlockRows, a.w.rows - row0));
    const int64_t in = a.w.cols;
    const void* w = IsBlockScaled(a.w.dtype) ? nullptr : Offset(a.w.data, a.w.dtype, row0 * in);
    float out[4 * kernels::kBlockRows];
    auto store = [&](int64_t i, const float* o) {
      float* y = a.y + i * a.y_stride + row0;
      for (int r = 0; r < rows; ++r) {
        const float v = o[r] + (a.bias ? a.bias[row0 + r] : 0.0f);
        y[r] = a.accumulate ? y[r] + v : v;
      }
    };
    const bool scaled = IsBlockScaled(a.w.dtype);
    if (a.n <= 2) {  // decode: read the weights once, in their dtype
      for (int64_t i = 0; i < a.n; ++i) {
        if (scaled) {
          k_.dot_rows_q(a.x + i * a.x_stride, a.w, row0, rows, out);
        } else {
          k_.dot_rows(a.x + i * a.x_stride, w, a.w.dtype, in, in, rows, out);
        }
        store(i, out);
      }
      return;
    }
    if (scaled) {  // prefill of block-scaled weights: the block's raw values once, four activation rows per pass
      thread_local std::vector<float> raw;
      if (k_.raw_rows) {
        raw.resize(static_cast<size_t>(rows) * in);
        k_.raw_rows(a.w, row0, rows, raw.data());
      }
      for (int64_t i = 0; i < a.n; i += 4) {
        const int nx = static_cast<int>(std::min<int64_t>(4, a.n - i));
        k_.dot_tile_q(a.x + i * a.x_stride, a.x_stride, nx, a.w, row0, rows, raw.data(), out);
        for (int j = 0; j < nx; ++j) store(i + j, out + j * kernels::kBlockRows);
      }
      return;
    }
    // Prefill: convert the block once (f32 weights are used as they are), then stream the
    // activation rows past it four at a time.
    const float* wf = static_cast<const float*>(w);
    if (a.w.dtype != DType::kF32) {
      thread_local std::vector<float> block;
      block.resize(static_cast<size_t>(rows) * in);
      k_.to_f32(w, a.w.dtype, rows * in, block.data());
      wf = block.data();
    }
    for (int64_t i = 0; i < a.n; i += 4) {
      const int nx = static_cast<int>(std::min<int64_t>(4, a.n - i));
      k_.dot_tile(a.x + i * a.x_stride, a.x_stride, nx, wf, in, in, rows, out);
      for (int j = 0; j < nx; ++j) store(i + j, out + j * kernels::kBlockRows);
    }
  }

  void AmxBlock(const MatMulArgs& a, const amx::PackedX& x, int64_t row0) {
    const int rows = static_cast<int>(std::min<int64_t>(kAmxRows, a.w.rows - row0));
    amx::Product(x, static_cast<const uint16_t*>(a.w.data) + row0 * a.w.cols, a.w.cols, rows, a.y + row0, a.y_stride,
                 a.bias ? a.bias + row0 : nullptr, a.accumulate);
  }

  static constexpr int64_t kAmxRows = 32;

  WorkerPool pool_;
  const kernels::KernelSet& k_;
  const MatMulPrecision precision_;
  std::string device_;
  std::vector<amx::PackedX> packs_;  // reused across calls (the scheduler thread's)
  std::vector<float> norm_weight_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(int threads, MatMulPrecision precision) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::make_unique<CpuBackend>(threads, precision);
}

MatMulPrecision CpuMatMulPrecision(MatMulPrecision requested) {
  // HUBNODE_CPU_KERNELS forces a lower kernel set for tests: below AVX-512 there is no AMX either.
  const bool amx = amx::Available() && kernels::Select().name == "avx512";
  switch (requested) {
    case MatMulPrecision::kAuto:
    case MatMulPrecision::kBf16x2:
      return amx ? MatMulPrecision::kBf16x2 : MatMulPrecision::kFp32;
    case MatMulPrecision::kBf16:
      return amx ? MatMulPrecision::kBf16 : MatMulPrecision::kFp32;
    case MatMulPrecision::kFp32:
      break;
  }
  return MatMulPrecision::kFp32;
}

bool ParseMatMulPrecision(std::string_view text, MatMulPrecision* out) {
  for (MatMulPrecision p : {MatMulPrecision::kAuto, MatMulPrecision::kFp32, MatMulPrecision::kBf16x2, MatMulPrecision::kBf16}) {
    if (text == MatMulPrecisionName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

std::string_view MatMulPrecisionName(MatMulPrecision p) {
  switch (p) {
    case MatMulPrecision::kAuto: return "auto";
    case MatMulPrecision::kFp32: return "fp32";
    case MatMulPrecision::kBf16x2: return "bf16x2";
    case MatMulPrecision::kBf16: return "bf16";
  }
  return "fp32";
}

std::string_view CpuKernelSet() { return kernels::Select().name; }

void HostToF32(const void* src, DType dtype, int64_t n, float* dst) { kernels::Scalar().to_f32(src, dtype, n, dst); }

void HostRowsToF32(const WeightView& w, int64_t row0, int64_t rows, float* dst) {
  const kernels::KernelSet& k = kernels::Select();
  if (IsBlockScaled(w.dtype)) {
    k.dequant_rows(w, row0, static_cast<int>(rows), dst);
  } else {
    k.to_f32(static_cast<const uint8_t*>(w.data) + DTypeBytes(w.dtype, static_cast<uint64_t>(row0 * w.cols)), w.dtype,
             rows * w.cols, dst);
  }
}

}  // namespace hubnode::runtime

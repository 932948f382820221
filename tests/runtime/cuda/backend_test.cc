// The CUDA backend against the CPU backend (the reference, in fp32), op by op, after ggml's
// test-backend-ops: every op of backend.h, every weight dtype the CUDA backend claims, seeded random
// inputs of awkward shapes (1, 7, 4096 + 3, ...). Skipped, saying why, when this machine has no
// CUDA device; it is always compiled when the backend is.
//
// Tolerances. Products in fp32 (the grouped kernel: every dtype converted exactly to f32, fp32
// fused multiply-adds in another order than the CPU's): |gpu − cpu| ≤ 2e-6 · Σ|xᵢ·wᵢ| + 1e-6.
// Products of bf16 weights with more than 8 activation rows run on cuBLAS with each activation split
// into two bf16 (hi + lo: 16 significant bits, relative error ≤ 2⁻¹⁷ ≈ 7.6e-6 per term):
// ≤ 3e-5 · Σ|xᵢ·wᵢ| + 1e-6. Element-wise ops: relative 1e-5 (expf/sincos differ in the last bits).
//
// Built a second time with HUBNODE_CUDA_TEST_ON_CPU (cuda_backend_test_harness, run everywhere):
// the "device" is then a second CPU backend, which checks the harness itself — shapes, strides,
// formats, expectations — so that on a GPU a failure is the kernels'.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/backend.h"
#include "tests/runtime/half_bits.h"
#include "runtime/quant.h"

namespace hubnode::runtime {
namespace {

#ifdef HUBNODE_CUDA_TEST_ON_CPU
Result<std::unique_ptr<Backend>> Device(int, MatMulPrecision = MatMulPrecision::kAuto) {
  return MakeCpuBackend(2, MatMulPrecision::kFp32);
}
#else
Result<std::unique_ptr<Backend>> Device(int device, MatMulPrecision precision = MatMulPrecision::kAuto) {
  return MakeCudaBackend(device, precision);
}
#endif

using testing::ToBf16;
using testing::ToF16;

std::vector<float> Random(std::mt19937& rng, size_t n, float scale = 1.0f) {
  std::normal_distribution<float> nd(0, scale);
  std::vector<float> v(n);
  for (float& f : v) f = nd(rng);
  return v;
}

// A weight on the host in `dtype` (block-scaled ones quantized with runtime/quant.h), its values
// as f32 (what both backends must read), and the bytes (data, then scales).
struct HostWeight {
  DType dtype = DType::kF32;
  int64_t rows = 0, cols = 0, block_rows = 0, block_cols = 0;
  std::vector<uint8_t> data;
  std::vector<float> scales;
};

HostWeight MakeWeight(std::mt19937& rng, DType dt, int64_t rows, int64_t cols, int64_t block_rows = 1,
                      int64_t block_cols = 0) {
  const std::vector<float> f = Random(rng, rows * cols);
  HostWeight w;
  w.dtype = dt;
  w.rows = rows;
  w.cols = cols;
  if (IsBlockScaled(dt)) {
    QuantFormat format{dt, block_rows, block_cols > 0 ? block_cols : DefaultQuantFormat(dt).block_cols};
    if (format.block_cols > cols) format.block_cols = cols;
    w.block_rows = format.block_rows;
    w.block_cols = format.block_cols;
    w.data.resize(QuantDataBytes(rows, cols, dt));
    w.scales.resize(QuantScaleCount(rows, cols, format.block_rows, format.block_cols));
    const Status s = Quantize(f.data(), rows, cols, format, w.data.data(), w.scales.data());
    EXPECT_TRUE(s.ok()) << s.ToString();
    return w;
  }
  w.data.resize(DTypeBytes(dt, rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (dt == DType::kF32) {
      std::memcpy(w.data.data() + i * 4, &f[i], 4);
    } else {
      const uint16_t h = dt == DType::kBF16 ? ToBf16(f[i]) : ToF16(f[i]);
      std::memcpy(w.data.data() + i * 2, &h, 2);
    }
  }
  return w;
}

// The two backends and their copies of the inputs.
class CudaVsCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpu = Device(0);
    if (!gpu.ok()) GTEST_SKIP() << "no CUDA device to test on: " << gpu.status().ToString();
    gpu_ = std::move(*gpu);
    cpu_ = MakeCpuBackend(2, MatMulPrecision::kFp32);
  }

  void TearDown() override {
    if (gpu_) {
      const Status s = gpu_->Check();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }

  // Bytes copied into memory of both backends; [0] is the CPU's copy, [1] the GPU's.
  std::pair<void*, void*> Put(const void* bytes, size_t n) {
    std::pair<void*, void*> at;
    for (int which = 0; which < 2; ++which) {
      Backend& b = which ? *gpu_ : *cpu_;
      auto buf = b.Alloc(std::max<size_t>(n, 4));
      EXPECT_TRUE(buf.ok()) << buf.status().ToString();
      if (!buf.ok()) return {};
      if (n > 0) b.Upload((*buf)->data(), {static_cast<const uint8_t*>(bytes), n});
      (which ? at.second : at.first) = (*buf)->data();
      keep_.push_back(std::move(*buf));
    }
    return at;
  }
  std::pair<float*, float*> PutF(const std::vector<float>& v) {
    auto [c, g] = Put(v.data(), v.size() * sizeof(float));
    return {static_cast<float*>(c), static_cast<float*>(g)};
  }
  std::pair<WeightView, WeightView> PutW(const HostWeight& w) {
    auto [c, g] = Put(w.data.data(), w.data.size());
    WeightView vc{c, w.dtype, w.rows, w.cols}, vg{g, w.dtype, w.rows, w.cols};
    if (!w.scales.empty()) {
      auto [sc, sg] = PutF(w.scales);
      vc.scales = sc;
      vg.scales = sg;
      vc.block_rows = vg.block_rows = w.block_rows;
      vc.block_cols = vg.block_cols = w.block_cols;
    }
    return {vc, vg};
  }
  std::vector<float> GetCpu(const float* p, size_t n) { return std::vector<float>(p, p + n); }
  std::vector<float> GetGpu(const float* p, size_t n) {
    std::vector<float> out(n);
    gpu_->Download(out.data(), p, n * sizeof(float));
    return out;
  }

  static void ExpectNear(const std::vector<float>& gpu, const std::vector<float>& cpu, double rtol, const std::string& what) {
    ASSERT_EQ(gpu.size(), cpu.size());
    for (size_t i = 0; i < gpu.size(); ++i) {
      ASSERT_TRUE(std::isfinite(gpu[i])) << what << " at " << i;
      ASSERT_NEAR(gpu[i], cpu[i], rtol * (1 + std::abs(cpu[i]))) << what << " at " << i;
    }
  }

  std::unique_ptr<Backend> cpu_, gpu_;
  std::vector<std::unique_ptr<Buffer>> keep_;
};

struct ProductCase {
  DType dtype;
  int64_t rows, cols, n;
  bool bias, accumulate;
  int64_t block_rows = 1, block_cols = 0;
};

std::string Name(const ProductCase& c) {
  return std::string(DTypeName(c.dtype)) + " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) + " n=" +
         std::to_string(c.n) + (c.bias ? " +bias" : "") + (c.accumulate ? " +=" : "");
}

TEST_F(CudaVsCpu, MatMulEveryDtypeShapeAndTile) {
  std::mt19937 rng(11);
  std::vector<ProductCase> cases;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kF8E4M3, DType::kI8, DType::kI4}) {
    const bool scaled = IsBlockScaled(dt);
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {7, 64}, {33, 4096 + 32}, {130, 256}, {9, 2048}}) {
      for (int64_t n : {1, 2, 3, 8, 9, 37}) {
        cases.push_back({dt, rows, cols, n, n % 2 == 1, n == 3});
      }
    }
    if (!scaled) {  // shapes only unscaled weights allow: odd widths (element loads, no 16-byte ones)
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 1}, {7, 13}, {5, 4096 + 3}, {3, 1000}}) {
        for (int64_t n : {1, 4, 9}) cases.push_back({dt, rows, cols, n, true, n == 4});
      }
    }
  }
  // Block-scaled widths that are not whole 16-byte loads: the element path (partial groups, int4's
  // padding nibble), with 16-column blocks too.
  for (DType dt : {DType::kF8E4M3, DType::kI8}) {
    for (auto [r, c, bc] : {std::tuple<int64_t, int64_t, int64_t>{7, 40, 16}, {5, 1000, 128}, {3, 4096 + 8, 128}}) {
      for (int64_t n : {1, 2, 9}) cases.push_back({dt, r, c, n, true, n == 2, 1, bc});
    }
  }
  for (auto [r, c] : {std::pair<int64_t, int64_t>{3, 2}, {7, 48}, {5, 4096 + 16}}) {
    for (int64_t n : {1, 2, 9}) cases.push_back({DType::kI4, r, c, n, true, n == 2});
  }
  // DeepSeek-V3's float8 blocks: 128 x 128, rows not a multiple of the block.
  cases.push_back({DType::kF8E4M3, 200, 384, 1, false, false, 128, 128});
  cases.push_back({DType::kF8E4M3, 200, 384, 12, true, false, 128, 128});

  std::vector<MatMulArgs> on_cpu, on_gpu;
  std::vector<std::vector<float>> x_host, w_f32;
  std::vector<std::pair<float*, float*>> ys;
  std::vector<std::vector<float>> y0;
  for (const ProductCase& c : cases) {
    const HostWeight hw = MakeWeight(rng, c.dtype, c.rows, c.cols, c.block_rows, c.block_cols);
    auto [wc, wg] = PutW(hw);
    // x with a row stride wider than the row (as the model's slices of q are).
    const int64_t xs = c.cols + 5;
    std::vector<float> x = Random(rng, c.n * xs);
    auto [xc, xg] = PutF(x);
    std::vector<float> bias = Random(rng, c.rows);
    auto [bc, bg] = PutF(bias);
    const int64_t ystride = c.rows + 3;
    std::vector<float> y = Random(rng, c.n * ystride);
    auto [yc, yg] = PutF(y);
    on_cpu.push_back({xc, c.n, xs, wc, c.bias ? bc : nullptr, yc, ystride, c.accumulate});
    on_gpu.push_back({xg, c.n, xs, wg, c.bias ? bg : nullptr, yg, ystride, c.accumulate});
    // Σ|xᵢ·wᵢ| per output needs the weight's values: take them from the CPU backend (row dequant).
    std::vector<float> wf(c.rows * c.cols);
    HostRowsToF32(wc, 0, c.rows, wf.data());
    w_f32.push_back(std::move(wf));
    x_host.push_back(std::move(x));
    ys.push_back({yc, yg});
    y0.push_back(std::move(y));
  }
  cpu_->MatMul(on_cpu);
  // Grouped calls by activation rows, so every token tile runs (1, 2, 4 and 8 rows per block; the
  // batch-1 decode path is the 1-row tile with its 4096-column chunks).
  for (auto [lo, hi] : {std::pair<int64_t, int64_t>{1, 1}, {2, 2}, {3, 4}, {5, INT64_MAX}}) {
    std::vector<MatMulArgs> part;
    for (const MatMulArgs& a : on_gpu) {
      if (a.n >= lo && a.n <= hi) part.push_back(a);
    }
    gpu_->MatMul(part);
  }
  for (size_t p = 0; p < cases.size(); ++p) {
    const ProductCase& c = cases[p];
    const int64_t ystride = c.rows + 3, xs = c.cols + 5;
    const std::vector<float> want = GetCpu(ys[p].first, c.n * ystride), got = GetGpu(ys[p].second, c.n * ystride);
    const bool blas = c.n > 8 && c.dtype == DType::kBF16;
    const double rtol = blas ? 3e-5 : 2e-6;
    for (int64_t i = 0; i < c.n; ++i) {
      for (int64_t r = 0; r < ystride; ++r) {
        const size_t at = i * ystride + r;
        if (r >= c.rows) {  // beyond the product's rows: untouched
          ASSERT_EQ(got[at], y0[p][at]) << Name(c) << " wrote past its rows";
          continue;
        }
        double mag = 0;
        for (int64_t k = 0; k < c.cols; ++k) mag += std::abs(double(x_host[p][i * xs + k]) * w_f32[p][r * c.cols + k]);
        ASSERT_NEAR(got[at], want[at], rtol * mag + 1e-6 * (1 + std::abs(want[at]))) << Name(c) << " at " << i << "," << r;
      }
    }
  }
}

TEST_F(CudaVsCpu, MatMulPrecisionOfPrefillProducts) {
  // bf16 weights, 37 activation rows: cuBLAS with bf16x2 (auto), one bf16 (bf16: ~4e-3 per term),
  // or our fp32 kernel (fp32).
  std::mt19937 rng(17);
  const int64_t rows = 70, cols = 520, n = 37;
  const HostWeight hw = MakeWeight(rng, DType::kBF16, rows, cols);
  auto [wc, wg] = PutW(hw);
  std::vector<float> x = Random(rng, n * cols);
  auto [xc, xg] = PutF(x);
  auto [yc, yg] = PutF(std::vector<float>(n * rows, 0.0f));
  const MatMulArgs c{xc, n, cols, wc, nullptr, yc, rows, false};
  cpu_->MatMul({&c, 1});
  std::vector<float> w(rows * cols);
  HostRowsToF32(wc, 0, rows, w.data());
  for (auto [precision, rtol] : {std::pair<MatMulPrecision, double>{MatMulPrecision::kFp32, 2e-6},
                                 {MatMulPrecision::kBf16x2, 3e-5}, {MatMulPrecision::kBf16, 8e-3}}) {
    auto gpu = Device(0, precision);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    auto buf = (*gpu)->Alloc(x.size() * 4 + hw.data.size() + n * rows * 4);
    ASSERT_TRUE(buf.ok());
    auto* base = static_cast<uint8_t*>((*buf)->data());
    (*gpu)->Upload(base, {reinterpret_cast<const uint8_t*>(x.data()), x.size() * 4});
    (*gpu)->Upload(base + x.size() * 4, hw.data);
    WeightView v{base + x.size() * 4, DType::kBF16, rows, cols};
    float* y = reinterpret_cast<float*>(base + x.size() * 4 + hw.data.size());
    const MatMulArgs g{reinterpret_cast<const float*>(base), n, cols, v, nullptr, y, rows, false};
    (*gpu)->MatMul({&g, 1});
    std::vector<float> got(n * rows);
    (*gpu)->Download(got.data(), y, got.size() * 4);
    ASSERT_TRUE((*gpu)->Check().ok()) << (*gpu)->Check().ToString();
    const std::vector<float> want = GetCpu(yc, n * rows);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        double mag = 0;
        for (int64_t k = 0; k < cols; ++k) mag += std::abs(double(x[i * cols + k]) * w[r * cols + k]);
        ASSERT_NEAR(got[i * rows + r], want[i * rows + r], rtol * mag + 1e-6)
            << MatMulPrecisionName(precision) << " at " << i << "," << r;
      }
    }
  }
}

TEST_F(CudaVsCpu, MatMulUnalignedRowSlice) {
  // A view starting one row into a bf16 weight of odd width: not 16-byte aligned, element loads.
  std::mt19937 rng(12);
  const HostWeight hw = MakeWeight(rng, DType::kBF16, 9, 37);
  auto [wc, wg] = PutW(hw);
  for (WeightView* v : {&wc, &wg}) {
    v->data = static_cast<const uint8_t*>(v->data) + 37 * 2;
    v->rows = 8;
  }
  std::vector<float> x = Random(rng, 3 * 37);
  auto [xc, xg] = PutF(x);
  auto [yc, yg] = PutF(std::vector<float>(3 * 8, 0.0f));
  const MatMulArgs c{xc, 3, 37, wc, nullptr, yc, 8, false}, g{xg, 3, 37, wg, nullptr, yg, 8, false};
  cpu_->MatMul({&c, 1});
  gpu_->MatMul({&g, 1});
  ExpectNear(GetGpu(yg, 24), GetCpu(yc, 24), 1e-5, "unaligned slice");
}

TEST_F(CudaVsCpu, RmsNorm) {
  std::mt19937 rng(13);
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t d : {1, 7, 64, 4096 + 3}) {
      for (int64_t n : {1, 7}) {
        for (bool in_place : {false, true}) {
          const HostWeight hw = MakeWeight(rng, dt, 1, d);
          auto [wc, wg] = PutW(hw);
          std::vector<float> x = Random(rng, n * d, 3.0f);
          auto [xc, xg] = PutF(x);
          auto [yc, yg] = in_place ? std::pair<float*, float*>{xc, xg} : PutF(std::vector<float>(n * d));
          cpu_->RmsNorm({xc, yc, n, d, wc, 1e-6f});
          gpu_->RmsNorm({xg, yg, n, d, wg, 1e-6f});
          ExpectNear(GetGpu(yg, n * d), GetCpu(yc, n * d), 1e-5,
                     "rmsnorm " + std::string(DTypeName(dt)) + " d=" + std::to_string(d));
        }
      }
    }
  }
}

TEST_F(CudaVsCpu, Rope) {
  std::mt19937 rng(14);
  for (int64_t hd : {2, 64, 128}) {
    const int64_t n = 7, heads = 3, stride = heads * hd + 11;
    std::vector<float> x = Random(rng, n * stride);
    auto [xc, xg] = PutF(x);
    std::vector<int32_t> pos(n);
    for (int64_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(rng() % 5000);
    std::vector<float> inv(hd / 2);
    for (int64_t j = 0; j < hd / 2; ++j) inv[j] = static_cast<float>(std::pow(10000.0, -2.0 * j / hd));
    cpu_->Rope({xc, n, heads, hd, stride, pos.data(), inv.data(), 1.3f});
    gpu_->Rope({xg, n, heads, hd, stride, pos.data(), inv.data(), 1.3f});
    ExpectNear(GetGpu(xg, n * stride), GetCpu(xc, n * stride), 1e-5, "rope hd=" + std::to_string(hd));
  }
}

TEST_F(CudaVsCpu, Attention) {
  std::mt19937 rng(15);
  struct Case {
    int64_t n, start, heads, kv_heads, hd, window, step = 1;  // query i at start + step · i
  };
  // Decode (n = 1) over long contexts splits the context across blocks; prefill does not.
  for (const Case& c : {Case{1, 0, 4, 2, 64, 0}, Case{7, 3, 8, 2, 128, 0}, Case{1, 4099, 8, 2, 128, 0},
                        Case{1, 4099, 8, 8, 64, 100}, Case{5, 300, 4, 1, 1, 0}, Case{2, 1500, 16, 1, 576, 0},
                        Case{33, 0, 4, 4, 32, 7},
                        // queries whose spans differ by more than a slice: the first's later slices are empty
                        Case{250, 10, 1, 1, 64, 0},
                        // prefill that fills the GPU: key tiles shared by 16 queries (with a window too)
                        Case{40, 1000, 8, 2, 128, 0}, Case{37, 1000, 8, 8, 64, 100}, Case{300, 0, 2, 1, 96, 0},
                        // spread positions with a short window: some queries have no key in a tile
                        Case{40, 0, 4, 2, 64, 8, 5}}) {
    const int64_t ctx = c.start + c.step * (c.n - 1) + 1, kvd = c.kv_heads * c.hd, qd = c.heads * c.hd, qs = qd + 3;
    std::vector<float> q = Random(rng, c.n * qs), k = Random(rng, ctx * kvd), v = Random(rng, ctx * kvd);
    auto [qc, qg] = PutF(q);
    auto [kc, kg] = PutF(k);
    auto [vc, vg] = PutF(v);
    auto [oc, og] = PutF(std::vector<float>(c.n * qd, 0.0f));
    std::vector<int32_t> pos(c.n);
    for (int64_t i = 0; i < c.n; ++i) pos[i] = static_cast<int32_t>(c.start + c.step * i);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    // MLA reads one latent as key and value: the same buffer for both when kv_heads == 1 and hd > 512.
    const bool shared = c.hd > 512;
    cpu_->Attention({qc, qs, kc, shared ? kc : vc, oc, qd, c.n, c.heads, c.kv_heads, c.hd, pos.data(), c.window, scale});
    gpu_->Attention({qg, qs, kg, shared ? kg : vg, og, qd, c.n, c.heads, c.kv_heads, c.hd, pos.data(), c.window, scale});
    ExpectNear(GetGpu(og, c.n * qd), GetCpu(oc, c.n * qd), 1e-5,
               "attention n=" + std::to_string(c.n) + " ctx=" + std::to_string(ctx) + " hd=" + std::to_string(c.hd));
  }
}

TEST_F(CudaVsCpu, SiluMulAddScaledEmbed) {
  std::mt19937 rng(16);
  {
    const int64_t n = 7, d = 4096 + 3;
    std::vector<float> a = Random(rng, n * (d + 1), 4.0f), b = Random(rng, n * (d + 2));
    auto [ac, ag] = PutF(a);
    auto [bc, bg] = PutF(b);
    cpu_->SiluMul({ac, bc, n, d, d + 1, d + 2});
    gpu_->SiluMul({ag, bg, n, d, d + 1, d + 2});
    ExpectNear(GetGpu(ag, n * (d + 1)), GetCpu(ac, n * (d + 1)), 1e-5, "silu_mul");
  }
  for (bool assign : {false, true}) {
    for (bool with_rows : {false, true}) {
      for (bool with_scale : {false, true}) {
        const int64_t n = 24, d = 300, rows_y = 6;
        std::vector<float> y = Random(rng, (with_rows ? rows_y : n) * d), x = Random(rng, n * d);
        std::vector<float> scale = Random(rng, n);
        std::vector<int32_t> rows(n);
        for (int64_t i = 0; i < n; ++i) rows[i] = static_cast<int32_t>(rng() % rows_y);  // repeats
        auto [yc, yg] = PutF(y);
        auto [xc, xg] = PutF(x);
        const AddScaledArgs base{nullptr, nullptr, with_scale ? scale.data() : nullptr, with_rows ? rows.data() : nullptr,
                                 n, d, d, d, assign};
        AddScaledArgs c = base, g = base;
        c.y = yc, c.x = xc, g.y = yg, g.x = xg;
        cpu_->AddScaled(c);
        gpu_->AddScaled(g);
        ExpectNear(GetGpu(yg, y.size()), GetCpu(yc, y.size()), 1e-5,
                   std::string("add_scaled") + (assign ? " assign" : "") + (with_rows ? " rows" : "") + (with_scale ? " scale" : ""));
      }
    }
  }
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kI8, DType::kI4, DType::kF8E4M3}) {
    const int64_t vocab = 50, cols = 96;
    const HostWeight hw = MakeWeight(rng, dt, vocab, cols);
    auto [tc, tg] = PutW(hw);
    const std::vector<int32_t> ids = {0, 49, 7, 7, 3};
    auto [yc, yg] = PutF(std::vector<float>(ids.size() * cols));
    cpu_->Embed({tc, ids.data(), static_cast<int64_t>(ids.size()), yc});
    gpu_->Embed({tg, ids.data(), static_cast<int64_t>(ids.size()), yg});
    ExpectNear(GetGpu(yg, ids.size() * cols), GetCpu(yc, ids.size() * cols), 1e-6, "embed " + std::string(DTypeName(dt)));
  }
}

TEST_F(CudaVsCpu, OutOfMemoryIsAValueAndTheBackendGoesOn) {
  auto huge = gpu_->Alloc(size_t{1} << 50);  // a PiB
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kResourceExhausted) << huge.status().ToString();
  EXPECT_TRUE(gpu_->Check().ok()) << gpu_->Check().ToString();
  // And it still computes.
  std::vector<float> x = {1, 2, 3};
  auto [xc, xg] = PutF(x);
  gpu_->SiluMul({xg, xg, 1, 3, 3, 3});
  cpu_->SiluMul({xc, xc, 1, 3, 3, 3});
  ExpectNear(GetGpu(xg, 3), GetCpu(xc, 3), 1e-6, "after an allocation failure");
}

#ifndef HUBNODE_CUDA_TEST_ON_CPU
TEST(CudaBackend, NameSaysWhyWhenAbsent) {
  auto gpu = MakeCudaBackend(0);
  if (gpu.ok()) {
    EXPECT_EQ((*gpu)->name(), "cuda");
    EXPECT_FALSE((*gpu)->host_memory());
    EXPECT_NE((*gpu)->device().find("sm_"), std::string_view::npos) << (*gpu)->device();
    return;
  }
  // Without a device the error says so (and names the cause) rather than crashing.
  EXPECT_EQ(gpu.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(gpu.status().message().find("no CUDA device"), std::string::npos) << gpu.status().ToString();
  auto bad = MakeCudaBackend(1000);
  EXPECT_FALSE(bad.ok());
}
#endif

}  // namespace
}  // namespace hubnode::runtime

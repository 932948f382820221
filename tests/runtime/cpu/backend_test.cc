// Every op of the CPU backend against a plain double-precision implementation on seeded random
// inputs, for every kernel set this CPU supports and every weight dtype (after ggml's
// test-backend-ops). A device backend joins this test when one is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "runtime/backend.h"
#include "tests/runtime/half_bits.h"
#include "runtime/cpu/cpu_kernels.h"

namespace hubnode::runtime {
namespace {

using testing::ToBf16;
using testing::ToF16;

// A random weight in `dtype`, and its exact values as doubles.
struct Weight {
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  WeightView view;
};

Weight MakeWeight(std::mt19937& rng, DType dt, int64_t rows, int64_t cols) {
  std::normal_distribution<float> nd(0, 1);
  Weight w;
  w.bytes.resize(rows * cols * DTypeSize(dt));
  w.values.resize(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float f = nd(rng);
    if (dt == DType::kF32) {
      std::memcpy(w.bytes.data() + i * 4, &f, 4);
      w.values[i] = f;
    } else if (dt == DType::kBF16) {
      const uint16_t h = ToBf16(f);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
      w.values[i] = kernels::Bf16ToF32(h);
    } else {
      const uint16_t h = ToF16(f);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
      w.values[i] = kernels::F16ToF32(h);
    }
  }
  w.view = WeightView{w.bytes.data(), dt, rows, cols};
  return w;
}

std::vector<float> Random(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> v(n);
  for (float& f : v) f = nd(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << "at " << i;
  }
}

TEST(Kernels, EverySetMatchesDoublePrecision) {
  std::mt19937 rng(1);
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const kernels::KernelSet* k = kernels::ByName(name);
    if (!k) continue;
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      for (int64_t in : {1, 7, 16, 33, 1000}) {
        Weight w = MakeWeight(rng, dt, 5, in);
        std::vector<float> x = Random(rng, in);
        float out[8];
        k->dot_rows(x.data(), w.bytes.data(), dt, in, in, 5, out);
        for (int r = 0; r < 5; ++r) {
          double want = 0;
          for (int64_t i = 0; i < in; ++i) want += double(x[i]) * w.values[r * in + i];
          EXPECT_NEAR(out[r], want, 1e-4 * (1 + std::sqrt(double(in)))) << name << " in=" << in;
        }
        std::vector<float> conv(in);
        k->to_f32(w.bytes.data(), dt, in, conv.data());
        for (int64_t i = 0; i < in; ++i) ASSERT_EQ(conv[i], static_cast<float>(w.values[i])) << name;
      }
    }
  }
}

TEST(Kernels, ConvertedAndDirectRowsAgreeBitForBit) {
  // Prefill converts weight blocks to f32 first; decode reads them directly. Same bits.
  std::mt19937 rng(2);
  const kernels::KernelSet& k = kernels::Select();
  Weight w = MakeWeight(rng, DType::kBF16, 8, 301);
  std::vector<float> x = Random(rng, 301), conv(8 * 301);
  float direct[8], converted[8];
  k.dot_rows(x.data(), w.bytes.data(), DType::kBF16, 301, 301, 8, direct);
  k.to_f32(w.bytes.data(), DType::kBF16, 8 * 301, conv.data());
  k.dot_rows(x.data(), conv.data(), DType::kF32, 301, 301, 8, converted);
  for (int r = 0; r < 8; ++r) EXPECT_EQ(direct[r], converted[r]);
}

TEST(Kernels, TilesEqualRowsBitForBit) {
  // Prefill multiplies four activation rows at a time; each result must be the same bits as
  // one row at a time (so a token's logits do not depend on its batch).
  std::mt19937 rng(7);
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const kernels::KernelSet* k = kernels::ByName(name);
    if (!k) continue;
    for (int rows : {8, 7, 4, 3}) {
      for (int nx : {4, 3, 1}) {
        std::vector<float> w = Random(rng, 8 * 197), x = Random(rng, 4 * 201);
        float tile[4 * kernels::kBlockRows], one[kernels::kBlockRows];
        k->dot_tile(x.data(), 201, nx, w.data(), 197, 197, rows, tile);
        for (int j = 0; j < nx; ++j) {
          k->dot_rows(x.data() + j * 201, w.data(), DType::kF32, 197, 197, rows, one);
          for (int r = 0; r < rows; ++r) ASSERT_EQ(tile[j * kernels::kBlockRows + r], one[r]) << name;
        }
      }
    }
  }
}

class BackendOps : public ::testing::TestWithParam<DType> {
 protected:
  std::unique_ptr<Backend> b_ = MakeCpuBackend(3);
  std::mt19937 rng_{42};
};

TEST_P(BackendOps, MatMulBatchedWithBiasAndAccumulate) {
  const DType dt = GetParam();
  for (int64_t n : {1, 2, 5}) {
    Weight w1 = MakeWeight(rng_, dt, 37, 64), w2 = MakeWeight(rng_, dt, 9, 64);
    std::vector<float> x = Random(rng_, n * 64), bias = Random(rng_, 37);
    std::vector<float> y1(n * 37, 0), y2 = Random(rng_, n * 9);
    std::vector<double> want1(n * 37), want2(n * 9);
    for (int64_t i = 0; i < n; ++i) {
      for (int r = 0; r < 37; ++r) {
        double s = bias[r];
        for (int c = 0; c < 64; ++c) s += double(x[i * 64 + c]) * w1.values[r * 64 + c];
        want1[i * 37 + r] = s;
      }
      for (int r = 0; r < 9; ++r) {
        double s = y2[i * 9 + r];
        for (int c = 0; c < 64; ++c) s += double(x[i * 64 + c]) * w2.values[r * 64 + c];
        want2[i * 9 + r] = s;
      }
    }
    const MatMulArgs products[] = {{x.data(), n, 64, w1.view, bias.data(), y1.data(), 37, false},
                                   {x.data(), n, 64, w2.view, nullptr, y2.data(), 9, true}};
    b_->MatMul(products);
    ExpectClose(y1, want1, 1e-4);
    ExpectClose(y2, want2, 1e-4);
  }
}

TEST_P(BackendOps, RmsNorm) {
  Weight w = MakeWeight(rng_, GetParam(), 1, 48);
  std::vector<float> x = Random(rng_, 6 * 48), y(6 * 48);
  std::vector<double> want(6 * 48);
  for (int i = 0; i < 6; ++i) {
    double ms = 0;
    for (int j = 0; j < 48; ++j) ms += double(x[i * 48 + j]) * x[i * 48 + j];
    const double inv = 1 / std::sqrt(ms / 48 + 1e-5);
    for (int j = 0; j < 48; ++j) want[i * 48 + j] = x[i * 48 + j] * inv * w.values[j];
  }
  b_->RmsNorm({x.data(), y.data(), 6, 48, w.view, 1e-5f});
  ExpectClose(y, want, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, BackendOps, ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

TEST(BackendOpsF32, RopeRotatesHalves) {
  auto b = MakeCpuBackend(2);
  std::mt19937 rng(3);
  const int n = 3, heads = 2, hd = 8;
  std::vector<float> x = Random(rng, n * heads * hd), orig = x;
  std::vector<int32_t> pos = {0, 5, 1000};
  std::vector<float> inv = {1.0f, 0.1f, 0.01f, 0.001f};
  b->Rope({x.data(), n, heads, hd, heads * hd, pos.data(), inv.data(), 1.5f});
  std::vector<double> want(x.size());
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd / 2; ++j) {
        const double a = double(pos[i]) * inv[j], c = std::cos(a) * 1.5, s = std::sin(a) * 1.5;
        const double x1 = orig[i * 16 + h * 8 + j], x2 = orig[i * 16 + h * 8 + j + 4];
        want[i * 16 + h * 8 + j] = x1 * c - x2 * s;
        want[i * 16 + h * 8 + j + 4] = x2 * c + x1 * s;
      }
  ExpectClose(x, want, 1e-5);
}

TEST(BackendOpsF32, AttentionCausalGqaWindow) {
  auto b = MakeCpuBackend(3);
  std::mt19937 rng(4);
  const int n = 4, heads = 4, kv = 2, hd = 8, ctx = 10;
  std::vector<float> q = Random(rng, n * heads * hd), k = Random(rng, ctx * kv * hd), v = Random(rng, ctx * kv * hd);
  std::vector<int32_t> pos = {2, 3, 7, 9};
  for (int window : {0, 3}) {
    std::vector<float> out(n * heads * hd);
    b->Attention({q.data(), heads * hd, k.data(), v.data(), out.data(), heads * hd, n, heads, kv, hd, pos.data(), window, 0.35f});
    std::vector<double> want(out.size(), 0);
    for (int i = 0; i < n; ++i)
      for (int h = 0; h < heads; ++h) {
        const int g = h / (heads / kv);
        const int begin = window ? std::max(0, pos[i] - window + 1) : 0;
        std::vector<double> s;
        double mx = -1e300;
        for (int t = begin; t <= pos[i]; ++t) {
          double d = 0;
          for (int j = 0; j < hd; ++j) d += double(q[i * 32 + h * 8 + j]) * k[t * 16 + g * 8 + j];
          s.push_back(d * 0.35);
          mx = std::max(mx, s.back());
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int t = begin; t <= pos[i]; ++t)
          for (int j = 0; j < hd; ++j) want[i * 32 + h * 8 + j] += s[t - begin] / sum * v[t * 16 + g * 8 + j];
      }
    ExpectClose(out, want, 1e-5);
  }
}

TEST(BackendOpsF32, SiluMulAddScaledEmbed) {
  auto b = MakeCpuBackend(2);
  std::mt19937 rng(5);
  std::vector<float> a = Random(rng, 5 * 6), bb = Random(rng, 5 * 6), a0 = a;
  b->SiluMul({a.data(), bb.data(), 5, 6, 6, 6});
  std::vector<double> want(30);
  for (int i = 0; i < 30; ++i) want[i] = a0[i] / (1 + std::exp(-double(a0[i]))) * bb[i];
  ExpectClose(a, want, 1e-5);

  // Scatter with repeated rows adds in order.
  std::vector<float> y(3 * 4, 1.0f), x = Random(rng, 4 * 4), scale = {0.5f, 2.0f, -1.0f, 0.25f};
  std::vector<int32_t> rows = {2, 0, 2, 1};
  b->AddScaled({y.data(), x.data(), scale.data(), rows.data(), 4, 4, 4, 4, false});
  std::vector<double> wy(12, 1.0);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) wy[rows[i] * 4 + j] += scale[i] * double(x[i * 4 + j]);
  ExpectClose(y, wy, 1e-6);

  Weight table = MakeWeight(rng, DType::kBF16, 10, 4);
  std::vector<int32_t> ids = {9, 0, 9};
  std::vector<float> e(12);
  b->Embed({table.view, ids.data(), 3, e.data()});
  std::vector<double> we;
  for (int id : ids)
    for (int j = 0; j < 4; ++j) we.push_back(table.values[id * 4 + j]);
  ExpectClose(e, we, 0);
}

TEST(BackendOpsF32, ResultsDoNotDependOnThreadCount) {
  std::mt19937 rng(6);
  Weight w = MakeWeight(rng, DType::kBF16, 300, 128);
  std::vector<float> x = Random(rng, 7 * 128);
  std::vector<float> y1(7 * 300), y4(7 * 300);
  MatMulArgs m{x.data(), 7, 128, w.view, nullptr, y1.data(), 300, false};
  MakeCpuBackend(1)->MatMul({&m, 1});
  m.y = y4.data();
  MakeCpuBackend(4)->MatMul({&m, 1});
  EXPECT_EQ(y1, y4);
}

TEST(BackendOpsF32, AddScaledIntoRepeatedRowsSplitsColumnsNotOrder) {
  // A token's experts add into its row in order of i; with many rows the threads split the
  // columns, so the bits do not depend on the thread count.
  std::mt19937 rng(13);
  const int64_t n = 40, d = 1000, targets = 5;
  std::vector<float> x = Random(rng, n * d), scale = Random(rng, n), start = Random(rng, targets * d);
  std::vector<int32_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = static_cast<int32_t>((i * 7) % targets);
  std::vector<float> y1 = start, y3 = start;
  MakeCpuBackend(1)->AddScaled({y1.data(), x.data(), scale.data(), rows.data(), n, d, d, d, false});
  MakeCpuBackend(3)->AddScaled({y3.data(), x.data(), scale.data(), rows.data(), n, d, d, d, false});
  EXPECT_EQ(y1, y3);
  std::vector<double> want(start.begin(), start.end());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) want[rows[i] * d + j] += double(scale[i]) * x[i * d + j];
  }
  ExpectClose(y3, want, 1e-5);
}

// The bf16 precisions run on AMX only; elsewhere they fall back to fp32 and are skipped here.
std::vector<MatMulPrecision> PrecisionsHere() {
  std::vector<MatMulPrecision> out = {MatMulPrecision::kFp32};
  for (MatMulPrecision p : {MatMulPrecision::kBf16x2, MatMulPrecision::kBf16}) {
    if (CpuMatMulPrecision(p) == p) {
      out.push_back(p);
    } else {
      std::printf("note: %s needs AMX-BF16, which this CPU lacks: not tested here\n", MatMulPrecisionName(p).data());
    }
  }
  return out;
}

TEST(MatMulPrecision, EachMatchesDoublePrecisionWithinItsStatedError) {
  // Error relative to Σ|x·w| of the row: fp32 and bf16x2 ~1e-6 (bf16x2's activations carry ~16
  // significant bits); bf16 rounds activations to 8 bits: ~1e-3, bounded by 2^-8.
  std::mt19937 rng(11);
  for (MatMulPrecision prec : PrecisionsHere()) {
    const double tol = prec == MatMulPrecision::kBf16 ? 4e-3 : prec == MatMulPrecision::kBf16x2 ? 4e-5 : 1e-5;
    auto b = MakeCpuBackend(2, prec);
    double worst = 0;
    for (int64_t rows : {1, 7, 16, 17, 33, 100}) {
      for (int64_t cols : {1, 7, 31, 32, 33, 200, 4099}) {
        for (int64_t n : {1, 2, 3, 16, 17, 40}) {
          Weight w = MakeWeight(rng, DType::kBF16, rows, cols);
          std::vector<float> x = Random(rng, n * cols), y(n * rows, -1);
          const MatMulArgs m{x.data(), n, cols, w.view, nullptr, y.data(), rows, false};
          b->MatMul({&m, 1});
          for (int64_t i = 0; i < n; ++i) {
            for (int64_t r = 0; r < rows; ++r) {
              double want = 0, scale = 0;
              for (int64_t c = 0; c < cols; ++c) {
                const double t = double(x[i * cols + c]) * w.values[r * cols + c];
                want += t;
                scale += std::abs(t);
              }
              const double err = std::abs(y[i * rows + r] - want) / (scale + 1e-30);
              worst = std::max(worst, err);
              ASSERT_LE(err, tol) << MatMulPrecisionName(prec) << " rows=" << rows << " cols=" << cols << " n=" << n
                                  << " at " << i << "," << r;
            }
          }
        }
      }
    }
    std::printf("%s: worst error relative to sum |x*w|: %.3g\n", MatMulPrecisionName(prec).data(), worst);
  }
}

TEST(MatMulPrecision, BatchedRowsEqualRowsAloneBitForBit) {
  // A token's result must not depend on the batch it rides in (batched = alone, prefill = decode).
  std::mt19937 rng(12);
  for (MatMulPrecision prec : PrecisionsHere()) {
    auto b = MakeCpuBackend(3, prec);
    Weight w = MakeWeight(rng, DType::kBF16, 70, 300);
    Weight w2 = MakeWeight(rng, DType::kBF16, 33, 300);
    std::vector<float> x = Random(rng, 37 * 300), bias = Random(rng, 70);
    std::vector<float> all(37 * 70), all2 = Random(rng, 37 * 33), alone(70), alone2(33);
    const std::vector<float> start2 = all2;
    const MatMulArgs batched[] = {{x.data(), 37, 300, w.view, bias.data(), all.data(), 70, false},
                                  {x.data(), 37, 300, w2.view, nullptr, all2.data(), 33, true}};
    b->MatMul(batched);
    for (int64_t i = 0; i < 37; ++i) {
      std::copy(start2.begin() + i * 33, start2.begin() + (i + 1) * 33, alone2.begin());
      const MatMulArgs one[] = {{x.data() + i * 300, 1, 300, w.view, bias.data(), alone.data(), 70, false},
                                {x.data() + i * 300, 1, 300, w2.view, nullptr, alone2.data(), 33, true}};
      b->MatMul(one);
      for (int r = 0; r < 70; ++r) ASSERT_EQ(all[i * 70 + r], alone[r]) << MatMulPrecisionName(prec) << " row " << i;
      for (int r = 0; r < 33; ++r) ASSERT_EQ(all2[i * 33 + r], alone2[r]) << MatMulPrecisionName(prec) << " row " << i;
    }
  }
}

TEST(MatMulPrecision, NamesParseAndAutoIsNeverBf16) {
  MatMulPrecision p;
  for (const char* name : {"auto", "fp32", "bf16x2", "bf16"}) {
    ASSERT_TRUE(ParseMatMulPrecision(name, &p)) << name;
    EXPECT_EQ(MatMulPrecisionName(p), name);
  }
  EXPECT_FALSE(ParseMatMulPrecision("int8", &p));
  EXPECT_FALSE(ParseMatMulPrecision("", &p));
  EXPECT_NE(CpuMatMulPrecision(MatMulPrecision::kAuto), MatMulPrecision::kBf16);
  EXPECT_EQ(CpuMatMulPrecision(MatMulPrecision::kFp32), MatMulPrecision::kFp32);
}

}  // namespace
}  // namespace hubnode::runtime

// Block-scaled weights (runtime/quant.h, runtime/cpu/quant_kernels.h): float8 e4m3 conversions,
// quantization error bounds, and every kernel set's products and dequantization against values
// computed here independently, for int8, int4 and fp8 in the cache's formats and DeepSeek-V3's
// 128 × 128 blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_kernels.h"
#include "runtime/quant.h"

namespace hubnode::runtime {
namespace {

TEST(Float8, EveryCodeRoundTripsAndKnownValuesDecode) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t code = static_cast<uint8_t>(c);
    const float v = F8E4M3ToF32(code);
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v));
      continue;
    }
    EXPECT_EQ(F32ToF8E4M3(v), code) << c;
  }
  EXPECT_EQ(F8E4M3ToF32(0x7E), 448.0f);
  EXPECT_EQ(F8E4M3ToF32(0x01), std::ldexp(1.0f, -9));  // the smallest subnormal
  EXPECT_EQ(F8E4M3ToF32(0x08), std::ldexp(1.0f, -6));  // the smallest normal
  EXPECT_EQ(F8E4M3ToF32(0x38), 1.0f);
  EXPECT_EQ(F8E4M3ToF32(0xB8), -1.0f);
}

TEST(Float8, RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(F32ToF8E4M3(1.0625f), 0x38);  // halfway between 1 and 1.125: to even (1)
  EXPECT_EQ(F32ToF8E4M3(1.1875f), 0x3A);  // halfway between 1.125 and 1.25: to even (1.25)
  EXPECT_EQ(F32ToF8E4M3(1.07f), 0x39);
  EXPECT_EQ(F32ToF8E4M3(1e6f), 0x7E);
  EXPECT_EQ(F32ToF8E4M3(-1e6f), 0xFE);
  EXPECT_EQ(F32ToF8E4M3(464.0f), 0x7E);  // would round up past 448: saturates, never NaN
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(1.5f, -9)), 0x02);  // subnormal halfway 1.5 -> even 2
  EXPECT_EQ(F32ToF8E4M3(std::ldexp(1.0f, -11)), 0x00);
  EXPECT_EQ(F32ToF8E4M3(std::nanf("")), 0x7F);
}

// The value of element (r, c) of a quantized weight, decoded here without the kernels.
double Element(const WeightView& w, int64_t r, int64_t c) {
  const int64_t bc = w.block_cols < w.cols ? w.block_cols : w.cols;
  const int64_t nbc = (w.cols + bc - 1) / bc;
  const double s = w.scales[(r / w.block_rows) * nbc + c / bc];
  const uint8_t* d = static_cast<const uint8_t*>(w.data);
  const int64_t at = r * w.cols + c;
  switch (w.dtype) {
    case DType::kI8: return static_cast<int8_t>(d[at]) * s;
    case DType::kI4: return (((d[at / 2] >> ((at & 1) * 4)) & 0xF) - 8) * s;
    default: return F8E4M3ToF32(d[at]) * s;
  }
}

struct Quantized {
  std::vector<float> src;
  std::vector<uint8_t> data;
  std::vector<float> scales;
  WeightView view;
};

Quantized Make(std::mt19937& rng, const QuantFormat& f, int64_t rows, int64_t cols) {
  std::normal_distribution<float> nd(0, 0.05f);
  Quantized q;
  q.src.resize(rows * cols);
  for (float& v : q.src) v = nd(rng);
  q.src[rng() % q.src.size()] = 0.9f;  // an outlier in one block
  q.data.assign(QuantDataBytes(rows, cols, f.dtype), 0xAA);
  q.scales.resize(QuantScaleCount(rows, cols, f.block_rows, f.block_cols));
  EXPECT_TRUE(Quantize(q.src.data(), rows, cols, f, q.data.data(), q.scales.data()).ok());
  q.view = WeightView{q.data.data(), f.dtype, rows, cols, q.scales.data(), f.block_rows, f.block_cols};
  return q;
}

struct Case {
  QuantFormat format;
  int64_t rows, cols;
};

std::vector<Case> Cases() {
  return {
      {DefaultQuantFormat(DType::kI8), 19, 384},   {DefaultQuantFormat(DType::kI8), 9, 100},  // one block per row
      {DefaultQuantFormat(DType::kI4), 19, 320},   {DefaultQuantFormat(DType::kI4), 9, 70},
      {DefaultQuantFormat(DType::kF8E4M3), 19, 200}, {{DType::kF8E4M3, 128, 128}, 300, 272},  // DeepSeek-V3's
      {{DType::kI8, 1, 16}, 8, 48},
  };
}

TEST(Quantize, ErrorWithinHalfAStepOfItsBlock) {
  std::mt19937 rng(3);
  for (const Case& c : Cases()) {
    Quantized q = Make(rng, c.format, c.rows, c.cols);
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int64_t i = 0; i < c.cols; ++i) {
        const double got = Element(q.view, r, i), want = q.src[r * c.cols + i];
        const int64_t bc = c.format.block_cols < c.cols ? c.format.block_cols : c.cols;
        const double s = q.scales[(r / c.format.block_rows) * ((c.cols + bc - 1) / bc) + i / bc];
        // int: half a step; e4m3: half an ulp (2^-4 relative) or half the subnormal step.
        const double tol = c.format.dtype == DType::kF8E4M3 ? std::max(std::abs(want) / 16, s * std::ldexp(1.0, -10))
                                                            : s / 2;
        ASSERT_LE(std::abs(got - want), tol * (1 + 1e-6)) << DTypeName(c.format.dtype) << " " << r << "," << i;
      }
    }
  }
}

TEST(Quantize, EveryPathRoundsToNearestEvenWithTheSameScale) {
  // The AVX-512 path (blocks of 32k columns) and the scalar one (others) against the definition:
  // scale = absmax / levels, q = clamp(nearbyint(x · (1 / scale))), int4 stored as q + 8.
  std::mt19937 rng(6);
  std::normal_distribution<float> nd(0, 1);
  for (const Case& c : {Case{{DType::kI8, 1, 128}, 5, 256}, Case{{DType::kI4, 1, 32}, 5, 96},
                        Case{{DType::kI8, 1, 128}, 5, 100}, Case{{DType::kI4, 1, 32}, 5, 50}}) {
    std::vector<float> src(c.rows * c.cols);
    for (float& v : src) v = nd(rng);
    src[3] = 2.5f * 3;  // exact ties appear once the scale is 3 / levels ...
    src[4] = 0.5f;
    const int64_t bc = std::min(c.format.block_cols, c.cols), nbc = (c.cols + bc - 1) / bc;
    std::vector<uint8_t> data(QuantDataBytes(c.rows, c.cols, c.format.dtype));
    std::vector<float> scales(c.rows * nbc);
    ASSERT_TRUE(Quantize(src.data(), c.rows, c.cols, c.format, data.data(), scales.data()).ok());
    const float levels = c.format.dtype == DType::kI8 ? 127 : 7;
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int64_t b = 0; b < nbc; ++b) {
        float amax = 0;
        for (int64_t i = b * bc; i < std::min(c.cols, (b + 1) * bc); ++i) amax = std::max(amax, std::abs(src[r * c.cols + i]));
        ASSERT_EQ(scales[r * nbc + b], amax / levels);
        const float inv = 1.0f / (amax / levels);
        for (int64_t i = b * bc; i < std::min(c.cols, (b + 1) * bc); ++i) {
          const int64_t at = r * c.cols + i;
          const float q = std::clamp(std::nearbyint(src[at] * inv), c.format.dtype == DType::kI8 ? -127.0f : -8.0f,
                                     c.format.dtype == DType::kI8 ? 127.0f : 7.0f);
          const int got = c.format.dtype == DType::kI8 ? static_cast<int8_t>(data[at])
                                                       : ((data[at / 2] >> ((at & 1) * 4)) & 0xF) - 8;
          ASSERT_EQ(got, static_cast<int>(q)) << DTypeName(c.format.dtype) << " cols " << c.cols << " at " << at;
        }
      }
    }
  }
}

// A block whose largest weight is tiny (below ~1e-36, finite in bf16 and f32) has a scale whose
// inverse overflows to infinity: 0 · inf made NaN, and fp8 stored it as its NaN code, poisoning
// every product the expert took part in (int8/int4 cast NaN and inf to an integer: undefined).
TEST(Quantize, TinyBlocksQuantizeToZeroNotNaN) {
  constexpr int64_t rows = 2, cols = 128;
  std::vector<float> src(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) src[i] = i % 3 == 0 ? 0.0f : (i % 3 == 1 ? 1e-37f : -3e-38f);
  for (const QuantFormat& f : {DefaultQuantFormat(DType::kI8), DefaultQuantFormat(DType::kI4),
                               DefaultQuantFormat(DType::kF8E4M3), QuantFormat{DType::kI8, 2, 16},
                               QuantFormat{DType::kI4, 2, 32}, QuantFormat{DType::kF8E4M3, 128, 128}}) {
    std::vector<uint8_t> data(QuantDataBytes(rows, cols, f.dtype));
    std::vector<float> scales(QuantScaleCount(rows, cols, f.block_rows, f.block_cols));
    ASSERT_TRUE(Quantize(src.data(), rows, cols, f, data.data(), scales.data()).ok());
    const WeightView v{data.data(), f.dtype, rows, cols, scales.data(), f.block_rows, f.block_cols};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < cols; ++i) {
        const float got = Element(v, r, i);
        ASSERT_TRUE(std::isfinite(got)) << DTypeName(f.dtype) << " " << f.block_rows << "x" << f.block_cols << " at " << r << "," << i;
        ASSERT_LE(std::abs(got - src[r * cols + i]), 1e-36f);
      }
    }
  }
}

TEST(Quantize, RefusesWhatTheKernelsCannotRead) {
  std::vector<float> src(64, 1.0f);
  std::vector<uint8_t> data(64);
  std::vector<float> scales(64);
  EXPECT_FALSE(Quantize(src.data(), 2, 32, {DType::kI8, 1, 24}, data.data(), scales.data()).ok());
  EXPECT_FALSE(Quantize(src.data(), 1, 64, {DType::kI4, 1, 16}, data.data(), scales.data()).ok());
  EXPECT_FALSE(Quantize(src.data(), 3, 21, {DType::kI4, 1, 32}, data.data(), scales.data()).ok());  // odd row
  EXPECT_FALSE(Quantize(src.data(), 2, 32, {DType::kBF16, 1, 32}, data.data(), scales.data()).ok());
  src[5] = std::nanf("");
  EXPECT_FALSE(Quantize(src.data(), 2, 32, {DType::kI8, 1, 32}, data.data(), scales.data()).ok());
  EXPECT_FALSE(Quantize(src.data(), 1, 64, {DType::kI4, 1, 32}, data.data(), scales.data()).ok());
  src[5] = INFINITY;
  EXPECT_FALSE(Quantize(src.data(), 2, 32, {DType::kI8, 1, 32}, data.data(), scales.data()).ok());
  src[5] = 0;
  EXPECT_TRUE(Quantize(src.data(), 2, 32, {DType::kI8, 1, 32}, data.data(), scales.data()).ok());
  EXPECT_EQ(scales[0], 1.0f / 127);
}

TEST(QuantKernels, EverySetMatchesTheDecodedValues) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0, 1);
  for (const Case& c : Cases()) {
    Quantized q = Make(rng, c.format, c.rows, c.cols);
    std::vector<float> x(c.cols);
    for (float& v : x) v = nd(rng);
    for (const char* name : {"scalar", "avx2", "avx512"}) {
      const kernels::KernelSet* k = kernels::ByName(name);
      if (!k) continue;
      SCOPED_TRACE(std::string(name) + " " + std::string(DTypeName(c.format.dtype)) + " cols " + std::to_string(c.cols));
      std::vector<float> deq(c.rows * c.cols);
      for (int64_t r0 = 0; r0 < c.rows; r0 += kernels::kBlockRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kernels::kBlockRows, c.rows - r0));
        k->dequant_rows(q.view, r0, rows, deq.data() + r0 * c.cols);
        float direct[kernels::kBlockRows], tile[4 * kernels::kBlockRows];
        k->dot_rows_q(x.data(), q.view, r0, rows, direct);
        for (int r = 0; r < rows; ++r) {
          double want = 0, mag = 0;
          for (int64_t i = 0; i < c.cols; ++i) {
            want += x[i] * Element(q.view, r0 + r, i);
            mag += std::abs(x[i] * Element(q.view, r0 + r, i));
          }
          ASSERT_NEAR(direct[r], want, 1e-6 * mag + 1e-30) << "row " << r0 + r;
        }
        // Prefill (up to four activation rows at once) and decode (one) give the same bits.
        std::vector<float> xs(4 * c.cols);
        for (int j = 0; j < 4; ++j) std::copy(x.begin(), x.end(), xs.begin() + j * c.cols);
        for (int j = 1; j < 4; ++j) xs[j * c.cols] += j;  // the rows differ
        for (int nx : {4, 3, 1}) {
          std::vector<float> raw(rows * c.cols);
          if (k->raw_rows) k->raw_rows(q.view, r0, rows, raw.data());
          k->dot_tile_q(xs.data(), c.cols, nx, q.view, r0, rows, raw.data(), tile);
          for (int j = 0; j < nx; ++j) {
            float one[kernels::kBlockRows];
            k->dot_rows_q(xs.data() + j * c.cols, q.view, r0, rows, one);
            for (int r = 0; r < rows; ++r) ASSERT_EQ(tile[j * kernels::kBlockRows + r], one[r]) << "nx " << nx << " j " << j;
          }
        }
      }
      for (int64_t r = 0; r < c.rows; ++r) {
        for (int64_t i = 0; i < c.cols; ++i) {
          ASSERT_EQ(deq[r * c.cols + i], static_cast<float>(Element(q.view, r, i))) << r << "," << i;
        }
      }
    }
  }
}

TEST(QuantKernels, BackendMatMulBatchedEqualsAloneAndMatchesDouble) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 1);
  auto b = MakeCpuBackend(3);
  for (DType dt : {DType::kI8, DType::kI4, DType::kF8E4M3}) {
    Quantized q = Make(rng, DefaultQuantFormat(dt), 37, 256);
    const int64_t n = 9;
    std::vector<float> x(n * 256), all(n * 37), alone(37);
    for (float& v : x) v = nd(rng);
    const MatMulArgs batched{x.data(), n, 256, q.view, nullptr, all.data(), 37, false};
    b->MatMul({&batched, 1});
    for (int64_t i = 0; i < n; ++i) {
      const MatMulArgs one{x.data() + i * 256, 1, 256, q.view, nullptr, alone.data(), 37, false};
      b->MatMul({&one, 1});
      for (int r = 0; r < 37; ++r) {
        ASSERT_EQ(all[i * 37 + r], alone[r]) << DTypeName(dt);
        double want = 0;
        for (int64_t c = 0; c < 256; ++c) want += x[i * 256 + c] * Element(q.view, r, c);
        ASSERT_NEAR(alone[r], want, 1e-4) << DTypeName(dt);
      }
    }
    // A quantized embedding table reads its rows dequantized.
    std::vector<float> row(256);
    const int32_t id = 11;
    b->Embed(EmbedArgs{q.view, &id, 1, row.data()});
    for (int64_t c = 0; c < 256; ++c) ASSERT_EQ(row[c], static_cast<float>(Element(q.view, id, c)));
  }
}

}  // namespace
}  // namespace hubnode::runtime

// The expert cache holding experts in another dtype than stored (EngineOptions::expert_dtype):
// sizes as held, values within the format's step of the stored ones, DeepSeek-V3's float8 with
// its 128 × 128 `_scale_inv` kept as is or converted, and refusals naming the tensor.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/quant.h"
#include "runtime/weights.h"
#include "tests/runtime/memory_source.h"

namespace hubnode::runtime {
namespace {

class Source final : public testing::MemorySource {
 public:
  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    Put(name, dtype, std::move(shape), std::move(bytes));
  }
};

uint16_t Bf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

// Two MoE layers of 4 experts, hidden 64, expert width 160 (int4's 32-column blocks fit both
// ways); weights ~N(0, 0.05) with an outlier per tensor.
class ExpertDTypeTest : public ::testing::Test {
 protected:
  static constexpr int64_t kH = 64, kI = 160;

  void SetUp() override {
    nlohmann::json j = {{"model_type", "olmoe"}, {"hidden_size", kH}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 2}, {"vocab_size", 10}, {"intermediate_size", kI},
                        {"num_experts", 4}, {"num_experts_per_tok", 2}};
    config_ = *ParseModelConfig(j.dump(), "");
    backend_ = MakeCpuBackend(1);
  }

  // Stored bf16 experts; `values` keeps each tensor's exact values.
  void AddBf16Experts() {
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0, 0.05f);
    ForEachTensor([&](const std::string& name, int64_t rows, int64_t cols) {
      std::vector<uint8_t> bytes(rows * cols * 2);
      std::vector<float>& v = values_[name];
      for (int64_t i = 0; i < rows * cols; ++i) {
        const uint16_t h = Bf16(i == 7 ? 0.8f : nd(rng));
        std::memcpy(bytes.data() + 2 * i, &h, 2);
        v.push_back(kernels::Bf16ToF32(h));
      }
      source_.Add(name, DType::kBF16, {rows, cols}, std::move(bytes));
    });
  }

  // Stored float8 with 128 x 128 block scales, as DeepSeek-V3 ships them; `scale_inv` = false
  // leaves the scales out.
  void AddFp8Experts(bool scale_inv = true) {
    std::mt19937 rng(10);
    std::normal_distribution<float> nd(0, 0.05f);
    ForEachTensor([&](const std::string& name, int64_t rows, int64_t cols) {
      std::vector<float> src(rows * cols);
      for (float& f : src) f = nd(rng);
      const QuantFormat f{DType::kF8E4M3, 128, 128};
      std::vector<uint8_t> data(QuantDataBytes(rows, cols, f.dtype));
      std::vector<float> scales(QuantScaleCount(rows, cols, 128, 128));
      ASSERT_TRUE(Quantize(src.data(), rows, cols, f, data.data(), scales.data()).ok());
      data.resize(rows * cols);
      std::vector<float>& v = values_[name];
      const int64_t nbc = (cols + 127) / 128;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          v.push_back(F8E4M3ToF32(data[r * cols + c]) * scales[(r / 128) * nbc + c / 128]);
      source_.Add(name, DType::kF8E4M3, {rows, cols}, std::move(data));
      if (scale_inv) {
        std::vector<uint8_t> sb(scales.size() * 4);
        std::memcpy(sb.data(), scales.data(), sb.size());
        source_.Add(name + "_scale_inv", DType::kF32, {(rows + 127) / 128, nbc}, std::move(sb));
      }
    });
  }

  template <typename Fn>
  void ForEachTensor(Fn fn) {
    for (int l = 0; l < 2; ++l)
      for (int e = 0; e < 4; ++e)
        for (int which = 0; which < 3; ++which)
          fn(config_.ExpertTensor(l, e, which), which == 2 ? kH : kI, which == 2 ? kI : kH);
  }

  // The held expert's values, dequantized by the kernels, against the stored ones.
  void ExpectClose(const Expert& e, int layer, int expert, double rel_step) {
    const WeightView* views[3] = {&e.gate, &e.up, &e.down};
    for (int which = 0; which < 3; ++which) {
      const WeightView& w = *views[which];
      std::vector<float> got(w.rows * w.cols);
      if (IsBlockScaled(w.dtype)) {
        kernels::Scalar().dequant_rows(w, 0, static_cast<int>(w.rows), got.data());
      } else {
        kernels::Scalar().to_f32(w.data, w.dtype, w.rows * w.cols, got.data());
      }
      const std::vector<float>& want = values_.at(config_.ExpertTensor(layer, expert, which));
      float amax = 0;
      for (float v : want) amax = std::max(amax, std::abs(v));
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], rel_step * amax * (1 + 1e-5) + 1e-12) << config_.ExpertTensor(layer, expert, which) << " " << i;
      }
    }
  }

  Source source_;
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  std::map<std::string, std::vector<float>> values_;
};

TEST_F(ExpertDTypeTest, QuantizedExpertsAreSmallerAndCloseToTheStoredValues) {
  AddBf16Experts();
  const std::vector<TensorDesc> tensors = *source_.ListTensors();
  const uint64_t bf16_bytes = 8 * 3 * kH * kI * 2;
  struct Want {
    ExpertDType dtype;
    DType held;
    uint64_t bytes;  // of all 8 experts
    double step;     // error bound relative to the tensor's absmax
  };
  // Data (64-byte padded per tensor) + f32 scales: int8 per 128 columns, int4 per 32, fp8 per 128.
  auto q = [](DType dt, int64_t block) {
    return 8 * (2 * QuantBytes(kI, kH, {dt, 1, block}) + QuantBytes(kH, kI, {dt, 1, block}));
  };
  const Want wants[] = {{ExpertDType::kStored, DType::kBF16, bf16_bytes, 0},
                        {ExpertDType::kBf16, DType::kBF16, bf16_bytes, 0},
                        {ExpertDType::kInt8, DType::kI8, q(DType::kI8, 128), 0.5 / 127},
                        {ExpertDType::kInt4, DType::kI4, q(DType::kI4, 32), 0.5 / 7},
                        {ExpertDType::kFp8, DType::kF8E4M3, q(DType::kF8E4M3, 128), 1.0 / 16}};
  for (const Want& w : wants) {
    SCOPED_TRACE(std::string(ExpertDTypeName(w.dtype)));
    ExpertCache cache(source_, *backend_, config_, tensors, 0, w.dtype);
    ASSERT_EQ(*cache.Validate(), w.bytes);
    const int experts[] = {1, 3};
    auto got = cache.Acquire(1, experts);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ((*got)[0]->gate.dtype, w.held);
    EXPECT_EQ((*got)[0]->bytes, w.bytes / 8);
    ExpectClose(*(*got)[0], 1, 1, w.step);
    ExpectClose(*(*got)[1], 1, 3, w.step);
  }
  // int4 holds experts in about 0.31 of bf16's bytes (4 bits + a 32-bit scale per 32).
  EXPECT_LT(q(DType::kI4, 32), bf16_bytes * 0.32);
}

TEST_F(ExpertDTypeTest, StoredFloat8KeepsItsBlockScalesOrConverts) {
  AddFp8Experts();
  const std::vector<TensorDesc> tensors = *source_.ListTensors();
  ExpertCache stored(source_, *backend_, config_, tensors, 0, ExpertDType::kStored);
  ASSERT_TRUE(stored.Validate().ok());
  const int one[] = {2};
  auto got = stored.Acquire(0, one);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const Expert& e = *(*got)[0];
  EXPECT_EQ(e.up.dtype, DType::kF8E4M3);
  EXPECT_EQ(e.up.block_rows, 128);
  EXPECT_EQ(e.down.block_cols, 128);
  ExpectClose(e, 0, 2, 0);  // exactly the stored values
  // Half of bf16's bytes, plus one f32 per 128 x 128 block.
  EXPECT_EQ(e.bytes, 2 * QuantBytes(kI, kH, {DType::kF8E4M3, 128, 128}) + QuantBytes(kH, kI, {DType::kF8E4M3, 128, 128}));
  // fp8 asked of float8 keeps the stored blocks (no second rounding).
  ExpertCache fp8(source_, *backend_, config_, tensors, 0, ExpertDType::kFp8);
  ASSERT_TRUE(fp8.Validate().ok());
  auto kept = fp8.Acquire(0, one);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ((*kept)[0]->gate.block_rows, 128);
  ExpectClose(*(*kept)[0], 0, 2, 0);
  for (ExpertDType to : {ExpertDType::kBf16, ExpertDType::kInt8, ExpertDType::kInt4}) {
    SCOPED_TRACE(std::string(ExpertDTypeName(to)));
    ExpertCache cache(source_, *backend_, config_, tensors, 0, to);
    ASSERT_TRUE(cache.Validate().ok());
    auto conv = cache.Acquire(0, one);
    ASSERT_TRUE(conv.ok()) << conv.status().ToString();
    ExpectClose(*(*conv)[0], 0, 2, to == ExpertDType::kBf16 ? 1.0 / 256 : to == ExpertDType::kInt8 ? 0.5 / 127 : 0.5 / 7);
  }
}

TEST_F(ExpertDTypeTest, Float8WithoutItsScalesIsRefusedByName) {
  AddFp8Experts(/*scale_inv=*/false);
  const std::vector<TensorDesc> tensors = *source_.ListTensors();
  ExpertCache cache(source_, *backend_, config_, tensors, 0, ExpertDType::kStored);
  auto v = cache.Validate();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("_scale_inv"), std::string::npos) << v.status().ToString();
}

TEST_F(ExpertDTypeTest, NonFiniteFloat8ScalesAreRefusedByName) {
  AddFp8Experts();
  const std::string name = config_.ExpertTensor(1, 2, 0) + "_scale_inv";
  std::vector<uint8_t>& bytes = source_.Bytes(name);
  const float nan = std::nanf("");
  std::memcpy(bytes.data(), &nan, 4);
  const std::vector<TensorDesc> tensors = *source_.ListTensors();
  for (ExpertDType dt : {ExpertDType::kStored, ExpertDType::kInt4}) {
    ExpertCache cache(source_, *backend_, config_, tensors, 0, dt);
    ASSERT_TRUE(cache.Validate().ok());
    const int two[] = {2};
    auto got = cache.Acquire(1, two);
    ASSERT_FALSE(got.ok()) << ExpertDTypeName(dt);
    EXPECT_NE(got.status().message().find(name), std::string::npos) << got.status().ToString();
    EXPECT_TRUE(cache.Acquire(0, two).ok());  // the other layer's expert 2 is fine
  }
}

TEST(ExpertDTypeNames, ParseEveryNameAndRefuseOthers) {
  ExpertDType d;
  for (const char* name : {"stored", "bf16", "fp8", "int8", "int4"}) {
    ASSERT_TRUE(ParseExpertDType(name, &d)) << name;
    EXPECT_EQ(ExpertDTypeName(d), name);
  }
  EXPECT_FALSE(ParseExpertDType("q4_0", &d));
  EXPECT_FALSE(ParseExpertDType("", &d));
}

// A backend whose memory the loaders treat as a device's (host_memory() false: weights staged in
// host memory, then Upload): the CPU backend underneath, uploads counted. The CUDA backend's load
// path, run here without a GPU.
class StagedBackend final : public Backend {
 public:
  std::string_view name() const override { return "staged"; }
  std::string_view device() const override { return "cpu"; }
  bool Supports(Op op, DType dt) const override { return cpu_->Supports(op, dt); }
  bool host_memory() const override { return false; }
  Result<std::unique_ptr<Buffer>> Alloc(size_t bytes) override { return cpu_->Alloc(bytes); }
  void Upload(void* dst, std::span<const uint8_t> src) override {
    std::memcpy(dst, src.data(), src.size());
    uploads.fetch_add(1);
  }
  void Download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void MatMul(std::span<const MatMulArgs> p) override { cpu_->MatMul(p); }
  void RmsNorm(const RmsNormArgs& a) override { cpu_->RmsNorm(a); }
  void Rope(const RopeArgs& a) override { cpu_->Rope(a); }
  void Attention(const AttentionArgs& a) override { cpu_->Attention(a); }
  void SiluMul(const SiluMulArgs& a) override { cpu_->SiluMul(a); }
  void AddScaled(const AddScaledArgs& a) override { cpu_->AddScaled(a); }
  void Embed(const EmbedArgs& a) override { cpu_->Embed(a); }
  std::atomic<int> uploads{0};

 private:
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend(1);
};

// The bytes of a held expert's three views (data, then scales).
std::vector<uint8_t> HeldBytes(const Expert& e) {
  std::vector<uint8_t> out;
  for (const WeightView* w : {&e.gate, &e.up, &e.down}) {
    const auto* d = static_cast<const uint8_t*>(w->data);
    out.insert(out.end(), d, d + DTypeBytes(w->dtype, static_cast<uint64_t>(w->rows * w->cols)));
    if (w->scales) {
      const auto* s = reinterpret_cast<const uint8_t*>(w->scales);
      out.insert(out.end(), s, s + 4 * QuantScaleCount(w->rows, w->cols, w->block_rows, w->block_cols));
    }
  }
  return out;
}

TEST_F(ExpertDTypeTest, DeviceLoadsHoldTheSameBytesAndReloadFromTheHostTier) {
  for (bool fp8 : {false, true}) {
    source_ = Source();
    values_.clear();
    if (fp8) {
      AddFp8Experts();
    } else {
      AddBf16Experts();
    }
    const std::vector<TensorDesc> tensors = *source_.ListTensors();
    for (ExpertDType dt : {ExpertDType::kStored, ExpertDType::kBf16, ExpertDType::kInt8, ExpertDType::kInt4, ExpertDType::kFp8}) {
      SCOPED_TRACE(std::string(fp8 ? "fp8 " : "bf16 ") + std::string(ExpertDTypeName(dt)));
      ExpertCache host(source_, *backend_, config_, tensors, 0, dt);
      StagedBackend staged;
      // The device's budget holds one expert: every other Acquire reloads.
      ASSERT_TRUE(host.Validate().ok());
      ExpertCache device(source_, staged, config_, tensors, 1, dt, /*host_tier_bytes=*/UINT64_MAX);
      ASSERT_TRUE(device.Validate().ok());
      for (int round = 0; round < 2; ++round) {
        for (int e = 0; e < 4; ++e) {
          const int one[] = {e};
          auto want = host.Acquire(1, one);
          const int reads = source_.reads();
          auto got = device.Acquire(1, one);
          ASSERT_TRUE(want.ok() && got.ok()) << got.status().ToString();
          EXPECT_EQ(HeldBytes(*(*got)[0]), HeldBytes(*(*want)[0])) << "expert " << e;
          if (round == 1) {
            EXPECT_EQ(source_.reads(), reads) << "a reload read the source again";
          }
        }
      }
      const ExpertCacheStats s = device.stats();
      EXPECT_EQ(s.host_tier_hits, 4u);  // the second round came from the tier
      EXPECT_GT(s.host_tier_bytes, 0u);
      EXPECT_EQ(staged.uploads.load(), 8);  // one upload per load of an expert
    }
  }
}

TEST_F(ExpertDTypeTest, HostTierKeepsItsBudget) {
  AddBf16Experts();
  const std::vector<TensorDesc> tensors = *source_.ListTensors();
  StagedBackend staged;
  ExpertCache probe(source_, *backend_, config_, tensors, 0);
  const uint64_t per_expert = *probe.Validate() / 8;
  // Room for two experts' images (with their padding).
  ExpertCache device(source_, staged, config_, tensors, 1, ExpertDType::kStored, 2 * (per_expert + 192));
  ASSERT_TRUE(device.Validate().ok());
  for (int e : {0, 1, 2, 3, 0}) {
    const int one[] = {e};
    ASSERT_TRUE(device.Acquire(0, one).ok());
  }
  const ExpertCacheStats s = device.stats();
  EXPECT_LE(s.host_tier_bytes, 2 * (per_expert + 192));
  EXPECT_EQ(s.host_tier_hits, 0u);  // expert 0 was pushed out of the tier by 2 and 3
}

}  // namespace
}  // namespace hubnode::runtime

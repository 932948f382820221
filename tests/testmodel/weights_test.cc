// Tests of the weight streams and dtype conversions.
#include "testmodel/weights.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "base/hash.h"

namespace hubnode::testmodel {
namespace {

TEST(ConversionTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBf16(-2.0f), 0xC000);
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // above the tie
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x7F7FFFFFu)), 0x7F80);  // FLT_MAX -> inf
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::infinity()), 0x7F80);
  const uint16_t nan = FloatToBf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(Bf16ToFloat(nan)));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::bit_cast<float>(0x7F800001u)))));
}

TEST(ConversionTest, F16KnownValues) {
  EXPECT_EQ(FloatToF16(1.0f), 0x3C00);
  EXPECT_EQ(FloatToF16(-2.0f), 0xC000);
  EXPECT_EQ(FloatToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToF16(65520.0f), 0x7C00);  // halfway to the next binade rounds to infinity
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(FloatToF16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(FloatToF16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToF16(0.1f), 0x2E66);
  EXPECT_EQ(FloatToF16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToF16(std::numeric_limits<float>::quiet_NaN()) & 0x7E00, 0x7E00);
}

#ifdef __FLT16_MAX__
// The compiler's float -> _Float16 conversion rounds to nearest even; ours must agree everywhere.
TEST(ConversionTest, F16MatchesTheCompilerOnRandomFloats) {
  std::mt19937 gen(42);
  for (int i = 0; i < 1000000; ++i) {
    float f = std::bit_cast<float>(static_cast<uint32_t>(gen()));
    if (std::isnan(f)) continue;
    if (i % 2) {  // the half-precision range, densely
      const uint32_t significand = (static_cast<uint32_t>(gen()) & 0x807FFFFFu) | 0x3F800000u;
      f = std::ldexp(std::bit_cast<float>(significand), static_cast<int>(gen() % 48) - 30);
    }
    const _Float16 h = static_cast<_Float16>(f);
    ASSERT_EQ(FloatToF16(f), std::bit_cast<uint16_t>(h)) << std::hexfloat << f;
  }
}
#endif

TEST(PortableLogTest, AgreesWithLibm) {
  std::mt19937_64 gen(7);
  for (int i = 0; i < 100000; ++i) {
    const double x = std::ldexp(static_cast<double>(gen() >> 11) * 0x1.0p-53 + 0x1.0p-60,
                                static_cast<int>(gen() % 40) - 30);
    EXPECT_NEAR(PortableLog(x), std::log(x), 1e-14 * std::max(1.0, std::abs(std::log(x)))) << x;
  }
  EXPECT_EQ(PortableLog(1.0), 0.0);
}

TEST(FillElementsTest, PiecesDoNotChangeTheStream) {
  const uint64_t seed = TensorSeed(1, "model.layers.0.mlp.experts.0.up_proj.weight");
  const uint64_t n = kBlockElements + kBlockElements / 2 + 3;  // crosses a block boundary
  std::string whole(n * 4, '\0');
  FillElements(seed, Init::kNormal, DType::kF32, 0, n, whole.data());
  std::string pieces(n * 4, '\0');
  const uint64_t cuts[] = {0, 1000, kBlockElements - 1, kBlockElements, kBlockElements + 77, n};
  for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
    FillElements(seed, Init::kNormal, DType::kF32, cuts[i], cuts[i + 1] - cuts[i],
                 pieces.data() + cuts[i] * 4);
  }
  EXPECT_EQ(whole, pieces);
  // bf16 of the same stream is the rounded fp32.
  std::string bf(n * 2, '\0');
  FillElements(seed, Init::kNormal, DType::kBF16, 0, n, bf.data());
  auto byte = [](const std::string& s, uint64_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(s[i]));
  };
  for (uint64_t i = 0; i < n; i += 9973) {
    const uint32_t f = byte(whole, i * 4) | byte(whole, i * 4 + 1) << 8 |
                       byte(whole, i * 4 + 2) << 16 | byte(whole, i * 4 + 3) << 24;
    const uint16_t b = static_cast<uint16_t>(byte(bf, i * 2) | byte(bf, i * 2 + 1) << 8);
    EXPECT_EQ(b, FloatToBf16(std::bit_cast<float>(f))) << i;
  }
}

TEST(FillElementsTest, SeedsAndNamesGiveDistinctStreams) {
  auto draw = [](uint64_t seed, const char* name, Init init = Init::kNormal) {
    std::string out(2 * 256, '\0');
    FillElements(TensorSeed(seed, name), init, DType::kBF16, 0, 256, out.data());
    return out;
  };
  EXPECT_EQ(draw(1, "a"), draw(1, "a"));
  EXPECT_NE(draw(1, "a"), draw(2, "a"));
  EXPECT_NE(draw(1, "a"), draw(1, "b"));
  EXPECT_NE(TensorSeed(1, "ab"), TensorSeed(1, "ba"));
  // A norm scale is the same stream shifted by one.
  const std::string n = draw(1, "x.norm.weight", Init::kNormScale);
  const float first = Bf16ToFloat(
      static_cast<uint16_t>(static_cast<uint8_t>(n[0]) | static_cast<uint8_t>(n[1]) << 8));
  EXPECT_NEAR(first, 1.0f, 0.1f);
  EXPECT_EQ(InitFor("model.layers.3.post_attention_layernorm.weight"), Init::kNormScale);
  EXPECT_EQ(InitFor("model.layers.3.self_attn.q_norm.weight"), Init::kNormScale);
  EXPECT_EQ(InitFor("model.layers.3.self_attn.q_proj.weight"), Init::kNormal);
}

// Pins the stream definition: every generated model (and any digest another test records)
// changes if this does. Uses only IEEE basic operations, so it holds on every machine.
TEST(FillElementsTest, StreamIsStable) {
  std::string out(2 * 4096, '\0');
  FillElements(TensorSeed(1, "lm_head.weight"), Init::kNormal, DType::kBF16, 0, 4096, out.data());
  EXPECT_EQ(Sha256Of(out).hex(),
            "ee67c57d9a1a86c2debc7d7fc42418924c227dd993dba4b94f64b89c161beab6");
}

}  // namespace
}  // namespace hubnode::testmodel

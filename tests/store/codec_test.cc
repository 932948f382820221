#include "store/codec.h"

#include <cmath>
#include <cstring>
#include <random>

#include "base/bytes.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

std::string Bf16Noise(size_t elements, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::string out(elements * 2, '\0');
  for (size_t i = 0; i < elements; ++i) {
    float f = n(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    uint16_t b = static_cast<uint16_t>(bits >> 16);
    std::memcpy(&out[2 * i], &b, 2);
  }
  return out;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(CodecTest, RoundTripsEveryCodec) {
  std::vector<std::pair<std::string, ElementKind>> inputs = {
      {"", ElementKind::kBytes},
      {"short", ElementKind::kBytes},
      {std::string(100000, 'a'), ElementKind::kBytes},
      {RandomBytes(70001, 1), ElementKind::kBytes},
      {Bf16Noise(50000, 2), ElementKind::k2Byte},
      {Bf16Noise(50000, 3) + "x", ElementKind::k2Byte},  // odd length: a tail byte
      {Bf16Noise(40001, 4) + "yz", ElementKind::k4Byte}, // length not a multiple of 4
  };
  for (auto policy : {CodecPolicy::kAuto, CodecPolicy::kZstdOnly, CodecPolicy::kRawOnly}) {
    for (const auto& [raw, kind] : inputs) {
      EncodedChunk e = EncodeChunk(raw, kind, policy, 1);
      auto back = DecodeChunk(e.record);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(*back, raw);
      auto owned = DecodeOwnedChunk(std::string(e.record));
      ASSERT_TRUE(owned.ok()) << owned.status().ToString();
      EXPECT_EQ(*owned, raw);
      if (policy == CodecPolicy::kRawOnly) {
        EXPECT_EQ(e.codec, Codec::kRaw);
      }
    }
  }
}

TEST(CodecTest, PicksGroupedForBf16AndRawForNoise) {
  std::string bf16 = Bf16Noise(1 << 19, 5);  // 1 MiB
  EncodedChunk grouped = EncodeChunk(bf16, ElementKind::k2Byte, CodecPolicy::kAuto, 1);
  EncodedChunk plain = EncodeChunk(bf16, ElementKind::k2Byte, CodecPolicy::kZstdOnly, 1);
  EXPECT_EQ(grouped.codec, Codec::kZstdGroup2);
  EXPECT_LT(grouped.record.size(), plain.record.size());
  EXPECT_LT(grouped.record.size(), bf16.size() * 80 / 100);
  // Random bytes do not compress: stored raw.
  EXPECT_EQ(EncodeChunk(RandomBytes(1 << 16, 6), ElementKind::kBytes, CodecPolicy::kAuto, 1).codec, Codec::kRaw);
}

TEST(CodecTest, CorruptRecordsAreDataLoss) {
  std::string raw = Bf16Noise(20000, 7);
  EncodedChunk e = EncodeChunk(raw, ElementKind::k2Byte, CodecPolicy::kAuto, 1);
  ASSERT_NE(e.codec, Codec::kRaw);

  auto expect_loss = [](const std::string& rec, const char* what) {
    auto r = DecodeChunk(rec);
    if (r.ok()) return;  // a flip that zstd cannot see would still be caught by RocksDB and hashes
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << what;
  };
  EXPECT_EQ(DecodeChunk("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunk(e.record.substr(0, 4)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunk(e.record.substr(0, e.record.size() / 2)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeChunk(e.record + "trailing").status().code(), StatusCode::kDataLoss);

  std::string bad_codec = e.record;
  bad_codec[0] = 9;
  EXPECT_EQ(DecodeChunk(bad_codec).status().code(), StatusCode::kDataLoss);

  // A recorded raw length that disagrees with the frame, bigger or smaller, and one over the cap.
  for (uint32_t len : {static_cast<uint32_t>(raw.size() + 1), static_cast<uint32_t>(raw.size() - 1),
                       kMaxChunkRawLen + 1, 0xFFFFFFFFu}) {
    std::string rec = e.record;
    std::string l;
    PutFixed32(&l, len);
    rec.replace(1, 4, l);
    EXPECT_EQ(DecodeChunk(rec).status().code(), StatusCode::kDataLoss) << len;
  }
  // A raw record whose payload is shorter than its length.
  EncodedChunk r = EncodeChunk("0123456789", ElementKind::kBytes, CodecPolicy::kRawOnly, 1);
  EXPECT_EQ(DecodeChunk(r.record.substr(0, r.record.size() - 1)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeOwnedChunk(r.record.substr(0, r.record.size() - 1)).status().code(), StatusCode::kDataLoss);

  // Flip bytes throughout the payload: every outcome is DataLoss or a clean decode, never a crash.
  for (size_t i = kChunkRecordHeader; i < e.record.size(); i += 97) {
    std::string rec = e.record;
    rec[i] ^= 0x5a;
    expect_loss(rec, "flip");
  }
}

}  // namespace
}  // namespace hubnode::store

// Chunk maps: sign/verify round trip, tampering, malformed statements, chunk-by-chunk checks, and
// which keys the trust store accepts (publisher of the namespace, trusted node keys).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "verify/verify.h"

namespace hubnode::verify {
namespace {

using nlohmann::json;

// A map of two files cut into chunks of the given contents.
ChunkMap MakeMap(const std::vector<std::vector<std::string>>& files) {
  ChunkMap m;
  m.repo = "org/model";
  m.commit = std::string(40, 'a');
  for (size_t i = 0; i < files.size(); ++i) {
    ChunkMapFile f;
    f.path = "model-" + std::to_string(i) + ".safetensors";
    std::string whole;
    for (const std::string& c : files[i]) {
      f.chunks.push_back({ChunkIdOf(c), static_cast<uint32_t>(c.size())});
      whole += c;
    }
    f.size = whole.size();
    f.sha256 = Sha256Of(whole);
    m.files.push_back(std::move(f));
  }
  return m;
}

PrivateKey Key() { return *PrivateKey::Generate(Curve::kP256); }

TEST(ChunkMapTest, RoundTripAndChunkChecks) {
  const ChunkMap m = MakeMap({{"alpha", "beta", "gamma"}, {"delta"}});
  PrivateKey key = Key();
  auto bundle = SignChunkMap(m, key);
  ASSERT_TRUE(bundle.ok()) << bundle.status().ToString();
  auto back = VerifyChunkMap(*bundle, key.public_key());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->repo, "org/model");
  ASSERT_EQ(back->files.size(), 2u);
  EXPECT_EQ(back->files[0].chunks.size(), 3u);
  EXPECT_EQ(ChunkMap::Offset(back->files[0], 2), 9u);
  EXPECT_TRUE(back->CheckChunk("model-0.safetensors", 1, "beta").ok());
  EXPECT_EQ(back->CheckChunk("model-0.safetensors", 1, "bet4").code(), StatusCode::kDataLoss);
  EXPECT_EQ(back->CheckChunk("model-0.safetensors", 1, "betaa").code(), StatusCode::kDataLoss);
  EXPECT_EQ(back->CheckChunk("model-0.safetensors", 3, "x").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(back->CheckChunk("nope", 0, "x").code(), StatusCode::kNotFound);
}

TEST(ChunkMapTest, TamperingAndOtherKeysFail) {
  const ChunkMap m = MakeMap({{"alpha", "beta"}});
  PrivateKey key = Key(), other = Key();
  const std::string bundle = *SignChunkMap(m, key);
  EXPECT_EQ(VerifyChunkMap(bundle, other.public_key()).status().code(), StatusCode::kPermissionDenied);
  // Re-point a chunk id in the payload, keep the signature.
  json b = json::parse(bundle);
  std::string payload = *Base64Decode(b["dsseEnvelope"]["payload"].get<std::string>());
  const std::string id = ChunkIdOf("beta").hex();
  payload.replace(payload.find(id), id.size(), ChunkIdOf("evil").hex());
  b["dsseEnvelope"]["payload"] = Base64Encode(payload);
  EXPECT_EQ(VerifyChunkMap(b.dump(), key.public_key()).status().code(), StatusCode::kPermissionDenied);
}

TEST(ChunkMapTest, MalformedStatementsAreRefused) {
  const std::string good = ChunkMapStatement(MakeMap({{"alpha", "beta"}}));
  ASSERT_TRUE(ParseChunkMapStatement(good).ok());
  auto bad = [&](const std::function<void(json&)>& edit, const std::string& names) {
    json st = json::parse(good);
    edit(st);
    auto r = ParseChunkMapStatement(st.dump());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(names), std::string::npos) << r.status().message();
  };
  bad([](json& s) { s["predicateType"] = "https://model_signing/signature/v1.0"; }, "predicateType");
  bad([](json& s) { s["predicate"]["files"][0]["size"] = 3; }, "sum");
  bad([](json& s) { s["predicate"]["files"][0]["chunks"][0]["sha256"] = "xyz"; }, "chunk id");
  bad([](json& s) { s["predicate"]["files"][0]["chunks"][0]["size"] = 0; }, "chunk size");
  bad([](json& s) { s["predicate"]["files"].push_back(s["predicate"]["files"][0]); }, "duplicate");
  bad([](json& s) { s["predicate"]["commit"] = "main"; }, "commit");
  bad([](json& s) { s["subject"][0]["digest"]["sha256"] = std::string(64, '0'); }, "subject");
  bad([](json& s) { s["predicate"]["files"][0]["size"] = -9; }, "size");
  bad([](json& s) { s["predicate"].erase("files"); }, "files");
  EXPECT_FALSE(ParseChunkMapStatement("[1,2").ok());
  EXPECT_FALSE(SignChunkMap(ChunkMap{}, Key()).ok());
}

TEST(ChunkMapTest, TrustStoreAcceptsPublisherOrNodeKeys) {
  const ChunkMap m = MakeMap({{"alpha"}});
  PrivateKey publisher = Key(), node = Key(), stranger = Key();
  TrustStore t;
  ASSERT_TRUE(t.AddKey("org", "pub", publisher.public_key().pem(), 0, 0).ok());
  ASSERT_TRUE(t.AddKey("elsewhere", "foreign", stranger.public_key().pem(), 0, 0).ok());
  ASSERT_TRUE(t.AddNodeKey("peer-1", node.public_key().pem(), 0, 100).ok());

  auto by_publisher = VerifyChunkMapWithTrustStore(*SignChunkMap(m, publisher), t, 50);
  ASSERT_TRUE(by_publisher.ok()) << by_publisher.status().ToString();
  EXPECT_FALSE(by_publisher->node_key);
  auto by_node = VerifyChunkMapWithTrustStore(*SignChunkMap(m, node), t, 50);
  ASSERT_TRUE(by_node.ok()) << by_node.status().ToString();
  EXPECT_TRUE(by_node->node_key);
  EXPECT_EQ(by_node->signer.key_name, "peer-1");
  // A publisher key of another namespace, an expired node key, a revoked one: refused.
  EXPECT_EQ(VerifyChunkMapWithTrustStore(*SignChunkMap(m, stranger), t, 50).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(VerifyChunkMapWithTrustStore(*SignChunkMap(m, node), t, 100).status().code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(t.Revoke("peer-1").ok());
  EXPECT_EQ(VerifyChunkMapWithTrustStore(*SignChunkMap(m, node), t, 50).status().code(), StatusCode::kPermissionDenied);
  // Node keys round-trip through the file format, and never sign models.
  auto parsed = TrustStore::Parse(t.Serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->keys.back().node);
  TrustStore fresh;
  ASSERT_TRUE(fresh.AddNodeKey("n", node.public_key().pem(), 0, 0).ok());
  Manifest manifest;
  manifest.serialization.method = "files";
  manifest.resources.push_back({"a", "sha256", std::string(32, 'x')});
  auto model_sig = SignBundle(manifest, node);
  ASSERT_TRUE(model_sig.ok());
  EXPECT_EQ(VerifyWithTrustStore(*model_sig, fresh, "org", 0, nullptr).status().code(), StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace hubnode::verify

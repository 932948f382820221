#include "verify/verify.h"

#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"

namespace hubnode::verify {
namespace {

using hubnode::testing::TempDir;
using hubnode::testing::WriteFile;
using json = nlohmann::json;

void WriteModel(const TempDir& dir) {
  WriteFile(dir / "m/config.json", "{\"model_type\": \"olmoe\"}\n");
  WriteFile(dir / "m/weights.bin", std::string(2500, 'w'));
  WriteFile(dir / "m/sub/notes.txt", "notes\n");
  WriteFile(dir / "m/.git/HEAD", "ref: refs/heads/main\n");  // excluded by default
}

Serialization Files() {
  Serialization s;
  s.ignore_paths = DefaultIgnorePaths();
  return s;
}

TEST(DsseTest, PaeTestVector) {
  EXPECT_EQ(Pae("http://example.com/HelloWorld", "hello world"), "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
}

TEST(DsseTest, Base64BothAlphabets) {
  std::string data = "\xfb\xff\xfe hello";
  std::string std_b64 = Base64Encode(data);
  EXPECT_EQ(*Base64Decode(std_b64), data);
  std::string url = std_b64;
  for (char& c : url) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!url.empty() && url.back() == '=') url.pop_back();
  EXPECT_EQ(*Base64Decode(url), data);
  EXPECT_FALSE(Base64Decode("ab$d").ok());
  EXPECT_FALSE(Base64Decode("abcde").ok());
}

TEST(SignTest, RoundTripOnEveryCurve) {
  TempDir dir;
  WriteModel(dir);
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "m", Files()));
  ASSERT_EQ(m.resources.size(), 3u);  // .git is not part of the model
  EXPECT_EQ(m.resources[0].name, "config.json");
  EXPECT_EQ(m.resources[2].name, "weights.bin");
  for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521}) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(c));
    ASSERT_OK_AND_ASSIGN(std::string bundle, SignBundle(m, key));
    ASSERT_OK_AND_ASSIGN(VerifiedBundle v, VerifyBundle(bundle, key.public_key()));
    EXPECT_EQ(v.key_hint, key.public_key().Hint());
    EXPECT_OK(CompareManifests(v.manifest, m));
    // The private key survives a PEM round trip.
    ASSERT_OK_AND_ASSIGN(PrivateKey again, PrivateKey::FromPem(key.Pem()));
    EXPECT_EQ(again.public_key().Hint(), key.public_key().Hint());
    EXPECT_EQ(again.public_key().curve(), c);
  }
}

TEST(SignTest, TamperingAndWrongKeysFail) {
  TempDir dir;
  WriteModel(dir);
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "m", Files()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(Curve::kP256));
  ASSERT_OK_AND_ASSIGN(std::string bundle, SignBundle(m, key));

  // One bit of one file.
  std::string w = hubnode::testing::ReadWholeFile(dir / "m/weights.bin");
  w[1234] ^= 0x01;
  WriteFile(dir / "m/weights.bin", w);
  ASSERT_OK_AND_ASSIGN(Manifest now, HashDirectory(dir / "m", Files()));
  ASSERT_OK_AND_ASSIGN(VerifiedBundle v, VerifyBundle(bundle, key.public_key()));
  Status s = CompareManifests(v.manifest, now);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("weights.bin"), std::string::npos) << s.message();

  // An extra file (with the tampered one restored), and a missing one.
  w[1234] ^= 0x01;
  WriteFile(dir / "m/weights.bin", w);
  WriteFile(dir / "m/extra.txt", "x");
  ASSERT_OK_AND_ASSIGN(Manifest extra, HashDirectory(dir / "m", Files()));
  EXPECT_NE(CompareManifests(v.manifest, extra).message().find("not covered by the signature: extra.txt"), std::string::npos);
  hubnode::testing::RunShell("rm '" + dir / "m/extra.txt" + "' '" + dir / "m/sub/notes.txt" + "'");
  ASSERT_OK_AND_ASSIGN(Manifest missing, HashDirectory(dir / "m", Files()));
  EXPECT_NE(CompareManifests(v.manifest, missing).message().find("missing from the model: sub/notes.txt"), std::string::npos);

  // Another key of the same curve: the hint does not match. Without verification material the
  // bundle is invalid whatever key is given (the OMS spec lists it as invalid).
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(Curve::kP256));
  EXPECT_EQ(VerifyBundle(bundle, other.public_key()).status().code(), StatusCode::kPermissionDenied);
  json b = json::parse(bundle);
  b["verificationMaterial"].erase("publicKey");
  EXPECT_EQ(VerifyBundle(b.dump(), other.public_key()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyBundle(b.dump(), key.public_key()).status().code(), StatusCode::kInvalidArgument);
}

// Rewrites the bundle's statement (and re-signs it, so only the statement is at fault).
std::string WithStatement(const std::string& bundle, const PrivateKey& key, const std::function<void(json&)>& edit) {
  json b = json::parse(bundle);
  json st = json::parse(*Base64Decode(b["dsseEnvelope"]["payload"].get<std::string>()));
  edit(st);
  std::string payload = st.dump();
  b["dsseEnvelope"]["payload"] = Base64Encode(payload);
  b["dsseEnvelope"]["signatures"][0]["sig"] = Base64Encode(*key.Sign(Pae("application/vnd.in-toto+json", payload)));
  return b.dump();
}

TEST(SignTest, MalformedBundlesAreRejected) {
  TempDir dir;
  WriteModel(dir);
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "m", Files()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(Curve::kP256));
  ASSERT_OK_AND_ASSIGN(std::string good, SignBundle(m, key));
  const PublicKey& pub = key.public_key();
  auto edit = [&](const std::function<void(json&)>& f) {
    json b = json::parse(good);
    f(b);
    return b.dump();
  };
  std::vector<std::pair<const char*, std::string>> bad = {
      {"not json", "{"},
      {"bad base64 payload", edit([](json& b) { b["dsseEnvelope"]["payload"] = "%%%"; })},
      {"bad base64 sig", edit([](json& b) { b["dsseEnvelope"]["signatures"][0]["sig"] = "a"; })},
      {"wrong media type", edit([](json& b) { b["mediaType"] = "application/json"; })},
      {"wrong payload type", edit([](json& b) { b["dsseEnvelope"]["payloadType"] = "text/plain"; })},
      {"missing envelope", edit([](json& b) { b.erase("dsseEnvelope"); })},
      {"no signatures", edit([](json& b) { b["dsseEnvelope"]["signatures"] = json::array(); })},
      {"wrong statement type", WithStatement(good, key, [](json& s) { s["_type"] = "x"; })},
      {"two subjects", WithStatement(good, key, [](json& s) { s["subject"].push_back(s["subject"][0]); })},
      {"missing resources", WithStatement(good, key, [](json& s) { s["predicate"].erase("resources"); })},
      {"duplicate names", WithStatement(good, key, [](json& s) { s["predicate"]["resources"].push_back(s["predicate"]["resources"][0]); })},
      {"extra resource (subject no longer matches)",
       WithStatement(good, key, [](json& s) {
         s["predicate"]["resources"].push_back({{"name", "z"}, {"algorithm", "sha256"}, {"digest", std::string(64, 'a')}});
       })},
      {"short digest", WithStatement(good, key, [](json& s) { s["predicate"]["resources"][0]["digest"] = "abcd"; })},
      {"unknown method", WithStatement(good, key, [](json& s) { s["predicate"]["serialization"]["method"] = "tar"; })},
      {"unknown predicate", WithStatement(good, key, [](json& s) { s["predicateType"] = "https://model_signing/Digests/v0.1"; })},
      // Regression (issue 13, item 19): accepted when the verifier was given the key.
      {"no verificationMaterial", edit([](json& b) { b.erase("verificationMaterial"); })},
      {"no publicKey", edit([](json& b) { b["verificationMaterial"].erase("publicKey"); })},
      {"publicKey names nothing", edit([](json& b) { b["verificationMaterial"]["publicKey"] = json::object(); })},
  };
  for (const auto& [name, text] : bad) {
    auto r = VerifyBundle(text, pub);
    EXPECT_FALSE(r.ok()) << name;
  }
  // A payload altered after signing fails the signature.
  json b = json::parse(good);
  std::string payload = *Base64Decode(b["dsseEnvelope"]["payload"].get<std::string>());
  payload[payload.size() / 2] ^= 1;
  b["dsseEnvelope"]["payload"] = Base64Encode(payload);
  EXPECT_EQ(VerifyBundle(b.dump(), pub).status().code(), StatusCode::kPermissionDenied);
}

// Bundles of the reference tool before v1.1.0 name the key by its PEM (publicKey.rawBytes).
TEST(SignTest, RawBytesNameTheKey) {
  TempDir dir;
  WriteModel(dir);
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "m", Files()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(Curve::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(Curve::kP256));
  ASSERT_OK_AND_ASSIGN(std::string good, SignBundle(m, key));
  json b = json::parse(good);
  b["verificationMaterial"]["publicKey"] = {{"rawBytes", Base64Encode(key.public_key().pem())}};
  EXPECT_TRUE(VerifyBundle(b.dump(), key.public_key()).ok());
  EXPECT_EQ(VerifyBundle(b.dump(), other.public_key()).status().code(), StatusCode::kPermissionDenied);
}

// A single-file model is a model: one resource named ".", as the reference tool's vectors have it.
TEST(SignTest, ASingleFileModel) {
  TempDir dir;
  WriteFile(dir / "model.bin", std::string(3000, 'q'));
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "model.bin", Files()));
  ASSERT_EQ(m.resources.size(), 1u);
  EXPECT_EQ(m.resources[0].name, ".");
  EXPECT_EQ(m.model_name, "model.bin");
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(Curve::kP384));
  ASSERT_OK_AND_ASSIGN(std::string bundle, SignBundle(m, key));
  ASSERT_OK_AND_ASSIGN(VerifiedBundle v, VerifyBundle(bundle, key.public_key()));
  EXPECT_TRUE(CompareManifests(v.manifest, m).ok());
  WriteFile(dir / "model.bin", std::string(3000, 'r'));
  ASSERT_OK_AND_ASSIGN(Manifest changed, HashDirectory(dir / "model.bin", Files()));
  EXPECT_FALSE(CompareManifests(v.manifest, changed).ok());
  Serialization shards = Files();
  shards.method = "shards";
  shards.shard_size = 1000;
  ASSERT_OK_AND_ASSIGN(Manifest sharded, HashDirectory(dir / "model.bin", shards));
  ASSERT_EQ(sharded.resources.size(), 3u);
  EXPECT_EQ(sharded.resources[0].name, ".:0:1000");
}

TEST(SignTest, ShardsAndTheReferenceToolsSpellings) {
  TempDir dir;
  WriteModel(dir);
  Serialization s = Files();
  s.method = "shards";
  s.shard_size = 1000;
  ASSERT_OK_AND_ASSIGN(Manifest m, HashDirectory(dir / "m", s));
  std::vector<std::string> names;
  for (const auto& r : m.resources) names.push_back(r.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "weights.bin:2000:2500"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "weights.bin:0:1000"), names.end());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(Curve::kP384));
  ASSERT_OK_AND_ASSIGN(std::string bundle, SignBundle(m, key));
  // The reference tool writes shard_size as a float and algorithm as sha256-sharded-N.
  std::string ref = WithStatement(bundle, key, [](json& st) {
    st["predicate"]["serialization"]["shard_size"] = 1000.0;
    for (auto& r : st["predicate"]["resources"]) r["algorithm"] = "sha256-sharded-1000";
  });
  ASSERT_OK_AND_ASSIGN(VerifiedBundle v, VerifyBundle(ref, key.public_key()));
  EXPECT_EQ(v.manifest.serialization.shard_size, 1000u);
  EXPECT_OK(CompareManifests(v.manifest, m));
}

TEST(KeyTest, RejectsWhatIsNotAnEcdsaKey) {
  EXPECT_FALSE(PublicKey::FromPem("not a key").ok());
  EXPECT_FALSE(PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
  EXPECT_FALSE(ParseCurve("secp256k1").ok());
}

TEST(ManifestTest, EmptyModelAndSymlinksAreRefused) {
  TempDir dir;
  WriteFile(dir / "empty/.git/x", "x");
  EXPECT_EQ(HashDirectory(dir / "empty", Files()).status().code(), StatusCode::kInvalidArgument);
  WriteFile(dir / "l/a.txt", "a");
  hubnode::testing::RunShell("ln -s a.txt '" + dir / "l/b.txt" + "'");
  EXPECT_EQ(HashDirectory(dir / "l", Files()).status().code(), StatusCode::kInvalidArgument);
  // Known digests (a stored model) give the same manifest as hashing.
  WriteModel(dir);
  ASSERT_OK_AND_ASSIGN(Manifest hashed, HashDirectory(dir / "m", Files()));
  std::vector<std::pair<std::string, Sha256Digest>> known;
  for (const auto& [path, content] : hubnode::testing::ReadTree(dir / "m")) known.emplace_back(path, Sha256Of(content));
  Manifest from_digests = ManifestFromDigests("m", known, Files());
  EXPECT_OK(CompareManifests(hashed, from_digests));
  EXPECT_EQ(RootDigest(hashed), RootDigest(from_digests));
}

}  // namespace
}  // namespace hubnode::verify

#include "store/safetensors.h"

#include "base/bytes.h"
#include "store/store.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::TempDir;
using hubnode::testing::WriteFile;

std::string File(const std::string& header_json, size_t data_bytes) {
  std::string out;
  PutFixed64(&out, header_json.size());
  out += header_json;
  out += std::string(data_bytes, '\x01');
  return out;
}

TEST(SafetensorsTest, ParsesAValidHeader) {
  std::string json =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},)"
      R"("a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"e":{"dtype":"I8","shape":[0],"data_offsets":[12,12]}})";
  std::string f = File(json, 12);
  auto h = ParseSafetensorsHeader(json, f.size());
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->tensors.size(), 3u);
  EXPECT_EQ(h->tensors[0].name, "a");
  EXPECT_EQ(h->tensors[0].begin, 8 + json.size());
  EXPECT_EQ(h->tensors[1].name, "b");
  EXPECT_EQ(h->metadata.at("format"), "pt");
}

struct BadCase {
  const char* name;
  std::string json;
  size_t data;
  const char* rule;  // a substring of the error
};

std::vector<BadCase> BadCases() {
  return {
      {"not json", "{not json", 0, "not valid JSON"},
      {"not object", "[1,2]", 0, "not a JSON object"},
      {"unknown dtype", R"({"t":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1, "unknown dtype"},
      {"span mismatch", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "shape x dtype"},
      {"shape overflow", R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4,
       "overflows"},
      {"negative offset", R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1, "non-negative"},
      {"end before begin", R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}})", 2, "end before begin"},
      {"beyond file", R"({"t":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4, "beyond the end"},
      {"overlap", R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})",
       6, "overlaps"},
      {"hole", R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}})",
       6, "hole"},
      {"trailing data", R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 5, "after the last tensor"},
      {"non-string metadata", R"({"__metadata__":{"format":1}})", 0, "not a string"},
      {"duplicate key", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
       1, "duplicate"},
      {"float offset", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0.5,1]}})", 1, "non-negative integer"},
      {"extra field", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", 1, "unknown field"},
      {"fractional bytes", R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}})", 1, "whole number"},
  };
}

TEST(SafetensorsTest, RejectsMalformedHeadersNamingTheRule) {
  for (const auto& c : BadCases()) {
    std::string f = File(c.json, c.data);
    auto h = ParseSafetensorsHeader(c.json, f.size());
    ASSERT_FALSE(h.ok()) << c.name;
    EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(h.status().message().find(c.rule), std::string::npos) << c.name << ": " << h.status().message();
  }
}

TEST(SafetensorsTest, RejectsBadLengthPrefixes) {
  TempDir dir;
  auto check = [&](const std::string& bytes, const char* rule) {
    WriteFile(dir / "x.safetensors", bytes);
    auto f = ReadFile::Open(dir / "x.safetensors");
    ASSERT_TRUE(f.ok());
    auto h = ReadSafetensorsHeader(*f);
    ASSERT_FALSE(h.ok()) << rule;
    EXPECT_NE(h.status().message().find(rule), std::string::npos) << h.status().message();
  };
  check("abc", "shorter than the 8-byte");
  std::string huge;
  PutFixed64(&huge, 1ull << 40);
  check(huge + "{}", "over 100,000,000");
  std::string beyond;
  PutFixed64(&beyond, 100);
  check(beyond + "{}", "beyond the end");
  std::string truncated = File(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16);
  check(truncated.substr(0, truncated.size() - 3), "beyond the end");
}

// Import of each malformed file stores nothing at all.
TEST(SafetensorsTest, MalformedImportStoresNothing) {
  TempDir dir;
  Options o;
  o.data_dir = dir / "data";
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto repo = *RepoId::Parse("t/bad");
  int i = 0;
  for (const auto& c : BadCases()) {
    std::string model = dir / ("m" + std::to_string(i++));
    WriteFile(model + "/config.json", "{}");
    WriteFile(model + "/README.md", "# a model\n");
    WriteFile(model + "/model.safetensors", File(c.json, c.data));
    auto r = (*store)->ImportDirectory(model, repo, ImportOptions());
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos) << r.status().message();
  }
  auto stats = (*store)->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->repos, 0u);
  EXPECT_EQ(stats->chunks, 0u);
  EXPECT_EQ(stats->files, 0u);
  EXPECT_EQ(stats->commits, 0u);
}

}  // namespace
}  // namespace hubnode::store

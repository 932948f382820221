#include "tests/testmodel/safetensors_check.h"

#include <stdlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace hubnode::testmodel::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string templ = (fs::temp_directory_path() / "testmodel_test.XXXXXX").string();
  char* made = ::mkdtemp(templ.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> FileNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

::testing::AssertionResult CheckSafetensors(const std::string& bytes, CheckedShard* out) {
  using ::testing::AssertionFailure;
  if (bytes.size() < 8) return AssertionFailure() << "shorter than 8 bytes";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  if (n > bytes.size() - 8) return AssertionFailure() << "header length " << n << " too large";
  if ((8 + n) % 8 != 0) return AssertionFailure() << "data does not start 8-aligned";
  std::string header = bytes.substr(8, n);
  const size_t last = header.find_last_not_of(' ');
  if (last == std::string::npos || header.size() - last - 1 >= 8) {
    return AssertionFailure() << "header padding is not 0..7 spaces";
  }
  nlohmann::json j = nlohmann::json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return AssertionFailure() << "header is not JSON";
  if (j["__metadata__"] != nlohmann::json({{"format", "pt"}})) {
    return AssertionFailure() << "bad __metadata__: " << j["__metadata__"].dump();
  }
  const std::map<std::string, int> sizes = {{"BF16", 2}, {"F16", 2}, {"F32", 4}, {"F8_E4M3", 1}};
  std::vector<std::pair<uint64_t, std::string>> by_offset;
  CheckedShard shard;
  shard.data_start = 8 + n;
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__") continue;
    if (info.size() != 3) return AssertionFailure() << name << ": expected 3 fields";
    CheckedTensor t;
    t.dtype = info.at("dtype").get<std::string>();
    if (!sizes.count(t.dtype)) return AssertionFailure() << name << ": dtype " << t.dtype;
    uint64_t numel = 1;
    for (const auto& d : info.at("shape")) {
      t.shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
    }
    const uint64_t b = info.at("data_offsets").at(0).get<uint64_t>();
    const uint64_t e = info.at("data_offsets").at(1).get<uint64_t>();
    if (e - b != numel * sizes.at(t.dtype)) {
      return AssertionFailure() << name << ": " << (e - b) << " bytes for " << numel << " elems";
    }
    t.begin = shard.data_start + b;
    t.end = shard.data_start + e;
    by_offset.emplace_back(b, name);
    shard.tensors[name] = t;
  }
  std::sort(by_offset.begin(), by_offset.end());
  uint64_t expect = 0;
  std::string previous;
  for (const auto& [offset, name] : by_offset) {
    if (offset != expect) return AssertionFailure() << name << " starts at " << offset;
    if (!previous.empty() && !(previous < name)) {
      return AssertionFailure() << "data not in name order at " << name;
    }
    previous = name;
    expect = shard.tensors[name].end - shard.data_start;
  }
  if (shard.data_start + expect != bytes.size()) {
    return AssertionFailure() << "data ends at " << shard.data_start + expect << " of "
                              << bytes.size();
  }
  if (out) *out = std::move(shard);
  return ::testing::AssertionSuccess();
}

namespace {
float HalfToFloat(uint16_t h) {
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant + 1024), exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}
}  // namespace

std::vector<float> DecodeTensor(const std::string& bytes, const CheckedTensor& t) {
  std::vector<float> out;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (t.dtype == "F32") {
    for (uint64_t o = t.begin; o < t.end; o += 4) {
      const uint32_t u =
          p[o] | p[o + 1] << 8 | p[o + 2] << 16 | static_cast<uint32_t>(p[o + 3]) << 24;
      out.push_back(std::bit_cast<float>(u));
    }
  } else {
    for (uint64_t o = t.begin; o < t.end; o += 2) {
      const uint16_t u = static_cast<uint16_t>(p[o] | p[o + 1] << 8);
      out.push_back(t.dtype == "BF16" ? std::bit_cast<float>(static_cast<uint32_t>(u) << 16)
                                      : HalfToFloat(u));
    }
  }
  return out;
}

}  // namespace hubnode::testmodel::testing

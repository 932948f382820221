#include "testmodel/safetensors.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/bytes.h"
#include "testmodel/weights.h"

namespace hubnode::testmodel {
namespace {

using nlohmann::json;

// Our headers are a few hundred KB at most; the format's own limit is 100 MB.
constexpr uint64_t kMaxHeader = 100'000'000;

Result<DType> DTypeFromSafetensors(std::string_view s) {
  if (s == "BF16") return DType::kBF16;
  if (s == "F16") return DType::kF16;
  if (s == "F32") return DType::kF32;
  if (s == "F8_E4M3") return DType::kF8E4M3;
  return InvalidArgumentError("unsupported dtype " + std::string(s));
}

bool IsPlainFileName(std::string_view s) {
  return !s.empty() && s.find('/') == std::string_view::npos && s != "." && s != "..";
}

}  // namespace

uint64_t TensorEntry::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string LayoutShard(std::vector<TensorEntry>& tensors) {
  std::sort(tensors.begin(), tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.name < b.name; });
  // Insertion order gives the real writer's layout: metadata first, then entries by name, each
  // with dtype, shape, data_offsets.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (TensorEntry& t : tensors) {
    t.begin = offset;
    t.end = offset + t.numel() * DTypeSize(t.dtype);
    offset = t.end;
    nlohmann::ordered_json entry;
    entry["dtype"] = std::string(SafetensorsDType(t.dtype));
    entry["shape"] = t.shape;
    entry["data_offsets"] = {t.begin, t.end};
    header[t.name] = std::move(entry);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out;
  PutFixed64(&out, text.size());
  out += text;
  return out;
}

Result<ShardHeader> ReadShardHeader(const ReadFile& file) {
  const std::string& path = file.path();
  auto bad = [&path](const std::string& why) {
    return InvalidArgumentError("bad safetensors file " + path + ": " + why);
  };
  if (file.size() < 8) return bad("shorter than 8 bytes");
  char len_bytes[8];
  RETURN_IF_ERROR(file.ReadAt(0, 8, len_bytes));
  const uint64_t len = DecodeFixed64(len_bytes);
  if (len > kMaxHeader || len > file.size() - 8) return bad("header length out of range");
  std::string text(len, '\0');
  RETURN_IF_ERROR(file.ReadAt(8, len, text.data()));
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return bad("header is not a JSON object");

  ShardHeader out;
  out.data_start = 8 + len;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() ||
        !info.contains("shape") || !info["shape"].is_array() || !info.contains("data_offsets") ||
        !info["data_offsets"].is_array() || info["data_offsets"].size() != 2) {
      return bad("malformed entry for " + name);
    }
    TensorEntry t;
    t.name = name;
    auto dtype = DTypeFromSafetensors(info["dtype"].get<std::string>());
    if (!dtype.ok()) return bad(dtype.status().message() + " in " + name);
    t.dtype = *dtype;
    for (const json& d : info["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40)) {
        return bad("bad shape for " + name);
      }
      t.shape.push_back(d.get<int64_t>());
    }
    for (const json& o : info["data_offsets"]) {
      if (!o.is_number_unsigned()) return bad("bad data_offsets for " + name);
    }
    t.begin = info["data_offsets"][0].get<uint64_t>();
    t.end = info["data_offsets"][1].get<uint64_t>();
    // Each dimension is below 2^40, but their product can still overflow: check by division.
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      if (d != 0 && numel > (uint64_t{1} << 62) / static_cast<uint64_t>(d)) {
        return bad("shape too large for " + name);
      }
      numel *= static_cast<uint64_t>(d);
    }
    if (t.end < t.begin || t.end - t.begin != numel * DTypeSize(t.dtype)) {
      return bad("data_offsets of " + name + " do not match its shape and dtype");
    }
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin; });
  uint64_t expect = 0;
  for (const TensorEntry& t : out.tensors) {
    if (t.begin != expect) return bad("tensors do not tile the data section at " + t.name);
    expect = t.end;
  }
  if (out.data_start + expect != file.size()) return bad("data section does not end the file");
  return out;
}

std::string ShardFileName(int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", index + 1, count);
  return name;
}

std::string IndexJson(uint64_t total_size, const std::map<std::string, std::string>& weight_map) {
  json j;
  j["metadata"] = {{"total_size", total_size}};
  j["weight_map"] = weight_map;
  return j.dump(2) + "\n";
}

Result<std::map<std::string, std::string>> ParseIndexJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
      !j["weight_map"].is_object()) {
    return InvalidArgumentError("index is not a JSON object with a weight_map");
  }
  std::map<std::string, std::string> out;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string() || !IsPlainFileName(file.get<std::string>())) {
      return InvalidArgumentError("index maps " + name + " to a bad file name");
    }
    out[name] = file.get<std::string>();
  }
  if (out.empty()) return InvalidArgumentError("index has an empty weight_map");
  return out;
}

}  // namespace hubnode::testmodel

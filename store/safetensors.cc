#include "store/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "base/bytes.h"

namespace hubnode::store {
namespace {

using json = nlohmann::json;

Status Bad(std::string_view tensor, std::string_view rule) {
  std::string m = "invalid safetensors header";
  if (!tensor.empty()) m += ": tensor '" + std::string(tensor) + "'";
  m += ": ";
  m += rule;
  return InvalidArgumentError(m);
}

Result<uint64_t> AsU64(const json& v, std::string_view tensor, std::string_view what) {
  if (!v.is_number_unsigned()) {
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
    return Bad(tensor, std::string(what) + " must be a non-negative integer");
  }
  return v.get<uint64_t>();
}

}  // namespace

int DtypeBits(std::string_view d) {
  static const std::pair<std::string_view, int> kTable[] = {
      {"BOOL", 8},     {"U8", 8},          {"I8", 8},          {"F8_E5M2", 8},  {"F8_E4M3", 8},
      {"F8_E8M0", 8},  {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},     {"U16", 16},
      {"F16", 16},     {"BF16", 16},       {"I32", 32},        {"U32", 32},     {"F32", 32},
      {"I64", 64},     {"U64", 64},        {"F64", 64},        {"C64", 64},     {"F4", 4},
      {"F6_E2M3", 6},  {"F6_E3M2", 6},
  };
  for (const auto& [name, bits] : kTable) {
    if (name == d) return bits;
  }
  return 0;
}

Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view text, uint64_t file_size) {
  if (text.size() > kMaxSafetensorsHeader) return Bad("", "header longer than 100,000,000 bytes");
  // Duplicate top-level keys are rejected: a parser that keeps the last one would disagree with
  // one that keeps the first about which bytes a tensor is.
  std::set<std::string> seen;
  bool duplicate = false;
  std::string duplicate_name;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second && !duplicate) duplicate = true, duplicate_name = k;
    }
    return true;
  };
  json doc = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad("", "header is not valid JSON");
  if (!doc.is_object()) return Bad("", "header is not a JSON object");
  if (duplicate) return Bad(duplicate_name, "duplicate key");

  SafetensorsHeader h;
  h.header_end = 8 + text.size();
  if (h.header_end > file_size) return Bad("", "header extends beyond the end of the file");
  uint64_t data_size = file_size - h.header_end;

  for (const auto& [name, v] : doc.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) return Bad(name, "__metadata__ must be an object of strings");
      for (const auto& [k, mv] : v.items()) {
        if (!mv.is_string()) return Bad(name, "__metadata__ value of '" + k + "' is not a string");
        h.metadata[k] = mv.get<std::string>();
      }
      continue;
    }
    if (name.empty()) return Bad(name, "empty tensor name");
    if (!v.is_object()) return Bad(name, "entry is not an object");
    for (const auto& [k, unused] : v.items()) {
      if (k != "dtype" && k != "shape" && k != "data_offsets") return Bad(name, "unknown field '" + k + "'");
    }
    auto dt = v.find("dtype"), sh = v.find("shape"), off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) return Bad(name, "missing or non-string dtype");
    if (sh == v.end() || !sh->is_array()) return Bad(name, "missing or non-array shape");
    if (off == v.end() || !off->is_array() || off->size() != 2) {
      return Bad(name, "data_offsets must be an array of two integers");
    }
    SafetensorsTensor t;
    t.name = name;
    t.dtype = dt->get<std::string>();
    int bits = DtypeBits(t.dtype);
    if (bits == 0) return Bad(name, "unknown dtype '" + t.dtype + "'");
    if (sh->size() > 64) return Bad(name, "shape has more than 64 dimensions");
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      ASSIGN_OR_RETURN(uint64_t dim, AsU64(d, name, "shape dimension"));
      if (dim != 0 && numel > UINT64_MAX / dim) return Bad(name, "shape overflows 64 bits");
      numel *= dim;
      t.shape.push_back(dim);
    }
    if (numel > UINT64_MAX / static_cast<uint64_t>(bits)) return Bad(name, "shape overflows 64 bits");
    uint64_t total_bits = numel * static_cast<uint64_t>(bits);
    if (total_bits % 8 != 0) return Bad(name, "tensor size is not a whole number of bytes");
    ASSIGN_OR_RETURN(uint64_t b, AsU64((*off)[0], name, "data_offsets[0]"));
    ASSIGN_OR_RETURN(uint64_t e, AsU64((*off)[1], name, "data_offsets[1]"));
    if (e < b) return Bad(name, "data_offsets end before begin");
    if (e > data_size) return Bad(name, "data_offsets beyond the end of the file");
    if (e - b != total_bits / 8) return Bad(name, "byte span does not equal shape x dtype size");
    t.begin = h.header_end + b;
    t.end = h.header_end + e;
    h.tensors.push_back(std::move(t));
  }

  std::sort(h.tensors.begin(), h.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
  });
  uint64_t expect = h.header_end;
  for (const auto& t : h.tensors) {
    if (t.begin < expect) return Bad(t.name, "overlaps the previous tensor");
    if (t.begin > expect) return Bad(t.name, "leaves a hole before it in the data section");
    expect = t.end;
  }
  if (expect != file_size) return Bad("", "data section has bytes after the last tensor");
  return h;
}

Result<SafetensorsHeader> ReadSafetensorsHeader(const ReadFile& file) {
  if (file.size() < 8) return Bad("", "file shorter than the 8-byte header length");
  char len_bytes[8];
  RETURN_IF_ERROR(file.ReadAt(0, 8, len_bytes));
  uint64_t n = DecodeFixed64(len_bytes);
  if (n > kMaxSafetensorsHeader) return Bad("", "header length over 100,000,000 bytes");
  if (n > file.size() - 8) return Bad("", "header length beyond the end of the file");
  std::string text(n, '\0');
  RETURN_IF_ERROR(file.ReadAt(8, n, text.data()));
  return ParseSafetensorsHeader(text, file.size());
}

}  // namespace hubnode::store

#include "store/safetensors.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>

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

// Builds the header from the parser's events, in one linear pass and with no DOM: a 100 MB
// header of a million tensors costs its tensors, not a JSON tree ten times its size. (nlohmann's
// DOM parser with a callback, used before, removed discarded values by scanning the parent object
// at each object's end: quadratic in the tensor count, 40,000 tensors took 55 s.)
class HeaderBuilder final : public json::json_sax_t {
 public:
  std::string error_tensor, error;  // why the pass stopped, when it did
  std::vector<SafetensorsTensor> tensors;
  std::map<std::string, std::string> metadata;

  bool null() override { return Value(Kind::kOther, 0, nullptr); }
  bool boolean(bool) override { return Value(Kind::kOther, 0, nullptr); }
  bool number_integer(json::number_integer_t v) override {
    return v >= 0 ? Value(Kind::kUnsigned, static_cast<uint64_t>(v), nullptr) : Value(Kind::kOther, 0, nullptr);
  }
  bool number_unsigned(json::number_unsigned_t v) override { return Value(Kind::kUnsigned, v, nullptr); }
  bool number_float(json::number_float_t, const json::string_t&) override { return Value(Kind::kOther, 0, nullptr); }
  bool string(json::string_t& v) override { return Value(Kind::kString, 0, &v); }
  bool binary(json::binary_t&) override { return Value(Kind::kOther, 0, nullptr); }
  bool key(json::string_t& k) override {
    if (depth_ == 1) {
      if (!seen_.insert(k).second) return Fail(k, "duplicate key");
      if (k != "__metadata__" && ++count_ > kMaxSafetensorsTensors) {
        return Fail("", "more than " + std::to_string(kMaxSafetensorsTensors) + " tensors");
      }
      entry_ = k;
      return true;
    }
    field_ = k;
    if (entry_ == "__metadata__") return true;
    if (k != "dtype" && k != "shape" && k != "data_offsets") return Fail(entry_, "unknown field '" + k + "'");
    if (!fields_.insert(k).second) return Fail(entry_, "duplicate field '" + k + "'");
    return true;
  }
  bool start_object(std::size_t) override {
    ++depth_;
    if (depth_ == 1) return true;
    if (depth_ == 2) {
      if (entry_.empty()) return Fail(entry_, "empty tensor name");
      current_ = SafetensorsTensor{};
      current_.name = entry_;
      fields_.clear();
      offsets_.clear();
      return true;
    }
    if (entry_ == "__metadata__") return Fail(entry_, "__metadata__ value of '" + field_ + "' is not a string");
    return Fail(entry_, Wrong());
  }
  bool end_object() override {
    --depth_;
    if (depth_ != 1 || entry_ == "__metadata__") return true;
    if (!fields_.count("dtype")) return Fail(entry_, "missing or non-string dtype");
    if (!fields_.count("shape")) return Fail(entry_, "missing or non-array shape");
    if (!fields_.count("data_offsets") || offsets_.size() != 2) {
      return Fail(entry_, "data_offsets must be an array of two integers");
    }
    current_.begin = offsets_[0];
    current_.end = offsets_[1];
    tensors.push_back(std::move(current_));
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (depth_ == 1) return Fail("", "header is not a JSON object");
    if (depth_ == 2) {
      return Fail(entry_, entry_ == "__metadata__" ? "__metadata__ must be an object of strings" : "entry is not an object");
    }
    if (depth_ == 3 && entry_ != "__metadata__" && (field_ == "shape" || field_ == "data_offsets")) return true;
    if (entry_ == "__metadata__") return Fail(entry_, "__metadata__ value of '" + field_ + "' is not a string");
    return Fail(entry_, Wrong());
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    if (error.empty()) error = "header is not valid JSON";
    return false;
  }

 private:
  enum class Kind { kUnsigned, kString, kOther };

  bool Fail(const std::string& tensor, std::string why) {
    if (error.empty()) {
      error_tensor = tensor;
      error = std::move(why);
    }
    return false;
  }

  // The error for a value of the wrong type in the current field.
  std::string Wrong() const {
    if (field_ == "dtype") return "missing or non-string dtype";
    if (field_ == "shape") return depth_ >= 3 ? "shape dimension must be a non-negative integer" : "missing or non-array shape";
    return depth_ >= 3 ? "data_offsets must hold non-negative integers" : "data_offsets must be an array of two integers";
  }

  bool Value(Kind kind, uint64_t u, json::string_t* str) {
    if (depth_ == 0) return Fail("", "header is not a JSON object");
    if (depth_ == 1) {
      return Fail(entry_, entry_ == "__metadata__" ? "__metadata__ must be an object of strings" : "entry is not an object");
    }
    if (depth_ == 2) {
      if (entry_ == "__metadata__") {
        if (kind != Kind::kString) return Fail(entry_, "__metadata__ value of '" + field_ + "' is not a string");
        metadata[field_] = std::move(*str);
        return true;
      }
      if (field_ == "dtype" && kind == Kind::kString) {
        current_.dtype = std::move(*str);
        return true;
      }
      return Fail(entry_, Wrong());
    }
    // depth 3: an element of shape or data_offsets.
    if (kind != Kind::kUnsigned) return Fail(entry_, Wrong());
    if (field_ == "shape") {
      if (current_.shape.size() >= 64) return Fail(entry_, "shape has more than 64 dimensions");
      current_.shape.push_back(u);
      return true;
    }
    if (offsets_.size() >= 2) return Fail(entry_, "data_offsets must be an array of two integers");
    offsets_.push_back(u);
    return true;
  }

  int depth_ = 0;
  size_t count_ = 0;
  std::string entry_, field_;
  std::unordered_set<std::string> seen_;
  std::set<std::string> fields_;
  std::vector<uint64_t> offsets_;
  SafetensorsTensor current_;
};

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
  HeaderBuilder built;
  const bool parsed = json::sax_parse(text.begin(), text.end(), &built, json::input_format_t::json, /*strict=*/true);
  if (!built.error.empty()) return Bad(built.error_tensor, built.error);
  if (!parsed) return Bad("", "header is not valid JSON");

  SafetensorsHeader h;
  h.header_end = 8 + text.size();
  if (h.header_end > file_size) return Bad("", "header extends beyond the end of the file");
  const uint64_t data_size = file_size - h.header_end;
  h.metadata = std::move(built.metadata);
  h.tensors = std::move(built.tensors);
  for (SafetensorsTensor& t : h.tensors) {
    const std::string& name = t.name;
    int bits = DtypeBits(t.dtype);
    if (bits == 0) return Bad(name, "unknown dtype '" + t.dtype + "'");
    uint64_t numel = 1;
    for (uint64_t dim : t.shape) {
      if (dim != 0 && numel > UINT64_MAX / dim) return Bad(name, "shape overflows 64 bits");
      numel *= dim;
    }
    if (numel > UINT64_MAX / static_cast<uint64_t>(bits)) return Bad(name, "shape overflows 64 bits");
    uint64_t total_bits = numel * static_cast<uint64_t>(bits);
    if (total_bits % 8 != 0) return Bad(name, "tensor size is not a whole number of bytes");
    const uint64_t b = t.begin, e = t.end;
    if (e < b) return Bad(name, "data_offsets end before begin");
    if (e > data_size) return Bad(name, "data_offsets beyond the end of the file");
    if (e - b != total_bits / 8) return Bad(name, "byte span does not equal shape x dtype size");
    t.begin = h.header_end + b;
    t.end = h.header_end + e;
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

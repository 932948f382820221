// Checked accessors over nlohmann::json for the tokenizer.json parsers. tokenizer.json is untrusted
// input: every access checks the type first (nlohmann's get<T>() throws on a mismatch and
// operator[] on a missing key of a const object is undefined), and every error names the field by
// its path, e.g. `pre_tokenizer.pretokenizers[1].pattern: expected a string`.
//
// Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {

using Json = nlohmann::json;

// Nested Sequence normalizers/pre-tokenizers/decoders/processors deeper than this are rejected.
inline constexpr int kMaxJsonNesting = 16;
// No single token, added token or pattern content longer than this is accepted.
inline constexpr size_t kMaxTokenBytes = 1024;

inline std::string JoinPath(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

inline Status FieldError(std::string_view path, std::string_view what) {
  return InvalidArgumentError("tokenizer.json: " + std::string(path) + ": " + std::string(what));
}

// The member `key` of `obj`, or nullptr when `obj` is not an object, lacks it, or it is null.
inline const Json* Member(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

inline Result<std::string> StringMember(const Json& obj, std::string_view key,
                                        std::string_view path) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return FieldError(JoinPath(path, key), "missing");
  if (!v->is_string()) return FieldError(JoinPath(path, key), "expected a string");
  return v->get_ref<const std::string&>();
}

inline Result<std::string> StringMemberOr(const Json& obj, std::string_view key,
                                          std::string_view path, std::string fallback) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) return FieldError(JoinPath(path, key), "expected a string");
  return v->get_ref<const std::string&>();
}

inline Result<bool> BoolMemberOr(const Json& obj, std::string_view key, std::string_view path,
                                 bool fallback) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return FieldError(JoinPath(path, key), "expected a boolean");
  return v->get<bool>();
}

// An integer in [min, max].
inline Result<int64_t> IntValue(const Json& v, std::string_view path, int64_t min, int64_t max) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(max) || static_cast<int64_t>(u) < min) {
      return FieldError(path, "integer out of range");
    }
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < min || i > max) return FieldError(path, "integer out of range");
    return i;
  }
  return FieldError(path, "expected an integer");
}

inline Result<int64_t> IntMemberOr(const Json& obj, std::string_view key, std::string_view path,
                                   int64_t fallback, int64_t min, int64_t max) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  return IntValue(*v, JoinPath(path, key), min, max);
}

// The `type` tag of a pipeline component.
inline Result<std::string> TypeOf(const Json& obj, std::string_view path) {
  if (!obj.is_object()) return FieldError(path, "expected an object");
  return StringMember(obj, "type", path);
}

// A single character field (Metaspace replacement, Strip content): exactly one code point.
inline Result<char32_t> CharMember(const Json& obj, std::string_view key, std::string_view path,
                                   char32_t fallback) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_string()) return FieldError(JoinPath(path, key), "expected a string");
  const std::string& s = v->get_ref<const std::string&>();
  if (s.empty() || !IsValidUtf8(s) || DecodeUtf8At(s, 0).len != static_cast<int>(s.size())) {
    return FieldError(JoinPath(path, key), "expected exactly one character");
  }
  return DecodeUtf8At(s, 0).cp;
}

}  // namespace hubnode::runtime

// Normalizers (tokenizers normalizers/): Sequence, Prepend, Replace, Lowercase, Strip,
// StripAccents and the four Unicode normal forms. Also the {"String"}/{"Regex"} pattern parser that
// Split and Replace share.
#include <utility>

#include "runtime/tokenizer/tokenizer_pipeline.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  std::string Apply(std::string_view text) const override {
    std::string s(text);
    for (const auto& part : parts_) s = part->Apply(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  std::string Apply(std::string_view text) const override {
    // tokenizers prepends only to non-empty strings.
    if (text.empty()) return "";
    return prepend_ + std::string(text);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string Apply(std::string_view text) const override {
    std::string out;
    size_t last = 0;
    for (const Span& m : pattern_.FindAll(text)) {
      out.append(text.substr(last, m.start - last));
      out += content_;
      last = m.end;
    }
    out.append(text.substr(last));
    return out;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  std::string Apply(std::string_view text) const override { return ToLowerUnicode(text); }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string Apply(std::string_view text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      while (begin < end) {
        const Utf8Char c = DecodeUtf8At(text, begin);
        if (!IsWhitespace(c.cp)) break;
        begin += c.len;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
        if (!IsWhitespace(DecodeUtf8At(text, start).cp)) break;
        end = start;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_;
  bool right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  std::string Apply(std::string_view text) const override {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      const Utf8Char c = DecodeUtf8At(text, i);
      if (!IsNonSpacingMark(c.cp)) out.append(text.substr(i, c.len));
      i += c.len;
    }
    return out;
  }
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  std::string Apply(std::string_view text) const override {
    // ICU only fails when its data is missing; leaving the text as it is then is the least harm.
    Result<std::string> r = NormalizeUnicode(form_, text);
    return r.ok() ? std::move(r).value() : std::string(text);
  }

 private:
  NormalForm form_;
};

}  // namespace

Result<Pattern> ParsePattern(const Json& obj, std::string_view key, std::string_view path) {
  const std::string field = JoinPath(path, key);
  const Json* p = Member(obj, key);
  if (p == nullptr) return FieldError(field, "missing");
  if (!p->is_object() || p->size() != 1) {
    return FieldError(field, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  if (const Json* s = Member(*p, "String")) {
    if (!s->is_string()) return FieldError(JoinPath(field, "String"), "expected a string");
    const std::string& literal = s->get_ref<const std::string&>();
    if (literal.size() > kMaxTokenBytes) return FieldError(field, "pattern too long");
    return Pattern::Literal(literal);
  }
  if (const Json* r = Member(*p, "Regex")) {
    if (!r->is_string()) return FieldError(JoinPath(field, "Regex"), "expected a string");
    Result<Regex> regex = Regex::Compile(r->get_ref<const std::string&>());
    if (!regex.ok()) return FieldError(JoinPath(field, "Regex"), regex.status().message());
    return Pattern::FromRegex(std::move(regex).value());
  }
  return FieldError(field, "expected {\"String\": ...} or {\"Regex\": ...}");
}

Result<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json, std::string_view path,
                                                    int depth) {
  if (depth > kMaxJsonNesting) return FieldError(path, "nested too deeply");
  ASSIGN_OR_RETURN(const std::string type, TypeOf(json, path));
  if (type == "Sequence") {
    const Json* list = Member(json, "normalizers");
    if (list == nullptr || !list->is_array()) {
      return FieldError(JoinPath(path, "normalizers"), "expected an array");
    }
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string sub = JoinPath(path, "normalizers[" + std::to_string(i) + "]");
      ASSIGN_OR_RETURN(auto part, ParseNormalizer((*list)[i], sub, depth + 1));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(std::make_unique<SequenceNormalizer>(std::move(parts)));
  }
  if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prepend, StringMember(json, "prepend", path));
    if (prepend.size() > kMaxTokenBytes) return FieldError(JoinPath(path, "prepend"), "too long");
    return std::unique_ptr<Normalizer>(std::make_unique<PrependNormalizer>(std::move(prepend)));
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(json, "pattern", path));
    ASSIGN_OR_RETURN(std::string content, StringMember(json, "content", path));
    if (content.size() > kMaxTokenBytes) return FieldError(JoinPath(path, "content"), "too long");
    return std::unique_ptr<Normalizer>(
        std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content)));
  }
  if (type == "Lowercase") {
    return std::unique_ptr<Normalizer>(std::make_unique<LowercaseNormalizer>());
  }
  if (type == "Strip") {
    ASSIGN_OR_RETURN(const bool left, BoolMemberOr(json, "strip_left", path, true));
    ASSIGN_OR_RETURN(const bool right, BoolMemberOr(json, "strip_right", path, true));
    return std::unique_ptr<Normalizer>(std::make_unique<StripNormalizer>(left, right));
  }
  if (type == "StripAccents") {
    return std::unique_ptr<Normalizer>(std::make_unique<StripAccentsNormalizer>());
  }
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    const NormalForm form = type == "NFC"    ? NormalForm::kNfc
                            : type == "NFD"  ? NormalForm::kNfd
                            : type == "NFKC" ? NormalForm::kNfkc
                                             : NormalForm::kNfkd;
    return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(form));
  }
  return UnimplementedError("tokenizer.json: " + std::string(path) + ": normalizer type \"" + type +
                            "\" is not supported");
}

}  // namespace hubnode::runtime

// Decoders (tokenizers decoders/): ByteLevel, Metaspace, Sequence, Replace, ByteFallback, Fuse,
// Strip. Each rewrites the list of token strings like the reference's `decode_chain`.
#include <utility>

#include "runtime/tokenizer/tokenizer_pipeline.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class ByteLevelDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    DecodeChainRaw(tokens);
    (*tokens)[0] = ToValidUtf8((*tokens)[0]);
  }
  void DecodeChainRaw(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      // A token with any character outside the byte alphabet (an added token such as "<|x|>" is
      // inside it, "▁" is not) contributes its own UTF-8 bytes unchanged.
      std::string mapped;
      bool all_mapped = true;
      for (size_t i = 0; i < t.size();) {
        const Utf8Char c = DecodeUtf8At(t, i);
        const int b = ByteLevelByte(c.cp);
        if (b < 0) {
          all_mapped = false;
          break;
        }
        mapped.push_back(static_cast<char>(b));
        i += c.len;
      }
      bytes += all_mapped ? mapped : t;
    }
    tokens->assign(1, std::move(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool prepend) : rep_(replacement), prepend_(prepend) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      const std::string& t = (*tokens)[i];
      std::string out;
      for (size_t k = 0; k < t.size();) {
        const Utf8Char c = DecodeUtf8At(t, k);
        if (c.cp != rep_) {
          out.append(t, k, c.len);
        } else if (!(i == 0 && prepend_)) {
          out.push_back(' ');  // in the first token every replacement char is dropped
        }
        k += c.len;
      }
      (*tokens)[i] = std::move(out);
    }
  }

 private:
  char32_t rep_;
  bool prepend_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& part : parts_) part->DecodeChain(tokens);
  }
  void DecodeChainRaw(std::vector<std::string>* tokens) const override {
    for (const auto& part : parts_) part->DecodeChainRaw(tokens);
  }
  bool HasByteFallback() const override {
    for (const auto& part : parts_) {
      if (part->HasByteFallback()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::string out;
      size_t last = 0;
      for (const Span& m : pattern_.FindAll(t)) {
        out.append(t, last, m.start - last);
        out += content_;
        last = m.end;
      }
      out.append(t, last, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override { Decode(tokens, false); }
  void DecodeChainRaw(std::vector<std::string>* tokens) const override { Decode(tokens, true); }
  bool HasByteFallback() const override { return true; }

 private:
  static void Decode(std::vector<std::string>* tokens, bool raw) {
    std::vector<std::string> out;
    std::string run;
    size_t run_tokens = 0;
    auto flush = [&] {
      if (run_tokens == 0) return;
      if (raw || IsValidUtf8(run)) {
        out.push_back(run);
      } else {
        // The reference emits one U+FFFD per byte token of an invalid run.
        for (size_t i = 0; i < run_tokens; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      run.clear();
      run_tokens = 0;
    };
    for (std::string& t : *tokens) {
      const int b = ByteFallbackValue(t);
      if (b >= 0) {
        run.push_back(static_cast<char>(b));
        ++run_tokens;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    *tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void DecodeChain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::vector<Span> chars;  // byte span of each character
      for (size_t i = 0; i < t.size();) {
        const int len = DecodeUtf8At(t, i).len;
        chars.push_back({i, i + len});
        i += len;
      }
      size_t start_cut = 0;
      for (size_t i = 0; i < start_ && i < chars.size(); ++i) {
        if (DecodeUtf8At(t, chars[i].start).cp != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (DecodeUtf8At(t, chars[index].start).cp != content_) break;
        stop_cut = index;
      }
      // The reference panics when the cuts cross (a token made only of `content`); we return "".
      if (stop_cut <= start_cut) {
        t.clear();
        continue;
      }
      const size_t begin = start_cut < chars.size() ? chars[start_cut].start : t.size();
      const size_t end = stop_cut < chars.size() ? chars[stop_cut].start : t.size();
      t = t.substr(begin, end - begin);
    }
  }

 private:
  char32_t content_;
  size_t start_;
  size_t stop_;
};

}  // namespace

int ByteFallbackValue(std::string_view token) {
  if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return -1;
  const char a = token[3];
  const char b = token[4];
  if (a == '+') return HexDigit(b);
  const int hi = HexDigit(a);
  const int lo = HexDigit(b);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

Result<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path, int depth) {
  if (depth > kMaxJsonNesting) return FieldError(path, "nested too deeply");
  ASSIGN_OR_RETURN(const std::string type, TypeOf(json, path));
  if (type == "ByteLevel") {
    return std::unique_ptr<Decoder>(std::make_unique<ByteLevelDecoder>());
  }
  if (type == "Metaspace") {
    ASSIGN_OR_RETURN(const char32_t rep, CharMember(json, "replacement", path, 0x2581));
    bool prepend = true;
    if (const Json* ps = Member(json, "prepend_scheme")) {
      if (!ps->is_string())
        return FieldError(JoinPath(path, "prepend_scheme"), "expected a string");
      const std::string& s = ps->get_ref<const std::string&>();
      if (s != "always" && s != "first" && s != "never") {
        return FieldError(JoinPath(path, "prepend_scheme"), "expected always, first or never");
      }
      prepend = s != "never";
    } else {
      ASSIGN_OR_RETURN(prepend, BoolMemberOr(json, "add_prefix_space", path, true));
    }
    return std::unique_ptr<Decoder>(std::make_unique<MetaspaceDecoder>(rep, prepend));
  }
  if (type == "Sequence") {
    const Json* list = Member(json, "decoders");
    if (list == nullptr || !list->is_array()) {
      return FieldError(JoinPath(path, "decoders"), "expected an array");
    }
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string sub = JoinPath(path, "decoders[" + std::to_string(i) + "]");
      ASSIGN_OR_RETURN(auto part, ParseDecoder((*list)[i], sub, depth + 1));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<Decoder>(std::make_unique<SequenceDecoder>(std::move(parts)));
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(json, "pattern", path));
    ASSIGN_OR_RETURN(std::string content, StringMember(json, "content", path));
    if (content.size() > kMaxTokenBytes) return FieldError(JoinPath(path, "content"), "too long");
    return std::unique_ptr<Decoder>(
        std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content)));
  }
  if (type == "ByteFallback") {
    return std::unique_ptr<Decoder>(std::make_unique<ByteFallbackDecoder>());
  }
  if (type == "Fuse") return std::unique_ptr<Decoder>(std::make_unique<FuseDecoder>());
  if (type == "Strip") {
    ASSIGN_OR_RETURN(const char32_t content, CharMember(json, "content", path, ' '));
    ASSIGN_OR_RETURN(const int64_t start, IntMemberOr(json, "start", path, 0, 0, 1 << 20));
    ASSIGN_OR_RETURN(const int64_t stop, IntMemberOr(json, "stop", path, 0, 0, 1 << 20));
    return std::unique_ptr<Decoder>(std::make_unique<StripDecoder>(
        content, static_cast<size_t>(start), static_cast<size_t>(stop)));
  }
  return UnimplementedError("tokenizer.json: " + std::string(path) + ": decoder type \"" + type +
                            "\" is not supported");
}

}  // namespace hubnode::runtime

// The Jinja lexer: data text, tags and expression tokens, with Jinja2's whitespace control.
//
// This follows jinja2/lexer.py (3.1): `{%-`/`{{-`/`{#-` strip all whitespace before the tag;
// `-%}`/`-}}`/`-#}` strip all whitespace after it; trim_blocks drops one newline after `%}` and
// `#}` (not `}}`, and not after `+%}`); lstrip_blocks strips spaces and tabs between the start of
// a line and a `{%` or `{#` tag (not `{{`, and not `{%+`), where "start of a line" also holds
// right after a token that ended in a newline.
#include <algorithm>
#include <cctype>
#include <charconv>

#include "runtime/jinja/jinja_ast.h"

namespace hubnode::runtime::jinja {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

class Lexer {
 public:
  Lexer(std::string source, const Options& options) : src_(std::move(source)), opt_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Result<std::vector<Token>> Run() {
    bool line_starting = true;
    while (pos_ < src_.size()) {
      size_t tag = FindTag(pos_);
      if (tag == std::string::npos) {
        Emit(TokenType::kData, src_.substr(pos_), pos_);
        break;
      }
      char kind = src_[tag + 1];
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')
                      ? src_[tag + 2]
                      : 0;
      size_t raw_end = kind == '%' ? RawBegin(tag) : 0;
      std::string text = src_.substr(pos_, tag - pos_);
      StripBefore(text, sign, kind != '{', line_starting);
      if (!text.empty()) Emit(TokenType::kData, std::move(text), pos_);
      size_t body = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        ASSIGN_OR_RETURN(pos_, CommentEnd(tag, body));
      } else if (raw_end != 0) {
        bool raw_line_starting = src_[raw_end - 1] == '\n';
        RETURN_IF_ERROR(RawBody(tag, raw_end, raw_line_starting));
      } else {
        Emit(kind == '{' ? TokenType::kVarBegin : TokenType::kBlockBegin, "", tag);
        pos_ = body;
        RETURN_IF_ERROR(TagTokens(kind == '{', tag));
      }
      line_starting = pos_ > 0 && src_[pos_ - 1] == '\n';
    }
    tokens_.push_back(Token{TokenType::kEof, "", Line(src_.size()), Column(src_.size())});
    return std::move(tokens_);
  }

 private:
  int Line(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    return static_cast<int>(it - line_starts_.begin());
  }
  int Column(size_t offset) const {
    return static_cast<int>(offset - line_starts_[Line(offset) - 1]) + 1;
  }
  Status Error(size_t offset, const std::string& why) const {
    return InvalidArgumentError(std::to_string(Line(offset)) + ":" +
                                std::to_string(Column(offset)) + ": " + why);
  }
  void Emit(TokenType type, std::string text, size_t offset) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    t.line = Line(offset);
    t.column = Column(offset);
    tokens_.push_back(std::move(t));
  }

  size_t FindTag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return std::string::npos;
  }

  // Jinja's OptionalLStrip: the whitespace control of the tag that ends `text`.
  void StripBefore(std::string& text, char sign, bool lstrip_kind, bool line_starting) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0 && IsSpace(text[end - 1])) --end;
      text.resize(end);
    } else if (sign != '+' && opt_.lstrip_blocks && lstrip_kind) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if (l_pos > 0 || line_starting) {
        bool blank = std::all_of(text.begin() + l_pos, text.end(),
                                 [](char c) { return c == ' ' || c == '\t'; });
        if (blank) text.resize(l_pos);
      }
    }
  }

  size_t SkipSpace(size_t p) const {
    while (p < src_.size() && IsSpace(src_[p])) ++p;
    return p;
  }

  // After a `%}`/`#}` at `p` (pointing past it): the trim_blocks newline.
  size_t TrimNewline(size_t p) const {
    return opt_.trim_blocks && p < src_.size() && src_[p] == '\n' ? p + 1 : p;
  }

  // `{%[-+]?\s*raw\s*(-%}\s*|%})` at `tag`: the offset after it, or 0.
  size_t RawBegin(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p = SkipSpace(p);
    if (src_.compare(p, 3, "raw") != 0) return 0;
    p = SkipSpace(p + 3);
    if (src_.compare(p, 3, "-%}") == 0) return SkipSpace(p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return 0;
  }

  Result<size_t> CommentEnd(size_t tag, size_t body) const {
    size_t end = src_.find("#}", body);
    if (end == std::string::npos) return Error(tag, "missing end of comment tag");
    if (end > body && src_[end - 1] == '-') return SkipSpace(end + 2);
    if (end > body && src_[end - 1] == '+') return end + 2;
    return TrimNewline(end + 2);
  }

  Status RawBody(size_t tag, size_t start, bool line_starting) {
    for (size_t i = src_.find("{%", start); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t p = i + 2;
      char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign) ++p;
      p = SkipSpace(p);
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p = SkipSpace(p + 6);
      size_t after;
      if (src_.compare(p, 3, "+%}") == 0) {
        after = p + 3;
      } else if (src_.compare(p, 3, "-%}") == 0) {
        after = SkipSpace(p + 3);
      } else if (src_.compare(p, 2, "%}") == 0) {
        after = TrimNewline(p + 2);
      } else {
        continue;
      }
      std::string text = src_.substr(start, i - start);
      StripBefore(text, sign, true, line_starting);
      if (!text.empty()) Emit(TokenType::kData, std::move(text), start);
      pos_ = after;
      return OkStatus();
    }
    return Error(tag, "missing end of raw directive");
  }

  // The tokens of one {{ }} or {% %} tag, up to and including its end.
  Status TagTokens(bool variable, size_t tag) {
    std::string brackets;  // Open brackets; a tag cannot end inside them.
    while (true) {
      pos_ = SkipSpace(pos_);
      if (pos_ >= src_.size()) return Error(tag, "unexpected end of template, tag never closed");
      if (brackets.empty()) {
        std::string_view rest(src_.data() + pos_, src_.size() - pos_);
        std::string_view close = variable ? "}}" : "%}";
        if (rest.size() >= 3 && rest[0] == '-' && rest.substr(1, 2) == close) {
          Emit(variable ? TokenType::kVarEnd : TokenType::kBlockEnd, "", pos_);
          pos_ = SkipSpace(pos_ + 3);
          return OkStatus();
        }
        if (!variable && rest.substr(0, 3) == "+%}") {
          Emit(TokenType::kBlockEnd, "", pos_);
          pos_ += 3;
          return OkStatus();
        }
        if (rest.substr(0, 2) == close) {
          Emit(variable ? TokenType::kVarEnd : TokenType::kBlockEnd, "", pos_);
          pos_ = variable ? pos_ + 2 : TrimNewline(pos_ + 2);
          return OkStatus();
        }
      }
      RETURN_IF_ERROR(OneToken(brackets));
    }
  }

  Status OneToken(std::string& brackets) {
    size_t start = pos_;
    char c = src_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c))) return Number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        ++pos_;
      }
      Emit(TokenType::kName, src_.substr(start, pos_ - start), start);
      return OkStatus();
    }
    if (c == '\'' || c == '"') return String();
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (src_.compare(pos_, 2, op) == 0) {
        Emit(TokenType::kOp, std::string(op), start);
        pos_ += 2;
        return OkStatus();
      }
    }
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      return Error(start, std::string("unexpected char '") + c + "'");
    }
    if (c == '(' || c == '[' || c == '{') {
      if (brackets.size() >= kMaxParseDepth) {
        return ResourceExhaustedError(Error(start, "brackets nest too deeply").message());
      }
      brackets += c == '(' ? ')' : c == '[' ? ']' : '}';
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) return Error(start, std::string("unexpected '") + c + "'");
      if (brackets.back() != c) {
        return Error(start,
                     std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
      }
      brackets.pop_back();
    }
    Emit(TokenType::kOp, std::string(1, c), start);
    ++pos_;
    return OkStatus();
  }

  // Integers (decimal with `_`, 0x/0o/0b) and floats (digits, fraction and/or exponent).
  Status Number() {
    size_t start = pos_;
    auto digits = [&](auto is_digit) {
      size_t from = pos_;
      while (pos_ < src_.size() && (is_digit(src_[pos_]) || (src_[pos_] == '_' && pos_ > from))) {
        ++pos_;
      }
    };
    auto dec = [](char ch) { return ch >= '0' && ch <= '9'; };
    char base_char = pos_ + 1 < src_.size() ? std::tolower(src_[pos_ + 1]) : 0;
    int base = 10;
    if (src_[pos_] == '0' && (base_char == 'x' || base_char == 'o' || base_char == 'b')) {
      base = base_char == 'x' ? 16 : base_char == 'o' ? 8 : 2;
      pos_ += 2;
      digits([&](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; });
    } else {
      digits(dec);
    }
    bool after_dot =
        !tokens_.empty() && tokens_.back().type == TokenType::kOp && tokens_.back().text == ".";
    bool is_float = false;
    if (base == 10 && !after_dot) {
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && dec(src_[pos_ + 1])) {
        ++pos_;
        digits(dec);
        is_float = true;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t p = pos_ + 1;
        if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
        if (p < src_.size() && dec(src_[p])) {
          pos_ = p;
          digits(dec);
          is_float = true;
        }
      }
    }
    std::string text;
    for (size_t i = start + (base == 10 ? 0 : 2); i < pos_; ++i) {
      if (src_[i] != '_') text += src_[i];
    }
    Token t;
    t.line = Line(start);
    t.column = Column(start);
    t.text = src_.substr(start, pos_ - start);
    if (is_float) {
      t.type = TokenType::kFloat;
      auto r = std::from_chars(text.data(), text.data() + text.size(), t.float_value);
      if (r.ec != std::errc()) return Error(start, "invalid float literal");
    } else {
      if (base == 10 && text.size() > 1 && text[0] == '0' &&
          text.find_first_not_of('0') != std::string::npos) {
        return Error(start, "leading zeros in decimal integer literals are not permitted");
      }
      t.type = TokenType::kInt;
      auto r = std::from_chars(text.data(), text.data() + text.size(), t.int_value, base);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size()) {
        return Error(start, "invalid or too large integer literal");
      }
    }
    tokens_.push_back(std::move(t));
    return OkStatus();
  }

  // A quoted string with Python's escapes (Jinja decodes them with unicode-escape).
  Status String() {
    size_t start = pos_;
    char quote = src_[pos_++];
    std::string out;
    auto hex = [&](int n) -> Result<uint32_t> {
      uint32_t v = 0;
      for (int k = 0; k < n; ++k, ++pos_) {
        if (pos_ >= src_.size() || !std::isxdigit(static_cast<unsigned char>(src_[pos_]))) {
          return Error(pos_, "truncated \\x, \\u or \\U escape");
        }
        char ch = std::tolower(src_[pos_]);
        v = v * 16 + (ch <= '9' ? ch - '0' : ch - 'a' + 10);
      }
      return v;
    };
    while (true) {
      if (pos_ >= src_.size()) return Error(start, "unterminated string");
      char c = src_[pos_++];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= src_.size()) return Error(start, "unterminated string");
      char e = src_[pos_++];
      uint32_t cp;
      switch (e) {
        case '\n':
          continue;
        case '\\':
          out += '\\';
          continue;
        case '\'':
          out += '\'';
          continue;
        case '"':
          out += '"';
          continue;
        case 'n':
          out += '\n';
          continue;
        case 't':
          out += '\t';
          continue;
        case 'r':
          out += '\r';
          continue;
        case 'a':
          out += '\a';
          continue;
        case 'b':
          out += '\b';
          continue;
        case 'f':
          out += '\f';
          continue;
        case 'v':
          out += '\v';
          continue;
        case 'x': {
          ASSIGN_OR_RETURN(cp, hex(2));
          break;
        }
        case 'u': {
          ASSIGN_OR_RETURN(cp, hex(4));
          break;
        }
        case 'U': {
          ASSIGN_OR_RETURN(cp, hex(8));
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            cp = e - '0';
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7';
                 ++k) {
              cp = cp * 8 + (src_[pos_++] - '0');
            }
            break;
          }
          out += '\\';
          out += e;
          continue;
      }
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return Error(start, "escape is not a valid code point");
      }
      out += EncodeUtf8(cp);
    }
    Emit(TokenType::kString, std::move(out), start);
    return OkStatus();
  }

  std::string src_;
  const Options& opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) return false;
    uint32_t cp = n == 0 ? c : c & (0x3F >> n);
    for (int k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

Result<std::vector<Token>> Lex(std::string_view source, const Options& options) {
  if (source.size() > kMaxSourceBytes) {
    return ResourceExhaustedError("template is larger than " + std::to_string(kMaxSourceBytes) +
                                  " bytes");
  }
  if (!ValidUtf8(source)) return InvalidArgumentError("template is not valid UTF-8");
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      normalized += source[i];
    }
  }
  if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
  return Lexer(std::move(normalized), options).Run();
}

}  // namespace hubnode::runtime::jinja

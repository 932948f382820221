// SPDX license expressions: tokenizer and precedence-climbing parser.
#include <cctype>

#include "verify/license.h"

namespace hubnode::verify {
namespace {

struct Token {
  enum Kind { kId, kAnd, kOr, kWith, kOpen, kClose, kEnd } kind;
  std::string text;
  size_t pos;  // 1-based
  bool plus = false;
};

Status ErrorAt(size_t pos, std::string_view what) {
  return InvalidArgumentError("invalid SPDX expression at position " + std::to_string(pos) + ": " + std::string(what));
}

bool IdChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == ':'; }

Result<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    if (c == '(' || c == ')') {
      out.push_back(Token{c == '(' ? Token::kOpen : Token::kClose, std::string(1, c), i + 1});
      ++i;
      continue;
    }
    if (!IdChar(c)) return ErrorAt(i + 1, std::string("unexpected character '") + c + "'");
    size_t start = i;
    while (i < s.size() && IdChar(s[i])) ++i;
    std::string word(s.substr(start, i - start));
    Token t{Token::kId, word, start + 1};
    if (word == "AND" || word == "and") t.kind = Token::kAnd;
    else if (word == "OR" || word == "or") t.kind = Token::kOr;
    else if (word == "WITH" || word == "with") t.kind = Token::kWith;
    else {
      std::string upper = word;
      for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (upper == "AND" || upper == "OR" || upper == "WITH") {
        return ErrorAt(start + 1, "operator '" + word + "' must be all upper or all lower case");
      }
      if (i < s.size() && s[i] == '+') {
        t.plus = true;
        ++i;
      }
    }
    out.push_back(std::move(t));
  }
  out.push_back(Token{Token::kEnd, "", s.size() + 1});
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> t) : t_(std::move(t)) {}

  Result<std::unique_ptr<LicenseExpr>> Parse() {
    ASSIGN_OR_RETURN(auto e, Or());
    if (t_[i_].kind != Token::kEnd) return ErrorAt(t_[i_].pos, "unexpected '" + t_[i_].text + "'");
    return e;
  }

 private:
  static std::unique_ptr<LicenseExpr> Binary(LicenseExpr::Kind k, std::unique_ptr<LicenseExpr> a,
                                             std::unique_ptr<LicenseExpr> b) {
    auto e = std::make_unique<LicenseExpr>();
    e->kind = k;
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }
  static bool IsSpecial(const LicenseExpr& e) {
    return e.kind == LicenseExpr::Kind::kLicense && (e.id == "NONE" || e.id == "NOASSERTION");
  }

  Result<std::unique_ptr<LicenseExpr>> Or() {
    ASSIGN_OR_RETURN(auto left, And());
    while (t_[i_].kind == Token::kOr) {
      size_t pos = t_[i_++].pos;
      ASSIGN_OR_RETURN(auto right, And());
      if (IsSpecial(*left) || IsSpecial(*right)) return ErrorAt(pos, "NONE and NOASSERTION cannot be used with OR");
      left = Binary(LicenseExpr::Kind::kOr, std::move(left), std::move(right));
    }
    return left;
  }

  Result<std::unique_ptr<LicenseExpr>> And() {
    ASSIGN_OR_RETURN(auto left, With());
    while (t_[i_].kind == Token::kAnd) {
      ++i_;
      ASSIGN_OR_RETURN(auto right, With());
      left = Binary(LicenseExpr::Kind::kAnd, std::move(left), std::move(right));
    }
    return left;
  }

  Result<std::unique_ptr<LicenseExpr>> With() {
    ASSIGN_OR_RETURN(auto left, Primary());
    if (t_[i_].kind == Token::kWith) {
      size_t pos = t_[i_++].pos;
      if (left->kind != LicenseExpr::Kind::kLicense || IsSpecial(*left)) {
        return ErrorAt(pos, "WITH must follow a single license id");
      }
      const Token& ex = t_[i_];
      if (ex.kind != Token::kId || ex.plus) return ErrorAt(ex.pos, "WITH needs an exception id");
      ++i_;
      auto e = std::make_unique<LicenseExpr>();
      e->kind = LicenseExpr::Kind::kWith;
      e->exception = ex.text;
      e->children.push_back(std::move(left));
      return e;
    }
    return left;
  }

  Result<std::unique_ptr<LicenseExpr>> Primary() {
    const Token& t = t_[i_];
    if (t.kind == Token::kOpen) {
      if (++depth_ > 64) return ErrorAt(t.pos, "nested too deeply");
      ++i_;
      ASSIGN_OR_RETURN(auto e, Or());
      if (t_[i_].kind != Token::kClose) return ErrorAt(t_[i_].pos, "missing ')'");
      ++i_;
      --depth_;
      return e;
    }
    if (t.kind != Token::kId) {
      return ErrorAt(t.pos, t.kind == Token::kEnd ? "expected a license id at the end" : "expected a license id, not '" + t.text + "'");
    }
    ++i_;
    auto e = std::make_unique<LicenseExpr>();
    e->id = t.text;
    e->or_later = t.plus;
    std::string upper = t.text;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (upper == "NONE" || upper == "NOASSERTION") {
      if (t.plus) return ErrorAt(t.pos, t.text + " cannot take '+'");
      e->id = upper;
    }
    size_t colon = t.text.find(':');
    if (colon != std::string::npos &&
        (t.text.rfind("DocumentRef-", 0) != 0 || t.text.find("LicenseRef-", colon) != colon + 1)) {
      return ErrorAt(t.pos, "':' is only allowed in DocumentRef-…:LicenseRef-…");
    }
    return e;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

std::string LicenseExpr::ToString() const {
  auto operand = [](const LicenseExpr& e, Kind parent) {
    std::string s = e.ToString();
    bool wrap = (e.kind == Kind::kOr && parent == Kind::kAnd);
    return wrap ? "(" + s + ")" : s;
  };
  switch (kind) {
    case Kind::kLicense: return id + (or_later ? "+" : "");
    case Kind::kWith: return children[0]->ToString() + " WITH " + exception;
    case Kind::kAnd: return operand(*children[0], kind) + " AND " + operand(*children[1], kind);
    case Kind::kOr: return operand(*children[0], kind) + " OR " + operand(*children[1], kind);
  }
  return "";
}

Result<std::unique_ptr<LicenseExpr>> ParseSpdx(std::string_view text) {
  if (text.size() > 4096) return InvalidArgumentError("SPDX expression longer than 4096 characters");
  if (text.find('\n') != std::string_view::npos) return ErrorAt(text.find('\n') + 1, "must be a single line");
  ASSIGN_OR_RETURN(auto tokens, Tokenize(text));
  if (tokens.size() == 1) return InvalidArgumentError("empty SPDX expression");
  return Parser(std::move(tokens)).Parse();
}

}  // namespace hubnode::verify

// Regular expressions for the tokenizer (Split pre-tokenizer, Replace normalizer and decoder,
// ByteLevel's GPT-2 pattern), on PCRE2 with UTF and UCP so that \p{L}, \p{N} and \s are
// Unicode-aware like the Oniguruma engine the reference uses.
//
// Thread safety: a compiled Regex is immutable and may be matched from many threads at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::runtime {

// A half-open byte range [start, end) of a match.
struct Span {
  size_t start;
  size_t end;
};

class Regex {
 public:
  // Compiles `pattern` (JIT where available). InvalidArgument with PCRE2's message on a bad pattern
  // or one longer than 64 KiB.
  static Result<Regex> Compile(std::string_view pattern);

  // Non-overlapping matches from left to right, with Oniguruma's `find_iter` rule for empty
  // matches (an empty match right after the previous match is skipped). REQUIRES: `text` is valid
  // UTF-8. A match that hits PCRE2's resource limits ends the scan there (the rest is unmatched).
  std::vector<Span> FindAll(std::string_view text) const;

 private:
  struct Code;
  explicit Regex(std::shared_ptr<const Code> code) : code_(std::move(code)) {}
  // Shared so that a Regex is cheap to copy into the several pipeline parts that use one pattern.
  std::shared_ptr<const Code> code_;
};

// A Split/Replace pattern from tokenizer.json: {"String": literal} or {"Regex": pattern}.
class Pattern {
 public:
  static Pattern Literal(std::string literal);
  static Pattern FromRegex(Regex regex);

  // Same contract as Regex::FindAll. An empty literal never matches.
  std::vector<Span> FindAll(std::string_view text) const;

 private:
  std::string literal_;
  std::vector<Regex> regex_;  // zero or one element
};

}  // namespace hubnode::runtime

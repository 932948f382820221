// The stages of a Hugging Face tokenizer pipeline between the added-token split and the model:
// normalizers, pre-tokenizers and decoders, each parsed from its tokenizer.json object. They follow
// huggingface/tokenizers 0.22 (normalizers/, pre_tokenizers/, decoders/) rule for rule, because ids
// must match the reference exactly; offsets are not tracked since nothing here needs them.
//
// Thread safety: parsed stages are immutable; Apply/Decode may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/tokenizer/tokenizer_json.h"
#include "runtime/tokenizer/tokenizer_regex.h"

namespace hubnode::runtime {

// A piece of the input on its way to the model. `id` >= 0 marks an added token that was split out
// and is final; such pieces pass every later stage untouched. `at_start` is true when the piece
// begins at offset 0 of the original text (Metaspace's prepend_scheme "first" needs it).
struct Piece {
  std::string text;
  int32_t id = -1;
  bool at_start = false;
};

// tokenizers' SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A Split/Replace "pattern" member: {"String": literal} or {"Regex": pattern}.
Result<Pattern> ParsePattern(const Json& obj, std::string_view key, std::string_view path);

Result<SplitBehavior> ParseSplitBehavior(const Json& obj, std::string_view path,
                                         SplitBehavior fallback);

// Splits `piece` at `matches` (sorted, non-overlapping byte spans) with `behavior`, like
// NormalizedString::split; `invert` swaps matches and gaps. Appends the non-empty parts to `out`.
void SplitPiece(const Piece& piece, const std::vector<Span>& matches, SplitBehavior behavior,
                bool invert, std::vector<Piece>* out);

// Byte spans of every character of `text` for which `pred` holds (tokenizers' char patterns).
template <typename Pred>
std::vector<Span> CharMatches(std::string_view text, Pred pred) {
  std::vector<Span> out;
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = DecodeUtf8At(text, i);
    if (pred(c.cp)) out.push_back({i, i + c.len});
    i += c.len;
  }
  return out;
}

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // REQUIRES: `text` is valid UTF-8. The result is valid UTF-8.
  virtual std::string Apply(std::string_view text) const = 0;
};

// `json` is the "normalizer" object (not null). InvalidArgument naming the field on bad input,
// Unimplemented naming the type for normalizers we do not support (Precompiled, BertNormalizer...).
Result<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json, std::string_view path,
                                                    int depth = 0);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and possibly rewrites) every piece whose id is -1; added-token pieces pass through.
  virtual void Apply(std::vector<Piece>* pieces) const = 0;
};

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json, std::string_view path,
                                                        int depth = 0);

class Decoder {
 public:
  virtual ~Decoder() = default;
  // tokenizers' `decode_chain`: rewrites the token strings in place (a decoder may fuse them).
  virtual void DecodeChain(std::vector<std::string>* tokens) const = 0;
  // True when a later token can change the text of earlier ones (ByteFallback joins runs of
  // <0xNN> tokens and turns the whole run into U+FFFDs if it is not valid UTF-8).
  virtual bool HasByteFallback() const { return false; }
  // DecodeChain without the repair to valid UTF-8 (ByteLevel's lossy conversion, ByteFallback's
  // U+FFFD per byte of an invalid run): the raw bytes the tokens stand for.
  virtual void DecodeChainRaw(std::vector<std::string>* tokens) const { DecodeChain(tokens); }
};

Result<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path,
                                              int depth = 0);

// The <0xNN> byte a ByteFallback token stands for, or -1 (tokenizers accepts exactly 6 chars,
// hex digits of either case, and, through Rust's from_str_radix, a '+' sign as the first digit).
int ByteFallbackValue(std::string_view token);

}  // namespace hubnode::runtime

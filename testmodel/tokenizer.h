// The test tokenizer: a real byte-level BPE (GPT-2's byte alphabet and pre-tokenizer split,
// merges learned by counting pairs over a built-in corpus), the family's added special tokens,
// and the tokenizer.json / tokenizer_config.json (with a chat template) that describe it.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "testmodel/spec.h"
#include "testmodel/testmodel.h"

namespace hubnode::testmodel {

// The training text (English prose, code, numbers; written for this project).
std::string_view BuiltinCorpus();

// GPT-2's bytes_to_unicode(): the printable character (as UTF-8) that stands for byte `b` in a
// byte-level vocabulary, e.g. ' ' -> "Ġ", 'a' -> "a".
std::string ByteToUnicode(uint8_t b);

// Splits text like GPT-2's ByteLevel pre-tokenizer regex
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with ASCII character classes (bytes >= 0x80 count as letters). The pieces concatenate to text.
std::vector<std::string_view> PreTokenize(std::string_view text);

struct Bpe {
  // Token strings (byte-level alphabet) in id order: the 256 byte tokens in GPT-2's order, then
  // one per new merge result.
  std::vector<std::string> vocab;
  // Merges in rank order.
  std::vector<std::pair<std::string, std::string>> merges;
};

// Learns up to max_merges merges from corpus: repeatedly merges the most frequent adjacent pair
// (ties: the pair of smaller ids), stopping early when no pair occurs twice. A merge whose result
// already exists (reached by another split) reuses that token, as the tokenizers trainer does.
Bpe TrainBpe(std::string_view corpus, int max_merges);

struct TokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;
  int token_count = 0;  // BPE vocabulary plus added tokens
  TokenIds ids;
};

// The family's tokenizer with `merges` merges learned from `corpus` (empty: BuiltinCorpus()).
TokenizerFiles BuildTokenizer(Family family, int merges, std::string_view corpus = {});

}  // namespace hubnode::testmodel

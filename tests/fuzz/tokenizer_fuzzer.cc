// libFuzzer target for runtime::Tokenizer.
//
// The first input byte picks the mode:
//   even: the rest is text for fixed tokenizers (byte-level BPE with the Qwen2 Split regex, and a
//         SentencePiece-style BPE with byte fallback); checks that byte-level encoding round-trips,
//         that Decode of arbitrary ids never fails, and that DecodeStream's pieces add up to
//         Decode.
//   odd:  the next two bytes are the length of a tokenizer.json part, the rest is text; a file that
//         loads is then used to encode the text and decode the ids (and arbitrary ids).
// Any crash, sanitizer report or failed check is a bug: all input is untrusted.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizer/tokenizer.h"
#include "runtime/tokenizer/unicode.h"

namespace {

using hubnode::runtime::DecodeStream;
using hubnode::runtime::Tokenizer;
using nlohmann::json;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

std::string ByteChar(int b) {
  return std::string(hubnode::runtime::ByteLevelChar(static_cast<uint8_t>(b)));
}

// Full byte alphabet, a few merges and ChatML specials; Qwen2's pre-tokenizer.
std::string ByteLevelJson() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteChar(b)] = b;
  json merges = json::array();
  int next = 256;
  for (const char* pair : {"Ġ t", "h e", "Ġt he", "Ġ Ġ", "ĠĠ ĠĠ", "i n", "in g", "e r"}) {
    const std::string s(pair);
    const size_t sp = s.find(' ');
    merges.push_back(json::array({s.substr(0, sp), s.substr(sp + 1)}));
    vocab[s.substr(0, sp) + s.substr(sp + 1)] = next++;
  }
  json added = json::array();
  for (const char* t : {"<|im_start|>", "<|im_end|>", "<|endoftext|>"}) {
    added.push_back({{"id", next++},
                     {"content", t},
                     {"special", true},
                     {"normalized", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"single_word", false}});
  }
  const char* regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  json pre = {
      {"type", "Sequence"},
      {"pretokenizers",
       json::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  return json{{"added_tokens", added},
              {"normalizer", nullptr},  // no NFC: the round trip must be exact
              {"pre_tokenizer", pre},
              {"decoder", {{"type", "ByteLevel"}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}}
      .dump();
}

// Mixtral-style: <0xNN> byte fallback, Prepend/Replace normalizer, the four-step decoder.
std::string SentencePieceJson() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const char* c : {"▁", "a", "b", "e", "t", "h", "▁t", "▁th", "▁the"}) vocab[c] = next++;
  json merges = json::array({"▁ t", "▁t h", "▁th e"});
  json decoder = {
      {"type", "Sequence"},
      {"decoders",
       json::array({{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  json normalizer = {
      {"type", "Sequence"},
      {"normalizers",
       json::array({{{"type", "Prepend"}, {"prepend", "▁"}},
                    {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}})}};
  json added = json::array();
  int id = 0;
  for (const char* t : {"<unk>", "<s>", "</s>"}) {
    added.push_back({{"id", id++}, {"content", t}, {"special", true}, {"normalized", false}});
  }
  return json{{"added_tokens", added},
              {"normalizer", normalizer},
              {"decoder", decoder},
              {"model",
               {{"type", "BPE"},
                {"unk_token", "<unk>"},
                {"fuse_unk", true},
                {"byte_fallback", true},
                {"vocab", vocab},
                {"merges", merges}}}}
      .dump();
}

const std::vector<Tokenizer>& FixedTokenizers() {
  static const std::vector<Tokenizer> tokenizers = [] {
    std::vector<Tokenizer> list;
    for (const std::string& j : {ByteLevelJson(), SentencePieceJson()}) {
      auto t = Tokenizer::FromJson(j, "");
      Check(t.ok(), "fixed tokenizer loads");
      list.push_back(std::move(t).value());
    }
    return list;
  }();
  return tokenizers;
}

// `known_good`: the tokenizer's decoders are ones DecodeStream is exact for (fuzzed files may
// combine decoders, e.g. Fuse then Replace, whose output a later token can still change).
void Exercise(const Tokenizer& t, std::string_view text, bool lossless, bool known_good) {
  const std::vector<int32_t> ids = t.Encode(text, false);
  const std::vector<int32_t> with_special = t.Encode(text, true);
  Check(with_special.size() >= ids.size(), "special tokens only add");
  const std::string decoded = t.Decode(ids, false);
  Check(hubnode::runtime::IsValidUtf8(decoded), "Decode returns valid UTF-8");
  if (lossless) Check(decoded == hubnode::runtime::ToValidUtf8(text), "byte-level round trip");
  // The text's bytes double as arbitrary ids (including ones past the vocab).
  std::vector<int32_t> arbitrary;
  for (size_t i = 0; i + 1 < text.size() && arbitrary.size() < 64; i += 2) {
    arbitrary.push_back((static_cast<uint8_t>(text[i]) << 8 | static_cast<uint8_t>(text[i + 1])) %
                        (t.vocab_size() + 8));
  }
  const std::vector<int32_t>& arbitrary_ids = arbitrary;
  for (const std::vector<int32_t>* list : {&ids, &arbitrary_ids}) {
    for (bool skip : {false, true}) {
      DecodeStream stream(t, skip);
      std::string streamed;
      for (int32_t id : *list) streamed += stream.Next(id);
      streamed += stream.Flush();
      if (known_good) Check(streamed == t.Decode(*list, skip), "DecodeStream adds up to Decode");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    const auto& fixed = FixedTokenizers();
    Exercise(fixed[0], input, /*lossless=*/true, /*known_good=*/true);
    Exercise(fixed[1], input, /*lossless=*/false, /*known_good=*/true);
    return 0;
  }
  if (input.size() < 2) return 0;
  const size_t json_len = std::min<size_t>(
      input.size() - 2, static_cast<uint8_t>(input[0]) << 8 | static_cast<uint8_t>(input[1]));
  const std::string_view json_part = input.substr(2, json_len);
  const std::string_view text = input.substr(2 + json_len);
  auto t = Tokenizer::FromJson(json_part, "");
  if (!t.ok()) return 0;
  Exercise(*t, text, /*lossless=*/false, /*known_good=*/false);
  return 0;
}

// Tests of runtime::Tokenizer: the byte-level tokenizers that `hubnode testmodel` writes for every
// family, hand-built BPE files for merges formats, ignore_merges and added-token options, a
// SentencePiece-style file (byte fallback, Prepend/Replace, Mixtral's decoder chain), malformed
// input, DecodeStream and encoding speed on pathological input. Agreement with the Hugging Face
// implementation itself is checked by tokenizer_golden.sh.
#include "runtime/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "runtime/tokenizer/unicode.h"
#include "testmodel/tokenizer.h"

namespace hubnode::runtime {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

Tokenizer Load(const json& tok, const json& config = json()) {
  auto t = Tokenizer::FromJson(tok.dump(), config.is_null() ? "" : config.dump());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) std::abort();
  return std::move(t).value();
}

json AddedToken(int id, const std::string& content, bool special = true) {
  return {{"id", id},        {"content", content},     {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", !special}, {"special", special}};
}

// A minimal byte-level BPE over a few characters: vocab a b c ab abc bc, Ġ (space).
json TinyByteLevel(bool tuple_merges) {
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"Ġ", 3}, {"ab", 4}, {"abc", 5}, {"bc", 6}};
  json merges = json::array();
  for (auto [l, r] : {std::pair{"a", "b"}, std::pair{"ab", "c"}, std::pair{"b", "c"}}) {
    if (tuple_merges) {
      merges.push_back({l, r});
    } else {
      merges.push_back(std::string(l) + " " + r);
    }
  }
  return {
      {"version", "1.0"},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

// A Mixtral-style SentencePiece BPE: <unk> <s> </s>, the 256 <0xNN> tokens, some characters and
// merges for "▁hello", "▁world", "你好".
json SentencePiece() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const char* c : {"▁", "h", "e", "l", "o", "w", "r", "d", "你", "好", "!"}) vocab[c] = next++;
  json merges = json::array();
  for (const std::string& word : {std::string("▁hello"), std::string("▁world")}) {
    std::string cur = word.substr(0, 3);  // "▁" is three bytes
    for (size_t i = 3; i < word.size(); ++i) {
      const std::string c(1, word[i]);
      if (!vocab.contains(cur + c)) {
        merges.push_back(cur + " " + c);
        vocab[cur + c] = next++;
      }
      cur += c;
    }
  }
  merges.push_back("你 好");
  vocab["你好"] = next++;
  json decoder = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  json normalizer = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", "▁"}},
                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  json post = {{"type", "TemplateProcessing"},
               {"single",
                {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
               {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  return {{"version", "1.0"},
          {"added_tokens", {AddedToken(0, "<unk>"), AddedToken(1, "<s>"), AddedToken(2, "</s>")}},
          {"normalizer", normalizer},
          {"pre_tokenizer", nullptr},
          {"post_processor", post},
          {"decoder", decoder},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", merges}}}};
}

json SentencePieceConfig() {
  return {{"add_bos_token", true}, {"bos_token", "<s>"}, {"eos_token", {{"content", "</s>"}}}};
}

const testmodel::Family kFamilies[] = {testmodel::Family::kMixtral,  testmodel::Family::kQwen2Moe,
                                       testmodel::Family::kQwen3Moe, testmodel::Family::kOlmoe,
                                       testmodel::Family::kLlama,    testmodel::Family::kQwen2,
                                       testmodel::Family::kQwen3};

constexpr std::string_view kHardStrings[] = {
    "",
    " ",
    "Hello world",
    "  two  spaces\tand\ttabs\n\nnewlines  ",
    "trailing   ",
    "don't we'll they've I'M",
    "1234567890 3.14",
    "中文测试 你好世界 日本語",
    "e\u0301 a\u0308 Zalgo Z̷̢̛a̴",
    "Emoji 😀👍🏽👨‍👩‍👧‍👦 🏳️‍🌈",
    "<|im_start|>user\nhi<|im_end|>",
    "\u00a0\u3000\u2028",
    std::string_view("A\0B", 3)};

TEST(TokenizerTest, TestModelFamiliesRoundTripAndSplitSpecialTokens) {
  for (testmodel::Family family : kFamilies) {
    SCOPED_TRACE(testmodel::FamilyName(family));
    const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(family, 200);
    auto t = Tokenizer::FromJson(files.tokenizer_json, files.tokenizer_config_json);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->vocab_size(), files.token_count);
    // bos/eos come from tokenizer_config.json (Qwen's has no bos_token; config.json still has an
    // id).
    const json config = json::parse(files.tokenizer_config_json);
    EXPECT_EQ(t->bos_id(), config["bos_token"].is_null() ? -1 : files.ids.bos);
    EXPECT_EQ(t->bos_token(),
              config["bos_token"].is_null() ? "" : config["bos_token"].get<std::string>());
    EXPECT_EQ(t->eos_id(), files.ids.eos);
    EXPECT_EQ(t->TokenText(t->eos_id()), t->eos_token());
    for (std::string_view text : kHardStrings) {
      EXPECT_EQ(t->Decode(t->Encode(text)), text);  // byte-level BPE is lossless
    }
    const int32_t im_start = t->TokenId("<|im_start|>");
    ASSERT_GE(im_start, 0);
    EXPECT_TRUE(t->IsSpecial(im_start));
    EXPECT_EQ(t->TokenText(im_start), "<|im_start|>");
    const Ids ids = t->Encode("<|im_start|>user\nhi<|im_end|>");
    EXPECT_EQ(ids.front(), im_start);
    EXPECT_EQ(ids.back(), t->TokenId("<|im_end|>"));
    EXPECT_EQ(t->Decode(ids, /*skip_special_tokens=*/true), "user\nhi");
    EXPECT_FALSE(t->IsSpecial(t->TokenId("a")));
    EXPECT_EQ(t->TokenId("no such token"), -1);
    EXPECT_EQ(t->TokenText(t->vocab_size()), "");
    EXPECT_EQ(t->TokenText(-5), "");
  }
}

TEST(TokenizerTest, BothMergesFormatsGiveTheSameRankedMerges) {
  Tokenizer legacy = Load(TinyByteLevel(false));
  Tokenizer tuple = Load(TinyByteLevel(true));
  // "a b" has rank 0 and "ab c" rank 1, so "abc" is one token; "bc" only merges without an "a".
  EXPECT_EQ(legacy.Encode("abc"), (Ids{5}));
  EXPECT_EQ(legacy.Encode("bcab"), (Ids{6, 4}));
  EXPECT_EQ(legacy.Encode("abc abc"), (Ids{5, 3, 5}));  // "Ġabc": Ġ a b c -> Ġ ab c -> Ġ abc
  for (const char* s : {"abc", "bcab", "abc abc", "cba cab aabbcc"}) {
    EXPECT_EQ(legacy.Encode(s), tuple.Encode(s)) << s;
    EXPECT_EQ(legacy.Decode(legacy.Encode(s)), s);
  }
  // Merge ranks follow list order: put "b c" first and "abc" splits as a + bc.
  json swapped = TinyByteLevel(true);
  swapped["model"]["merges"] =
      json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"ab", "c"})});
  EXPECT_EQ(Load(swapped).Encode("abc"), (Ids{0, 6}));
}

TEST(TokenizerTest, IgnoreMergesEmitsWholeVocabWords) {
  json tok = TinyByteLevel(false);
  tok["model"]["vocab"]["cab"] = 7;  // no merge produces it
  EXPECT_EQ(Load(tok).Encode("cab"), (Ids{2, 4}));
  tok["model"]["ignore_merges"] = true;
  EXPECT_EQ(Load(tok).Encode("cab"), (Ids{7}));
  EXPECT_EQ(Load(tok).Encode("cabc"), (Ids{2, 5}));  // not in the vocab: merges as usual
}

TEST(TokenizerTest, SentencePieceByteFallbackAndTemplate) {
  Tokenizer t = Load(SentencePiece(), SentencePieceConfig());
  const int32_t hello = t.TokenId("▁hello");
  const int32_t world = t.TokenId("▁world");
  ASSERT_GE(hello, 0);
  EXPECT_EQ(t.Encode("hello world"), (Ids{hello, world}));
  EXPECT_EQ(t.Encode("hello world", true), (Ids{1, hello, world}));
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.eos_token(), "</s>");
  EXPECT_TRUE(t.add_bos_token());
  // "€" is not in the vocab: its three bytes become <0xE2><0x82><0xAC>.
  const Ids euro = t.Encode("€");
  EXPECT_EQ(euro, (Ids{t.TokenId("▁"), 3 + 0xE2, 3 + 0x82, 3 + 0xAC}));
  EXPECT_EQ(t.Decode(euro), "€");  // Strip removes the leading space the "▁" became
  EXPECT_EQ(t.Encode("你好!"), (Ids{t.TokenId("▁"), t.TokenId("你好"), t.TokenId("!")}));
  EXPECT_EQ(t.Decode(t.Encode("hello\nworld 😀!")), "hello\nworld 😀!");
  // An invalid byte run decodes to one U+FFFD per byte token, as ByteFallback does.
  EXPECT_EQ(t.Decode(Ids{3 + 0xE2, 3 + 0x82, t.TokenId("h")}), "\uFFFD\uFFFDh");
  EXPECT_EQ(t.Decode(Ids{1, hello, 2}, true), "hello");
  EXPECT_EQ(t.Decode(Ids{1, hello, 2}, false), "<s> hello</s>");
}

TEST(TokenizerTest, UnknownCharactersFuseIntoOneUnkWithoutByteFallback) {
  json tok = SentencePiece();
  tok["model"]["byte_fallback"] = false;
  const int32_t space = tok["model"]["vocab"]["▁"].get<int32_t>();
  const int32_t h = tok["model"]["vocab"]["h"].get<int32_t>();
  EXPECT_EQ(Load(tok).Encode("€€h"), (Ids{space, 0, h}));
  tok["model"]["fuse_unk"] = false;
  EXPECT_EQ(Load(tok).Encode("€€h"), (Ids{space, 0, 0, h}));
}

TEST(TokenizerTest, AddedTokensStripAndSingleWord) {
  json tok = TinyByteLevel(false);
  json mask = AddedToken(10, "<mask>", false);
  mask["lstrip"] = true;
  mask["rstrip"] = true;
  json word = AddedToken(11, "ab", false);
  word["single_word"] = true;
  json plain = AddedToken(12, "<x>");
  tok["added_tokens"] = {mask, word, plain};
  tok["model"]["vocab"]["<"] = 20;
  tok["model"]["vocab"][">"] = 21;
  tok["model"]["vocab"]["x"] = 22;
  Tokenizer t = Load(tok);
  // Like the reference, ids come from the vocab ("ab" is 4) or count on from the vocab's size
  // (10 entries), whatever the file says.
  EXPECT_EQ(t.TokenId("<mask>"), 10);
  EXPECT_EQ(t.TokenId("ab"), 4);
  EXPECT_EQ(t.TokenId("<x>"), 11);
  // lstrip/rstrip swallow the spaces around <mask>; <x> leaves them to the model.
  EXPECT_EQ(t.Encode("a <mask>  b"), (Ids{0, 10, 1}));
  EXPECT_EQ(t.Encode("a <x> b"), (Ids{0, 3, 11, 3, 1}));
  // single_word: "ab" only matches as a whole word.
  EXPECT_EQ(t.Encode("ab"), (Ids{4}));
  EXPECT_EQ(t.Encode("c ab c"), (Ids{2, 3, 4, 3, 2}));
  EXPECT_EQ(t.Encode("abc"), (Ids{5}));
  EXPECT_EQ(t.Decode(Ids{0, 10, 1}), "a<mask>b");
  EXPECT_EQ(t.vocab_size(), 23);
}

TEST(TokenizerTest, NormalizedAddedTokensMatchAfterNormalization) {
  json tok = TinyByteLevel(false);
  tok["normalizer"] = {{"type", "Lowercase"}};
  tok["added_tokens"] =
      json::array({AddedToken(10, "cab", /*special=*/false)});  // normalized: true
  Tokenizer t = Load(tok);
  const int32_t cab = t.TokenId("cab");
  EXPECT_EQ(cab, 7);
  EXPECT_EQ(t.Encode("CAB"), (Ids{cab}));
  EXPECT_EQ(t.Encode("aCaBc"), (Ids{0, cab, 2}));
}

TEST(TokenizerTest, InvalidUtf8InputAndUnknownIds) {
  const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(testmodel::Family::kQwen2, 200);
  auto full = Tokenizer::FromJson(files.tokenizer_json, "");
  ASSERT_TRUE(full.ok());
  // Bytes that are not UTF-8 are encoded as U+FFFD (EF BF BD in the byte alphabet).
  EXPECT_EQ(full->Decode(full->Encode("a\xFF\xF0\x9F")), "a\uFFFD\uFFFD");
  Tokenizer t = Load(TinyByteLevel(false));
  EXPECT_EQ(t.Decode(Ids{0, 999, -1, 1}), "ab");
}

TEST(UnicodeTest, LossyConversionMatchesRust) {
  // String::from_utf8_lossy: one U+FFFD per maximal invalid prefix of a sequence.
  EXPECT_EQ(ToValidUtf8("a\xF0\x9F\x98"), "a\uFFFD");            // truncated emoji
  EXPECT_EQ(ToValidUtf8("\xC0\x80"), "\uFFFD\uFFFD");            // overlong lead is invalid alone
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(ToValidUtf8("\xE2\x82x\xFF"), "\uFFFDx\uFFFD");
  EXPECT_EQ(ToValidUtf8("ok \u00e9 😀"), "ok \u00e9 😀");
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

// One malformed variant of TinyByteLevel(): `value` is written at the JSON pointer `at`.
struct Malformed {
  std::string at;
  json value;
  StatusCode code;
  const char* mentions;  // the error message must name the field or type
};

TEST(TokenizerTest, MalformedInputIsACleanError) {
  const StatusCode kInvalid = StatusCode::kInvalidArgument;
  const StatusCode kUnimplemented = StatusCode::kUnimplemented;
  json nested = {{"type", "Lowercase"}};
  for (int i = 0; i < 40; ++i) {
    nested = {{"type", "Sequence"}, {"normalizers", json::array({nested})}};
  }
  const std::vector<Malformed> edits = {
      {"/model", nullptr, kInvalid, "model: missing"},
      {"/model/type", "WordPiece", kUnimplemented, "WordPiece"},
      {"/model/vocab", json::array(), kInvalid, "model.vocab"},
      {"/model/vocab/a", -1, kInvalid, "model.vocab.a"},
      {"/model/vocab/a", "0", kInvalid, "model.vocab.a"},
      {"/model/vocab/a", 1LL << 40, kInvalid, "out of range"},
      {"/model/vocab/" + std::string(2000, 'a'), 9, kInvalid, "1 KiB"},
      {"/model/merges/0", "a b c", kInvalid, "model.merges[0]"},
      {"/model/merges/1", "c a", kInvalid, "model.merges[1]"},
      {"/model/merges/0", 7, kInvalid, "model.merges[0]"},
      {"/model/merges/0", json::array({"a"}), kInvalid, "model.merges[0]"},
      {"/model/unk_token", "<unk>", kInvalid, "unk_token"},
      {"/model/byte_fallback", "yes", kInvalid, "model.byte_fallback"},
      {"/normalizer", {{"type", "Precompiled"}}, kUnimplemented, "Precompiled"},
      {"/normalizer", {{"x", 1}}, kInvalid, "normalizer.type"},
      {"/normalizer", nested, kInvalid, "nested too deeply"},
      {"/pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}},
       kInvalid,
       "pre_tokenizer.pattern.Regex"},
      {"/pre_tokenizer", {{"type", "Split"}}, kInvalid, "pre_tokenizer.pattern"},
      {"/pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Eat"}},
       kInvalid,
       "pre_tokenizer.behavior"},
      {"/pre_tokenizer", {{"type", "UnicodeScripts"}}, kUnimplemented, "UnicodeScripts"},
      {"/added_tokens", 5, kInvalid, "added_tokens"},
      {"/added_tokens", json::array({{{"id", 1}, {"content", 3}}}), kInvalid,
       "added_tokens[0].content"},
      {"/decoder",
       {{"type", "Strip"}, {"content", " "}, {"start", "one"}},
       kInvalid,
       "decoder.start"},
      {"/decoder", {{"type", "Metaspace"}, {"replacement", "ab"}}, kInvalid, "decoder.replacement"},
      {"/decoder", {{"type", "CTC"}}, kUnimplemented, "CTC"},
      {"/version", "2.0", kInvalid, "version"},
      {"/post_processor",
       {{"type", "TemplateProcessing"}, {"single", {{{"SpecialToken", {{"id", "<s>"}}}}}}},
       kInvalid,
       "special_tokens"},
  };
  for (const Malformed& m : edits) {
    json tok = TinyByteLevel(false);
    tok[json::json_pointer(m.at)] = m.value;
    auto t = Tokenizer::FromJson(tok.dump(), "");
    ASSERT_FALSE(t.ok()) << m.at;
    EXPECT_EQ(t.status().code(), m.code) << m.at << ": " << t.status().ToString();
    EXPECT_NE(t.status().message().find(m.mentions), std::string::npos)
        << m.at << ": " << t.status().ToString();
  }
  // Whole-file problems, and tokenizer_config.json.
  const std::string good = TinyByteLevel(false).dump();
  std::vector<std::pair<std::string, std::string>> files_list = {
      {"{\"model\": ", ""},
      {"[1,2]", ""},
      {std::string(65 << 20, ' '), ""},
      {good, "{"},
      {good, "[]"},
      {good, "{\"bos_token\": 5}"},
      {good, "{\"add_bos_token\": \"yes\"}"}};
  // Deep nesting must not exhaust the stack, neither in the parser nor in our walk over it.
  files_list.push_back({std::string(200000, '['), ""});
  files_list.push_back(
      {"{\"model\": " + std::string(100000, '[') + std::string(100000, ']') + "}", ""});
  for (const auto& [tokenizer_json, config_json] : files_list) {
    auto t = Tokenizer::FromJson(tokenizer_json, config_json);
    ASSERT_FALSE(t.ok()) << tokenizer_json.substr(0, 20) << " / " << config_json;
    EXPECT_EQ(t.status().code(), kInvalid) << t.status().ToString();
    EXPECT_NE(
        t.status().message().find(config_json.empty() ? "tokenizer.json" : "tokenizer_config.json"),
        std::string::npos)
        << t.status().ToString();
  }
}

std::string StreamAll(const Tokenizer& t, const Ids& ids, bool skip,
                      std::vector<std::string>* parts) {
  DecodeStream stream(t, skip);
  std::string out;
  for (int32_t id : ids) {
    parts->push_back(stream.Next(id));
    out += parts->back();
  }
  parts->push_back(stream.Flush());
  return out + parts->back();
}

TEST(DecodeStreamTest, HoldsBackSplitUtf8UntilComplete) {
  const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(testmodel::Family::kQwen2, 200);
  auto t = Tokenizer::FromJson(files.tokenizer_json, files.tokenizer_config_json);
  ASSERT_TRUE(t.ok());
  const Ids ids = t->Encode("ok 😀!");
  // "😀" is F0 9F 98 80: four byte tokens in this small vocab.
  std::vector<std::string> parts;
  EXPECT_EQ(StreamAll(*t, ids, false, &parts), "ok 😀!");
  const auto emoji = std::find(parts.begin(), parts.end(), "😀");
  ASSERT_NE(emoji, parts.end());
  ASSERT_GE(emoji - parts.begin(), 3);
  for (auto it = emoji - 3; it != emoji; ++it) EXPECT_EQ(*it, "");
}

TEST(DecodeStreamTest, ByteFallbackRunWaitsForTheNextToken) {
  Tokenizer t = Load(SentencePiece());
  const int32_t hello = t.TokenId("▁hello");
  const Ids ids = {hello, 3 + 0xE2, 3 + 0x82, 3 + 0xAC, hello};
  std::vector<std::string> parts;
  EXPECT_EQ(StreamAll(t, ids, false, &parts), "hello€ hello");
  EXPECT_EQ(parts, (std::vector<std::string>{"hello", "", "", "", "€ hello", ""}));
  // Strip only removes the first token's leading space.
  parts.clear();
  EXPECT_EQ(StreamAll(t, {hello, hello}, false, &parts), "hello hello");
}

TEST(DecodeStreamTest, ConcatenationEqualsDecodeForRandomIds) {
  std::vector<Tokenizer> tokenizers;
  tokenizers.push_back(Load(SentencePiece()));
  tokenizers.push_back(Load(TinyByteLevel(false)));
  const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(testmodel::Family::kLlama, 200);
  tokenizers.push_back(std::move(Tokenizer::FromJson(files.tokenizer_json, "")).value());
  std::mt19937 rng(7);
  for (const Tokenizer& t : tokenizers) {
    std::uniform_int_distribution<int32_t> id(0, t.vocab_size() + 2);
    for (int round = 0; round < 300; ++round) {
      Ids ids(1 + rng() % 30);
      for (int32_t& v : ids) v = id(rng);
      for (bool skip : {false, true}) {
        std::vector<std::string> parts;
        EXPECT_EQ(StreamAll(t, ids, skip, &parts), t.Decode(ids, skip));
      }
    }
  }
}

TEST(TokenizerTest, PathologicalInputStaysFast) {
  const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(testmodel::Family::kQwen3, 200);
  json qwen = json::parse(files.tokenizer_json);
  qwen["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern",
          {{"Regex",
            R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
         {"behavior", "Isolated"}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  std::vector<Tokenizer> tokenizers;
  tokenizers.push_back(std::move(Tokenizer::FromJson(files.tokenizer_json, "")).value());
  tokenizers.push_back(Load(qwen));
  tokenizers.push_back(Load(SentencePiece()));
  const size_t kSize = 1 << 20;
  std::string alternating;
  for (size_t i = 0; i < kSize / 2; ++i) alternating += "ab";
  for (const Tokenizer& t : tokenizers) {
    for (const std::string& input :
         {std::string(kSize, 'a'), std::string(kSize, ' '), std::string(kSize, '!'), alternating,
          std::string(kSize, '7'), std::string(kSize / 2, '\n') + std::string(kSize / 2, ' ')}) {
      const auto start = std::chrono::steady_clock::now();
      const Ids ids = t.Encode(input);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_LT(seconds, 5.0) << "input of '" << input[0] << "'";
      EXPECT_EQ(t.Decode(ids), input);
    }
  }
}

TEST(TokenizerTest, ConcurrentEncodesAgree) {
  const testmodel::TokenizerFiles files = testmodel::BuildTokenizer(testmodel::Family::kOlmoe, 200);
  auto t = Tokenizer::FromJson(files.tokenizer_json, files.tokenizer_config_json);
  ASSERT_TRUE(t.ok());
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("word" + std::to_string(i * 7919) + " the end");
  std::vector<Ids> expected;
  for (const std::string& s : texts) expected.push_back(t->Encode(s));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = k; i < texts.size(); i += 1) {
          if (t->Encode(texts[i]) != expected[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// TokenBytes: what a token stands for without the repair to valid UTF-8 (OpenAI's log-prob
// `bytes`): a byte-level token holding one byte of a multi-byte character, and a <0xNN> byte of
// SentencePiece, give that byte; Decode of the same token gives U+FFFD.
TEST(TokenizerTest, TokenBytesAreRawForPartialCharacters) {
  json bl = TinyByteLevel(false);
  bl["model"]["vocab"]["\xC3\xA2"] = 7;  // "â": the byte-level character for byte 0xE2
  auto t = Tokenizer::FromJson(bl.dump(), "");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->TokenBytes(7), std::string("\xE2"));
  EXPECT_EQ(t->Decode(std::vector<int32_t>{7}), std::string("\xEF\xBF\xBD"));
  EXPECT_EQ(t->TokenBytes(4), "ab");
  EXPECT_EQ(t->TokenBytes(999), "");
  auto sp = Tokenizer::FromJson(SentencePiece().dump(), "");
  ASSERT_TRUE(sp.ok()) << sp.status().ToString();
  EXPECT_EQ(sp->TokenBytes(3 + 0xE4), std::string("\xE4"));
  EXPECT_EQ(sp->Decode(std::vector<int32_t>{3 + 0xE4}), std::string("\xEF\xBF\xBD"));
}

}  // namespace
}  // namespace hubnode::runtime

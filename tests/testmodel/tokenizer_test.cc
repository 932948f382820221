// Tests of the test tokenizer: the pre-tokenizer split, BPE training on small corpora with
// hand-computed merges, and the generated tokenizer.json / tokenizer_config.json of each family.
#include "testmodel/tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "testmodel/testmodel.h"
#include "tests/testmodel/safetensors_check.h"

namespace hubnode::testmodel {
namespace {

using nlohmann::json;
using testing::ReadAll;
using testing::TempDir;

std::vector<std::string> Split(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view piece : PreTokenize(text)) out.emplace_back(piece);
  return out;
}

TEST(PreTokenizeTest, FollowsTheGpt2Regex) {
  // Worked by hand from 's|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+.
  EXPECT_EQ(Split("Hello world's  123 foo!!\n\nbar"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", " foo", "!!", "\n",
                                      "\n", "bar"}));
  EXPECT_EQ(Split("x = f(a,b);  \n"),
            (std::vector<std::string>{"x", " =", " f", "(", "a", ",", "b", ");", "  \n"}));
  EXPECT_EQ(Split("they'll 'quote'"),
            (std::vector<std::string>{"they", "'ll", " '", "quote", "'"}));
  EXPECT_EQ(Split("   a"), (std::vector<std::string>{"  ", " a"}));
  EXPECT_TRUE(Split("").empty());
  // The pieces always concatenate back to the input.
  std::string joined;
  for (std::string_view p : PreTokenize(BuiltinCorpus())) joined += p;
  EXPECT_EQ(joined, BuiltinCorpus());
}

TEST(ByteToUnicodeTest, MatchesGpt2) {
  EXPECT_EQ(ByteToUnicode(' '), "\u0120");   // Ġ
  EXPECT_EQ(ByteToUnicode('\n'), "\u010A");  // Ċ
  EXPECT_EQ(ByteToUnicode(0), "\u0100");
  EXPECT_EQ(ByteToUnicode(0xAD), "\u0143");  // the one unprintable byte above 0xA0
  EXPECT_EQ(ByteToUnicode('a'), "a");
  EXPECT_EQ(ByteToUnicode(0xFF), "\u00FF");
  std::set<std::string> all;
  for (int b = 0; b < 256; ++b) all.insert(ByteToUnicode(static_cast<uint8_t>(b)));
  EXPECT_EQ(all.size(), 256u);
}

TEST(TrainBpeTest, MergesTheMostFrequentPairFirst) {
  // Words: "ab" x1, " ab" x2, " abc" x2. Pairs: (a,b) 5, (Ġ,a) 4, (b,c) 2 -> "a b"; then
  // (Ġ,ab) 4 -> "Ġ ab"; then (Ġab,c) 2 -> "Ġab c"; then nothing occurs twice.
  const Bpe bpe = TrainBpe("ab ab ab abc abc", 10);
  EXPECT_EQ(bpe.merges, (std::vector<std::pair<std::string, std::string>>{
                            {"a", "b"}, {"\u0120", "ab"}, {"\u0120ab", "c"}}));
  ASSERT_EQ(bpe.vocab.size(), 259u);
  EXPECT_EQ(bpe.vocab[256], "ab");
  EXPECT_EQ(bpe.vocab[258], "\u0120abc");
  EXPECT_EQ(bpe.vocab[0], "!");  // GPT-2's order: printable bytes first
  EXPECT_EQ(TrainBpe("ab ab ab abc abc", 1).merges.size(), 1u);
}

TEST(TrainBpeTest, BreaksTiesBySmallerIds) {
  // (x,y), (Ġ,z) and (z,w) all occur twice; x,y,z,w have ids 86..89 and Ġ 220, so (x,y) wins,
  // then (z,w), then (Ġ,zw).
  const Bpe bpe = TrainBpe("xy xy zw zw", 10);
  EXPECT_EQ(bpe.merges, (std::vector<std::pair<std::string, std::string>>{
                            {"x", "y"}, {"z", "w"}, {"\u0120", "zw"}}));
}

// Applies merges by rank to one pre-token, as a BPE tokenizer does.
std::vector<std::string> Encode(const std::string& word, const json& merges) {
  std::vector<std::string> parts;
  for (unsigned char c : word) parts.push_back(ByteToUnicode(c));
  std::map<std::pair<std::string, std::string>, size_t> rank;
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string m = merges[i];
    rank[{m.substr(0, m.find(' ')), m.substr(m.find(' ') + 1)}] = i;
  }
  for (;;) {
    size_t best = SIZE_MAX, at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = rank.find({parts[i], parts[i + 1]});
      if (it != rank.end() && it->second < best) best = it->second, at = i;
    }
    if (best == SIZE_MAX) return parts;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + at + 1);
  }
}

TEST(TokenizerFilesTest, AreARealByteLevelBpeForEveryFamily) {
  for (Family family : {Family::kMixtral, Family::kQwen2Moe, Family::kOlmoe, Family::kLlama}) {
    SCOPED_TRACE(std::string(FamilyName(family)));
    TempDir tmp;
    Options o;
    o.family = family;
    ASSERT_TRUE(Generate(o, tmp.path()).ok());
    const json tok = json::parse(ReadAll(tmp.Sub("tokenizer.json")));
    EXPECT_EQ(tok["version"], "1.0");
    EXPECT_TRUE(tok["truncation"].is_null() && tok["padding"].is_null());
    EXPECT_TRUE(tok["normalizer"].is_null());
    EXPECT_EQ(tok["pre_tokenizer"]["type"], "ByteLevel");
    EXPECT_EQ(tok["pre_tokenizer"]["add_prefix_space"], false);
    EXPECT_EQ(tok["decoder"]["type"], "ByteLevel");
    const json& model = tok["model"];
    EXPECT_EQ(model["type"], "BPE");
    EXPECT_EQ(model["byte_fallback"], false);
    const json& vocab = model["vocab"];
    const json& merges = model["merges"];
    // Tiny learns 200 merges; the corpus supports that many.
    EXPECT_EQ(merges.size(), 200u);
    std::set<int> ids;
    for (const auto& [token, id] : vocab.items()) ids.insert(id.get<int>());
    EXPECT_EQ(ids.size(), vocab.size());
    EXPECT_EQ(*ids.begin(), 0);
    EXPECT_EQ(*ids.rbegin(), static_cast<int>(vocab.size()) - 1);
    for (int b = 0; b < 256; ++b)
      EXPECT_TRUE(vocab.contains(ByteToUnicode(static_cast<uint8_t>(b))));
    std::set<std::string> results;
    for (const json& m : merges) {
      const std::string s = m;
      const size_t sp = s.find(' ');
      ASSERT_NE(sp, std::string::npos);
      EXPECT_EQ(s.find(' ', sp + 1), std::string::npos) << s;
      EXPECT_TRUE(vocab.contains(s.substr(0, sp))) << s;
      EXPECT_TRUE(vocab.contains(s.substr(sp + 1))) << s;
      const std::string merged = s.substr(0, sp) + s.substr(sp + 1);
      EXPECT_TRUE(vocab.contains(merged)) << s;
      results.insert(merged);
    }
    EXPECT_EQ(vocab.size(), 256 + results.size());
    // Frequent words of the corpus become single tokens.
    EXPECT_EQ(Encode(" the", merges), std::vector<std::string>{"\u0120the"});
    EXPECT_GT(Encode(" xylophone", merges).size(), 2u);

    std::set<int> added_ids;
    std::map<std::string, int> added;
    for (const json& a : tok["added_tokens"]) {
      EXPECT_EQ(a["special"], true);
      EXPECT_EQ(a["normalized"], false);
      added_ids.insert(a["id"].get<int>());
      added[a["content"]] = a["id"];
      EXPECT_FALSE(vocab.contains(a["content"].get<std::string>()));
    }
    EXPECT_EQ(added_ids.size(), tok["added_tokens"].size());
    EXPECT_EQ(*added_ids.begin(), static_cast<int>(vocab.size()));
    EXPECT_EQ(*added_ids.rbegin(), static_cast<int>(vocab.size() + added.size()) - 1);
    for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
      EXPECT_TRUE(added.count(t));

    const json config = json::parse(ReadAll(tmp.Sub("config.json")));
    EXPECT_EQ(config["vocab_size"], (vocab.size() + added.size() + 63) / 64 * 64);
    const json tc = json::parse(ReadAll(tmp.Sub("tokenizer_config.json")));
    const std::string tmpl = tc["chat_template"];
    EXPECT_TRUE(added.count(tc["eos_token"].get<std::string>()));
    EXPECT_EQ(config["eos_token_id"], added.at(tc["eos_token"]));
    EXPECT_EQ(tc["added_tokens_decoder"].size(), added.size());
    switch (family) {
      case Family::kMixtral:
        EXPECT_EQ(config["bos_token_id"], added.at("<s>"));
        EXPECT_EQ(tc["bos_token"], "<s>");
        EXPECT_NE(tmpl.find("[INST]"), std::string::npos);
        break;
      case Family::kLlama:
        EXPECT_EQ(config["bos_token_id"], added.at("<|begin_of_text|>"));
        EXPECT_EQ(tc["eos_token"], "<|eot_id|>");
        EXPECT_NE(tmpl.find("<|start_header_id|>"), std::string::npos);
        break;
      case Family::kOlmoe:
        EXPECT_EQ(config["pad_token_id"], added.at("<|padding|>"));
        EXPECT_NE(tmpl.find("<|im_start|>"), std::string::npos);
        break;
      default:
        EXPECT_EQ(tc["eos_token"], "<|im_end|>");
        EXPECT_EQ(config["bos_token_id"], added.at("<|endoftext|>"));
        EXPECT_NE(tmpl.find("<|im_start|>"), std::string::npos);
        break;
    }
    EXPECT_EQ(tc["model_max_length"], config["max_position_embeddings"]);
  }
}

TEST(TokenizerFilesTest, LargerPresetsLearnMoreMerges) {
  const TokenizerFiles tiny = BuildTokenizer(Family::kOlmoe, 200);
  const TokenizerFiles bench = BuildTokenizer(Family::kOlmoe, 500);
  EXPECT_EQ(json::parse(bench.tokenizer_json)["model"]["merges"].size(), 500u);
  EXPECT_GT(bench.token_count, tiny.token_count + 250);
}

}  // namespace
}  // namespace hubnode::testmodel

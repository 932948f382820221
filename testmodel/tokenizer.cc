#include "testmodel/tokenizer.h"

#include <map>
#include <nlohmann/json.hpp>

namespace hubnode::testmodel {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

bool IsPrintableByte(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {  // the byte alphabet stays below U+0800
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// GPT-2's byte order: the printable bytes first, then the others (which map to U+0100...).
std::vector<uint8_t> ByteOrder() {
  std::vector<uint8_t> order;
  for (int b = 0; b < 256; ++b) {
    if (IsPrintableByte(b)) order.push_back(static_cast<uint8_t>(b));
  }
  for (int b = 0; b < 256; ++b) {
    if (!IsPrintableByte(b)) order.push_back(static_cast<uint8_t>(b));
  }
  return order;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}
bool IsLetter(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u >= 0x80;
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsOther(char c) { return !IsSpace(c) && !IsLetter(c) && !IsDigit(c); }

// Length of a contraction ('s 't 're 've 'm 'll 'd) at the start of s, or 0.
size_t ContractionLength(std::string_view s) {
  if (s.size() < 2 || s[0] != '\'') return 0;
  for (std::string_view c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
    if (s.starts_with(c)) return c.size();
  }
  return 0;
}

struct Word {
  std::vector<int> symbols;
  int64_t count = 0;
};

// --- Chat templates (Jinja, as transformers renders them). ---

constexpr std::string_view kChatMlTemplate = R"tmpl({%- for message in messages %}
    {%- if loop.first and message['role'] != 'system' %}
        {{- '<|im_start|>system\nYou are a test model with random weights.<|im_end|>\n' }}
    {%- endif %}
    {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %})tmpl";

// Mistral's instruction format: a system message, if any, is folded into the first user turn.
constexpr std::string_view kInstTemplate = R"tmpl({{- bos_token }}
{%- if messages and messages[0]['role'] == 'system' %}
    {%- set system_prefix = messages[0]['content'] + '\n\n' %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set system_prefix = '' %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first %}
            {{- '[INST] ' + system_prefix + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- else %}
        {{- ' ' + message['content'] + eos_token }}
    {%- endif %}
{%- endfor %})tmpl";

constexpr std::string_view kHeaderTemplate = R"tmpl({{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %})tmpl";

struct FamilyTokens {
  std::vector<std::string> added;  // after <|endoftext|>, <|im_start|>, <|im_end|>
  std::string bos, eos, pad;       // empty: none
  std::string config_bos;          // config.json's bos_token_id (may differ from the tokenizer's)
  std::vector<std::string> generation_eos;
  std::string_view chat_template;
  std::string tokenizer_class;
};

FamilyTokens TokensFor(Family family) {
  FamilyTokens t;
  switch (family) {
    case Family::kMixtral:
      t.added = {"<s>", "</s>"};
      t.bos = t.config_bos = "<s>";
      t.eos = "</s>";
      t.generation_eos = {"</s>"};
      t.chat_template = kInstTemplate;
      t.tokenizer_class = "PreTrainedTokenizerFast";
      break;
    case Family::kLlama:
      t.added = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                 "<|eot_id|>"};
      t.bos = t.config_bos = "<|begin_of_text|>";
      t.eos = "<|eot_id|>";
      t.generation_eos = {"<|end_of_text|>", "<|eot_id|>"};
      t.chat_template = kHeaderTemplate;
      t.tokenizer_class = "PreTrainedTokenizerFast";
      break;
    case Family::kOlmoe:
      t.added = {"<|padding|>"};
      t.eos = "<|endoftext|>";
      t.pad = "<|padding|>";
      t.generation_eos = {"<|endoftext|>", "<|im_end|>"};
      t.chat_template = kChatMlTemplate;
      t.tokenizer_class = "GPTNeoXTokenizer";
      break;
    default:  // the Qwen families: no BOS in text, <|endoftext|> as config bos and pad
      t.config_bos = "<|endoftext|>";
      t.eos = "<|im_end|>";
      t.pad = "<|endoftext|>";
      t.generation_eos = {"<|im_end|>", "<|endoftext|>"};
      t.chat_template = kChatMlTemplate;
      t.tokenizer_class = "Qwen2Tokenizer";
      break;
  }
  return t;
}

ordered_json ByteLevelComponent(bool add_prefix_space, bool trim_offsets) {
  ordered_json j;
  j["type"] = "ByteLevel";
  j["add_prefix_space"] = add_prefix_space;
  j["trim_offsets"] = trim_offsets;
  j["use_regex"] = true;
  return j;
}

}  // namespace

std::string ByteToUnicode(uint8_t b) {
  if (IsPrintableByte(b)) return Utf8(b);
  uint32_t n = 0;
  for (int i = 0; i < b; ++i) {
    if (!IsPrintableByte(i)) ++n;
  }
  return Utf8(256 + n);
}

std::vector<std::string_view> PreTokenize(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    size_t end;
    if (size_t c = ContractionLength(s.substr(i)); c > 0) {
      end = i + c;
    } else {
      size_t j = (s[i] == ' ' && i + 1 < n && !IsSpace(s[i + 1])) ? i + 1 : i;
      bool (*cls)(char) = nullptr;
      if (IsLetter(s[j])) {
        cls = IsLetter;
      } else if (IsDigit(s[j])) {
        cls = IsDigit;
      } else if (IsOther(s[j])) {
        cls = IsOther;
      }
      if (cls != nullptr) {
        end = j;
        while (end < n && cls(s[end])) ++end;
      } else {
        // \s+(?!\S) then \s+: a run of whitespace leaves its last character to the next token
        // when a non-space follows.
        end = i;
        while (end < n && IsSpace(s[end])) ++end;
        if (end < n && end - i >= 2) --end;
      }
    }
    out.push_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

Bpe TrainBpe(std::string_view corpus, int max_merges) {
  Bpe bpe;
  std::map<std::string, int> ids;
  int byte_id[256];
  for (uint8_t b : ByteOrder()) {
    byte_id[b] = static_cast<int>(bpe.vocab.size());
    bpe.vocab.push_back(ByteToUnicode(b));
    ids[bpe.vocab.back()] = byte_id[b];
  }

  std::map<std::string_view, int64_t> counts;
  for (std::string_view piece : PreTokenize(corpus)) ++counts[piece];
  std::vector<Word> words;
  for (const auto& [piece, count] : counts) {
    Word w;
    w.count = count;
    for (char c : piece) w.symbols.push_back(byte_id[static_cast<uint8_t>(c)]);
    words.push_back(std::move(w));
  }

  for (int m = 0; m < max_merges; ++m) {
    std::map<std::pair<int, int>, int64_t> pairs;
    for (const Word& w : words) {
      for (size_t k = 0; k + 1 < w.symbols.size(); ++k) {
        pairs[{w.symbols[k], w.symbols[k + 1]}] += w.count;
      }
    }
    // The map iterates in pair order, so a strict '>' keeps the smallest pair among equals.
    std::pair<int, int> best;
    int64_t best_count = 1;
    for (const auto& [pair, count] : pairs) {
      if (count > best_count) {
        best = pair;
        best_count = count;
      }
    }
    if (best_count < 2) break;

    const std::string merged = bpe.vocab[best.first] + bpe.vocab[best.second];
    auto [it, inserted] = ids.emplace(merged, static_cast<int>(bpe.vocab.size()));
    if (inserted) bpe.vocab.push_back(merged);
    bpe.merges.emplace_back(bpe.vocab[best.first], bpe.vocab[best.second]);
    for (Word& w : words) {
      std::vector<int> next;
      next.reserve(w.symbols.size());
      for (size_t k = 0; k < w.symbols.size(); ++k) {
        if (k + 1 < w.symbols.size() && w.symbols[k] == best.first &&
            w.symbols[k + 1] == best.second) {
          next.push_back(it->second);
          ++k;
        } else {
          next.push_back(w.symbols[k]);
        }
      }
      w.symbols = std::move(next);
    }
  }
  return bpe;
}

TokenizerFiles BuildTokenizer(Family family, int merges, std::string_view corpus) {
  const Bpe bpe = TrainBpe(corpus.empty() ? BuiltinCorpus() : corpus, merges);
  const FamilyTokens ft = TokensFor(family);
  std::vector<std::string> added = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  added.insert(added.end(), ft.added.begin(), ft.added.end());
  const int first_added = static_cast<int>(bpe.vocab.size());
  auto id_of = [&](const std::string& token) {
    for (size_t k = 0; k < added.size(); ++k) {
      if (added[k] == token) return first_added + static_cast<int>(k);
    }
    return -1;
  };

  ordered_json tj;
  tj["version"] = "1.0";
  tj["truncation"] = nullptr;
  tj["padding"] = nullptr;
  tj["added_tokens"] = ordered_json::array();
  json decoder = json::object();  // tokenizer_config's added_tokens_decoder
  for (size_t k = 0; k < added.size(); ++k) {
    ordered_json a;
    a["id"] = first_added + static_cast<int>(k);
    a["content"] = added[k];
    a["single_word"] = false;
    a["lstrip"] = false;
    a["rstrip"] = false;
    a["normalized"] = false;
    a["special"] = true;
    json d;
    for (const char* key :
         {"content", "lstrip", "normalized", "rstrip", "single_word", "special"}) {
      d[key] = a[key];
    }
    decoder[std::to_string(first_added + k)] = d;
    tj["added_tokens"].push_back(std::move(a));
  }
  tj["normalizer"] = nullptr;
  tj["pre_tokenizer"] = ByteLevelComponent(false, true);
  tj["post_processor"] = ByteLevelComponent(false, false);
  tj["decoder"] = ByteLevelComponent(false, true);
  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = false;
  ordered_json vocab = ordered_json::object();
  for (size_t k = 0; k < bpe.vocab.size(); ++k) vocab[bpe.vocab[k]] = static_cast<int>(k);
  model["vocab"] = std::move(vocab);
  ordered_json merge_list = ordered_json::array();
  for (const auto& [a, b] : bpe.merges) merge_list.push_back(a + " " + b);
  model["merges"] = std::move(merge_list);
  tj["model"] = std::move(model);

  auto token_or_null = [](const std::string& t) { return t.empty() ? json(nullptr) : json(t); };
  json cfg;
  cfg["add_bos_token"] = false;
  cfg["add_eos_token"] = false;
  cfg["added_tokens_decoder"] = std::move(decoder);
  cfg["bos_token"] = token_or_null(ft.bos);
  cfg["eos_token"] = token_or_null(ft.eos);
  cfg["pad_token"] = token_or_null(ft.pad);
  cfg["unk_token"] = nullptr;
  cfg["chat_template"] = std::string(ft.chat_template);
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["errors"] = "replace";
  cfg["model_max_length"] = MaxPositionEmbeddings(family);
  cfg["split_special_tokens"] = false;
  cfg["tokenizer_class"] = ft.tokenizer_class;

  TokenizerFiles out;
  out.tokenizer_json = tj.dump(2) + "\n";
  out.tokenizer_config_json = cfg.dump(2) + "\n";
  out.token_count = first_added + static_cast<int>(added.size());
  out.ids.bos = ft.config_bos.empty() ? -1 : id_of(ft.config_bos);
  out.ids.eos = id_of(ft.eos);
  out.ids.pad = ft.pad.empty() ? -1 : id_of(ft.pad);
  for (const std::string& t : ft.generation_eos) out.ids.generation_eos.push_back(id_of(t));
  return out;
}

}  // namespace hubnode::testmodel

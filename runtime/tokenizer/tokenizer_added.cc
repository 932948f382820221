#include "runtime/tokenizer/tokenizer_added.h"

#include <algorithm>
#include <utility>

#include "runtime/tokenizer/tokenizer_bpe.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

constexpr size_t kMaxAddedTokens = 1 << 20;
// Bounds the trie (one node per byte of content).
constexpr size_t kMaxAddedContentBytes = 8 << 20;

// Rust regex `\w$` on text[..end]: the character before `end` is a word character.
bool EndsWithWord(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start = end - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return IsWordChar(DecodeUtf8At(text, start).cp);
}

// Rust regex `^\w` on text[begin..].
bool StartsWithWord(std::string_view text, size_t begin) {
  return begin < text.size() && IsWordChar(DecodeUtf8At(text, begin).cp);
}

// Start of the whitespace run that ends at `end` (`\s*$` on text[..end]).
size_t WhitespaceRunBefore(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    if (!IsWhitespace(DecodeUtf8At(text, start).cp)) break;
    end = start;
  }
  return end;
}

// End of the whitespace run that starts at `begin` (`^\s*` on text[begin..]).
size_t WhitespaceRunAfter(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    const Utf8Char c = DecodeUtf8At(text, begin);
    if (!IsWhitespace(c.cp)) break;
    begin += c.len;
  }
  return begin;
}

bool SameToken(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip &&
         a.rstrip == b.rstrip && a.normalized == b.normalized && a.special == b.special;
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view key, int32_t token) {
  int32_t node = 0;
  for (char ch : key) {
    const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(ch);
    auto it = edges_.find(edge);
    if (it == edges_.end()) {
      const int32_t child = static_cast<int32_t>(terminal_.size());
      terminal_.push_back(-1);
      it = edges_.emplace(edge, child).first;
    }
    node = it->second;
  }
  // The first token for a pattern wins, like the first pattern of an Aho-Corasick automaton.
  if (terminal_[static_cast<size_t>(node)] < 0) terminal_[static_cast<size_t>(node)] = token;
}

std::vector<AddedVocabulary::Trie::Match> AddedVocabulary::Trie::FindAll(
    std::string_view text) const {
  std::vector<Match> out;
  if (empty()) return out;
  for (size_t i = 0; i < text.size();) {
    int32_t node = 0;
    size_t best_end = 0;
    int32_t best_token = -1;
    for (size_t j = i; j < text.size(); ++j) {
      const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[j]);
      auto it = edges_.find(edge);
      if (it == edges_.end()) break;
      node = it->second;
      if (terminal_[static_cast<size_t>(node)] >= 0) {
        best_end = j + 1;
        best_token = terminal_[static_cast<size_t>(node)];
      }
    }
    if (best_token >= 0) {
      out.push_back({i, best_end, best_token});
      i = best_end;
    } else {
      ++i;
    }
  }
  return out;
}

Status AddedVocabulary::Build(std::vector<AddedToken> tokens, const BpeModel& model,
                              const Normalizer* normalizer) {
  if (tokens.size() > kMaxAddedTokens) {
    return InvalidArgumentError("tokenizer.json: added_tokens: more than 1M entries");
  }
  size_t total_bytes = 0;
  const int32_t model_entries = static_cast<int32_t>(model.entries());
  // Insertion order of the reference's trie: special tokens first, then the others.
  std::vector<std::string> special_order;
  std::vector<std::string> plain_order;
  for (AddedToken& token : tokens) {
    total_bytes += token.content.size();
    if (total_bytes > kMaxAddedContentBytes) {
      return InvalidArgumentError("tokenizer.json: added_tokens: more than 8 MiB of content");
    }
    if (token.content.empty()) continue;
    if (token.special && special_contents_.emplace(token.content, true).second) {
      special_order.push_back(token.content);
    }
    auto existing = by_content_.find(token.content);
    if (existing != by_content_.end() && SameToken(tokens_[existing->second], token)) continue;
    int32_t id = existing != by_content_.end() ? tokens_[existing->second].id : -1;
    if (id < 0) id = model.TokenId(token.content);
    if (id < 0) {
      if (max_id_ < 0) {
        id = model_entries;
      } else {
        id = (max_id_ >= model_entries || model_entries == 0) ? max_id_ + 1 : model_entries;
      }
    }
    if (id >= kMaxTokenId)
      return InvalidArgumentError("tokenizer.json: added_tokens: id too large");
    token.id = id;
    max_id_ = std::max(max_id_, id);
    auto by_id = by_id_.find(id);
    if (by_id != by_id_.end()) {
      tokens_[by_id->second] = token;  // the reference overwrites the id's entry
      by_content_[token.content] = by_id->second;
    } else {
      by_id_.emplace(id, tokens_.size());
      by_content_[token.content] = tokens_.size();
      tokens_.push_back(token);
    }
    if (special_contents_.count(token.content) == 0) plain_order.push_back(token.content);
  }
  for (const auto* order : {&special_order, &plain_order}) {
    for (const std::string& content : *order) {
      auto it = by_content_.find(content);
      if (it == by_content_.end()) continue;
      const AddedToken& t = tokens_[it->second];
      const int32_t index = static_cast<int32_t>(it->second);
      if (!t.normalized) {
        raw_trie_.Insert(t.content, index);
      } else {
        const std::string key = normalizer != nullptr ? normalizer->Apply(t.content) : t.content;
        if (!key.empty()) normalized_trie_.Insert(key, index);
      }
    }
  }
  return OkStatus();
}

void AddedVocabulary::Split(const Piece& piece, const Trie& trie, std::vector<Piece>* out) const {
  const std::string& text = piece.text;
  size_t start_offset = 0;
  auto emit = [&](size_t start, size_t end, int32_t id) {
    if (end <= start) return;
    out->push_back({text.substr(start, end - start), id, piece.at_start && start == 0});
  };
  for (const Trie::Match& m : trie.FindAll(text)) {
    const AddedToken& token = tokens_[static_cast<size_t>(m.token)];
    size_t start = m.start;
    size_t stop = m.end;
    if (token.single_word) {
      const bool start_space = start == 0 || !EndsWithWord(text, start);
      const bool stop_space = stop == text.size() || !StartsWithWord(text, stop);
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) start = std::max(WhitespaceRunBefore(text, start), start_offset);
    if (token.rstrip) stop = WhitespaceRunAfter(text, stop);
    // An rstrip can run into the next match; never emit overlapping pieces.
    start = std::max(start, start_offset);
    if (stop <= start) continue;
    emit(start_offset, start, -1);
    emit(start, stop, token.id);
    start_offset = stop;
  }
  emit(start_offset, text.size(), -1);
}

void AddedVocabulary::ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                                          std::vector<Piece>* out) const {
  std::vector<Piece> raw;
  Split(Piece{std::string(text), -1, true}, raw_trie_, &raw);
  for (Piece& p : raw) {
    if (p.id >= 0) {
      out->push_back(std::move(p));
      continue;
    }
    if (normalizer != nullptr) p.text = normalizer->Apply(p.text);
    Split(p, normalized_trie_, out);
  }
}

const AddedToken* AddedVocabulary::FindById(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

int32_t AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : tokens_[it->second].id;
}

bool AddedVocabulary::IsSpecialContent(std::string_view content) const {
  return special_contents_.count(std::string(content)) != 0;
}

}  // namespace hubnode::runtime

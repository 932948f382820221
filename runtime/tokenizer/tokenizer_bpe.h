// The BPE model of a Hugging Face tokenizer.json (tokenizers models/bpe/): vocab, ranked merges,
// byte fallback, unk handling, ignore_merges, continuing_subword_prefix and end_of_word_suffix.
//
// Tokenize merges one pre-token with a priority queue over adjacent pairs (lowest rank first, then
// leftmost), O(n log n) in the pre-token's length, exactly like the reference's Word::merge_all.
// Results for short pre-tokens are kept in a bounded, sharded cache.
//
// Thread safety: immutable after FromJson except for the internally locked cache; Tokenize may be
// called from many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "runtime/tokenizer/tokenizer_json.h"

namespace hubnode::runtime {

// Bounds on untrusted tokenizer.json content.
inline constexpr size_t kMaxVocabEntries = 4 * 1024 * 1024;
// Ids (vocab and added tokens) must be below this; it also bounds the id -> token table.
inline constexpr int64_t kMaxTokenId = 4 * 1024 * 1024;

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object. InvalidArgument naming the field on malformed input
  // (bad vocab ids, merges naming tokens missing from the vocab, oversized content), Unimplemented
  // for other model types (WordPiece, Unigram, WordLevel).
  static Result<std::unique_ptr<BpeModel>> FromJson(const Json& model, std::string_view path);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-token. REQUIRES: `word` is valid UTF-8.
  void Tokenize(std::string_view word, std::vector<int32_t>* out) const;

  int32_t TokenId(std::string_view token) const;  // -1 when absent
  std::string_view TokenText(int32_t id) const;   // "" when absent
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }
  // Number of vocab entries (the reference's get_vocab_size, which numbers new added tokens).
  size_t entries() const { return vocab_.size(); }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct MergeInfo {
    int32_t rank;
    int32_t new_id;
  };
  struct CacheShard {
    std::mutex mu;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };
  static constexpr size_t kCacheShards = 16;

  BpeModel() = default;
  Status ParseVocab(const Json& vocab, std::string_view path);
  Status ParseMerges(const Json& merges, std::string_view path);
  void MergeWord(std::string_view word, std::vector<int32_t>* out) const;
  const MergeInfo* FindMerge(int32_t left, int32_t right) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string_view> id_to_token_;  // views into vocab_'s keys
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> token ids, -1 when absent
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace hubnode::runtime

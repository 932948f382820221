// Added tokens (tokenizers tokenizer/added_vocabulary.rs): the tokens listed in tokenizer.json's
// "added_tokens", found in the text before the model runs. Matching is leftmost-longest over a byte
// trie, then single_word, lstrip and rstrip are applied to each match exactly as the reference
// does.
//
// Thread safety: immutable after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "runtime/tokenizer/tokenizer_pipeline.h"

namespace hubnode::runtime {

class BpeModel;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;

  // Adds tokens in file order, assigning ids the way the reference does (the model's id when the
  // content is in the vocab, else the next id after the model and earlier added tokens; the JSON
  // "id" is only a hint there too). `normalizer` (may be null) normalizes the match pattern of
  // normalized:true tokens. InvalidArgument when the tokens exceed the size bounds.
  Status Build(std::vector<AddedToken> tokens, const BpeModel& model, const Normalizer* normalizer);

  // The reference's extract_and_normalize: splits `text` on normalized:false tokens, normalizes the
  // other pieces, splits those on normalized:true tokens. Added tokens come out with their id set.
  void ExtractAndNormalize(std::string_view text, const Normalizer* normalizer,
                           std::vector<Piece>* out) const;

  const AddedToken* FindById(int32_t id) const;
  int32_t FindByContent(std::string_view content) const;  // -1 when absent
  bool IsSpecialContent(std::string_view content) const;
  int32_t max_id() const { return max_id_; }

 private:
  // A byte trie; each node knows the token (index into tokens_) ending there, or -1.
  class Trie {
   public:
    Trie() : terminal_(1, -1) {}
    void Insert(std::string_view key, int32_t token);
    // Leftmost-longest non-overlapping matches: (start, end, token).
    struct Match {
      size_t start;
      size_t end;
      int32_t token;
    };
    std::vector<Match> FindAll(std::string_view text) const;
    bool empty() const { return terminal_.size() == 1; }

   private:
    std::unordered_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child node
    std::vector<int32_t> terminal_;
  };

  void Split(const Piece& piece, const Trie& trie, std::vector<Piece>* out) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  std::unordered_map<std::string, size_t> by_content_;
  std::unordered_map<std::string, bool> special_contents_;
  Trie raw_trie_;
  Trie normalized_trie_;
  int32_t max_id_ = -1;
};

}  // namespace hubnode::runtime

#include "runtime/tokenizer/tokenizer_bpe.h"

#include <cstdio>
#include <queue>
#include <utility>

#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

// The reference caches words shorter than this many bytes (models/bpe/model.rs MAX_LENGTH).
constexpr size_t kMaxCachedWordBytes = 256;
// Per shard; a full shard is cleared rather than evicted entry by entry, which keeps the hot path
// simple and still bounds memory at roughly 16 * 1024 short words.
constexpr size_t kCacheEntriesPerShard = 1024;

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t len;  // bytes; 0 marks a symbol merged into its left neighbour
};

struct QueuedMerge {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};

// std::priority_queue pops the "largest": make that the lowest rank, then the leftmost position.
struct MergeOrder {
  bool operator()(const QueuedMerge& a, const QueuedMerge& b) const {
    if (a.rank != b.rank) return a.rank > b.rank;
    return a.pos > b.pos;
  }
};

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& model, std::string_view path) {
  if (!model.is_object()) return FieldError(path, "expected an object");
  const Json* type = Member(model, "type");
  if (type != nullptr) {
    if (!type->is_string()) return FieldError(JoinPath(path, "type"), "expected a string");
    const std::string& t = type->get_ref<const std::string&>();
    if (t != "BPE") {
      return UnimplementedError("tokenizer.json: " + JoinPath(path, "type") + ": model type \"" +
                                t + "\" is not supported (only BPE)");
    }
  } else if (Member(model, "merges") == nullptr) {
    return FieldError(JoinPath(path, "type"), "missing");
  }
  std::unique_ptr<BpeModel> m(new BpeModel());
  const Json* vocab = Member(model, "vocab");
  if (vocab == nullptr) return FieldError(JoinPath(path, "vocab"), "missing");
  RETURN_IF_ERROR(m->ParseVocab(*vocab, JoinPath(path, "vocab")));

  ASSIGN_OR_RETURN(m->fuse_unk_, BoolMemberOr(model, "fuse_unk", path, false));
  ASSIGN_OR_RETURN(m->byte_fallback_, BoolMemberOr(model, "byte_fallback", path, false));
  ASSIGN_OR_RETURN(m->ignore_merges_, BoolMemberOr(model, "ignore_merges", path, false));
  ASSIGN_OR_RETURN(m->continuing_subword_prefix_,
                   StringMemberOr(model, "continuing_subword_prefix", path, ""));
  ASSIGN_OR_RETURN(m->end_of_word_suffix_, StringMemberOr(model, "end_of_word_suffix", path, ""));
  if (m->continuing_subword_prefix_.size() > kMaxTokenBytes ||
      m->end_of_word_suffix_.size() > kMaxTokenBytes) {
    return FieldError(path, "continuing_subword_prefix/end_of_word_suffix too long");
  }
  if (const Json* dropout = Member(model, "dropout")) {
    // Dropout only matters for training; inference uses the deterministic merge order.
    if (!dropout->is_number()) return FieldError(JoinPath(path, "dropout"), "expected a number");
  }
  ASSIGN_OR_RETURN(const std::string unk, StringMemberOr(model, "unk_token", path, ""));
  if (!unk.empty()) {
    m->unk_id_ = m->TokenId(unk);
    // The reference loads such a file but fails every encode that needs the unk token.
    if (m->unk_id_ < 0) return FieldError(JoinPath(path, "unk_token"), "not in the vocab");
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->byte_ids_[b] = m->TokenId(name);
  }
  if (const Json* merges = Member(model, "merges")) {
    RETURN_IF_ERROR(m->ParseMerges(*merges, JoinPath(path, "merges")));
  }
  return m;
}

Status BpeModel::ParseVocab(const Json& vocab, std::string_view path) {
  if (!vocab.is_object()) return FieldError(path, "expected an object {token: id}");
  if (vocab.size() > kMaxVocabEntries) return FieldError(path, "more than 4M entries");
  int64_t max_id = -1;
  vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    if (token.size() > kMaxTokenBytes) return FieldError(path, "token longer than 1 KiB");
    ASSIGN_OR_RETURN(const int64_t id,
                     IntValue(id_json, JoinPath(path, token.substr(0, 64)), 0, kMaxTokenId - 1));
    vocab_.emplace(token, static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string_view());
  // With duplicate ids the reference's reverse map is arbitrary; keep the first in key order.
  for (const auto& [token, id] : vocab_) {
    std::string_view& slot = id_to_token_[static_cast<size_t>(id)];
    if (slot.data() == nullptr || token < slot) slot = token;
  }
  return OkStatus();
}

Status BpeModel::ParseMerges(const Json& merges, std::string_view path) {
  if (!merges.is_array()) return FieldError(path, "expected an array");
  if (merges.size() > kMaxVocabEntries) return FieldError(path, "more than 4M entries");
  merges_.reserve(merges.size());
  std::string left;
  std::string right;
  for (size_t i = 0; i < merges.size(); ++i) {
    const Json& entry = merges[i];
    const std::string where = std::string(path) + "[" + std::to_string(i) + "]";
    if (entry.is_string()) {
      // Legacy "a b": exactly one space, as the reference requires.
      const std::string& s = entry.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return FieldError(where, "expected \"left right\" with exactly one space");
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (entry.is_array() && entry.size() == 2 && entry[0].is_string() &&
               entry[1].is_string()) {
      left = entry[0].get<std::string>();
      right = entry[1].get<std::string>();
    } else {
      return FieldError(where, "expected \"left right\" or [\"left\", \"right\"]");
    }
    const int32_t a = TokenId(left);
    const int32_t b = TokenId(right);
    if (a < 0 || b < 0) return FieldError(where, "merge token not in the vocab");
    const size_t prefix = continuing_subword_prefix_.size();
    if (right.size() < prefix) return FieldError(where, "merge token shorter than the prefix");
    const int32_t merged = TokenId(left + right.substr(prefix));
    if (merged < 0) return FieldError(where, "merged token not in the vocab");
    // A repeated pair takes its last rank, as the reference's HashMap collect does.
    merges_[PairKey(a, b)] = MergeInfo{static_cast<int32_t>(i), merged};
  }
  return OkStatus();
}

int32_t BpeModel::TokenId(std::string_view token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::string_view BpeModel::TokenText(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return {};
  return id_to_token_[static_cast<size_t>(id)];
}

const BpeModel::MergeInfo* BpeModel::FindMerge(int32_t left, int32_t right) const {
  auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t id = TokenId(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kCacheShards];
  if (cacheable) {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.words.find(word);
    if (it != shard.words.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out->size();
  MergeWord(word, out);
  if (cacheable) {
    std::vector<int32_t> ids(out->begin() + static_cast<std::ptrdiff_t>(first), out->end());
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.words.size() >= kCacheEntriesPerShard) shard.words.clear();
    shard.words.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>* out) const {
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&symbols](int32_t id, size_t len) {
    const int32_t n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back({id, n - 1, -1, static_cast<uint32_t>(len)});
  };
  // Pending unk: (id, byte length); -1 id when none. Mirrors merge_word's fuse_unk handling,
  // including its order quirk (a pending unk is only flushed by the next in-vocab character).
  int32_t pending_unk = -1;
  size_t pending_len = 0;
  std::string affixed;
  for (size_t i = 0; i < word.size();) {
    const int len = DecodeUtf8At(word, i).len;
    std::string_view s = word.substr(i, len);
    const bool is_first = i == 0;
    const bool is_last = i + len == word.size();
    if ((!is_first && !continuing_subword_prefix_.empty()) ||
        (is_last && !end_of_word_suffix_.empty())) {
      affixed.clear();
      if (!is_first) affixed += continuing_subword_prefix_;
      affixed += s;
      if (is_last) affixed += end_of_word_suffix_;
      s = affixed;
    }
    i += len;
    const int32_t id = TokenId(s);
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk, pending_len);
        pending_unk = -1;
      }
      add(id, static_cast<size_t>(len));
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char ch : s) all = all && byte_ids_[static_cast<uint8_t>(ch)] >= 0;
      if (all) {
        for (char ch : s) add(byte_ids_[static_cast<uint8_t>(ch)], 1);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (pending_unk >= 0 && fuse_unk_) {
        pending_len += static_cast<size_t>(len);
      } else {
        if (pending_unk >= 0) add(pending_unk, pending_len);
        pending_unk = unk_id_;
        pending_len = static_cast<size_t>(len);
      }
    }
  }
  if (pending_unk >= 0) add(pending_unk, pending_len);

  std::priority_queue<QueuedMerge, std::vector<QueuedMerge>, MergeOrder> queue;
  for (size_t p = 0; p + 1 < symbols.size(); ++p) {
    if (const MergeInfo* m = FindMerge(symbols[p].id, symbols[p + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(p), m->new_id});
    }
  }
  while (!queue.empty()) {
    const QueuedMerge top = queue.top();
    queue.pop();
    Symbol& cur = symbols[static_cast<size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t next_pos = cur.next;
    const Symbol right = symbols[static_cast<size_t>(next_pos)];
    // Skip entries made stale by an earlier merge of either symbol.
    const MergeInfo* still = FindMerge(cur.id, right.id);
    if (still == nullptr || still->new_id != top.new_id) continue;
    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[static_cast<size_t>(next_pos)].len = 0;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (cur.prev >= 0) {
      if (const MergeInfo* m = FindMerge(symbols[static_cast<size_t>(cur.prev)].id, cur.id)) {
        queue.push({m->rank, cur.prev, m->new_id});
      }
    }
    if (cur.next >= 0) {
      if (const MergeInfo* m = FindMerge(cur.id, symbols[static_cast<size_t>(cur.next)].id)) {
        queue.push({m->rank, top.pos, m->new_id});
      }
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out->push_back(s.id);
  }
}

}  // namespace hubnode::runtime

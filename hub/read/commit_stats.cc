// What each commit added, for the commits route with stats=1 (docs/http-api.md "JSON API"): the
// files it added or changed against its first parent, and the raw bytes of their chunks that the
// comparison set (the parent's files and the files of the base models its card names) does not
// hold — what the commit cost the store, as a fine-tune's dedup against its base
// shows it.
#include <set>
#include <unordered_set>

#include "hub/read/handlers.h"
#include "verify/license.h"

namespace hubnode::hub {
namespace {

// Commits of a page that get figures, and the chunks one commit's figure may read (its changed
// files and the comparison set together); past that the commit's figure is left out.
constexpr size_t kMaxStatCommits = 20;
constexpr size_t kMaxStatChunks = 200000;
// Base models of one card looked at, and the largest card read.
constexpr size_t kMaxBases = 16;
constexpr uint64_t kMaxCard = 1 << 20;
// Chunk lists kept for the page (a parent's files are the next commit's): at most this many chunks.
constexpr size_t kMaxCachedChunks = 1000000;

struct ChunkIdHash {
  size_t operator()(const ChunkId& id) const {
    size_t h = 0;
    for (size_t i = 0; i < sizeof h; ++i) h = (h << 8) | id.bytes()[i];
    return h;  // the id is a SHA-256: any 8 of its bytes are uniform
  }
};

// Chunk lists of files by content (a file record is keyed by its SHA-256), shared by the commits
// of one page.
class ChunkLists {
 public:
  explicit ChunkLists(store::Store* st) : st_(st) {}
  // The chunks of `f`; valid until the next call. Error when the store cannot list them.
  Result<const std::vector<store::FileChunk>*> Of(const store::FileEntry& f) {
    auto it = lists_.find(f.sha256);
    if (it != lists_.end()) return &it->second;
    ASSIGN_OR_RETURN(auto chunks, st_->ListChunks(f));
    if (cached_ + chunks.size() > kMaxCachedChunks) {
      lists_.clear();
      cached_ = 0;
    }
    cached_ += chunks.size();
    return &(lists_[f.sha256] = std::move(chunks));
  }

 private:
  store::Store* st_;
  std::map<Sha256Digest, std::vector<store::FileChunk>> lists_;
  size_t cached_ = 0;
};

}  // namespace

std::vector<GitOid> Handlers::VisibleBases(const store::RepoId& repo, const GitOid& commit,
                                           const std::optional<Principal>& who) {
  std::vector<GitOid> out;
  auto readme = store_->StatFile(commit, "README.md");
  if (!readme.ok() || readme->size > kMaxCard) return out;
  auto reader = store_->OpenFile(*readme);
  if (!reader.ok()) return out;
  auto text = (*reader)->ReadToString(0, readme->size);
  if (!text.ok()) return out;
  std::set<std::string> seen;
  for (const std::string& name : verify::ReadModelCard(*text).base_model) {
    if (seen.size() >= kMaxBases || !seen.insert(name).second) continue;
    auto id = store::RepoId::Parse(name);
    if (!id.ok() || *id == repo) continue;
    // As the lineage route: a private base the caller may not read is absent, exactly as a base
    // this node lacks, so the figure never tells that it exists.
    auto info = store_->GetRepo(*id);
    if (!info.ok() || (info->visibility == store::Visibility::kPrivate && !CanRead(who, *info))) continue;
    auto head = store_->Resolve(*id, "HEAD");
    if (head.ok()) out.push_back(*head);
  }
  return out;
}

void Handlers::AddCommitStats(const store::RepoId& repo, std::span<const store::CommitInfo> commits,
                              const std::optional<Principal>& who, json& entries) {
  ChunkLists lists(store_);
  for (size_t i = 0; i < commits.size() && i < kMaxStatCommits && i < entries.size(); ++i) {
    const store::CommitInfo& c = commits[i];
    auto files = store_->ListFiles(c.id);
    if (!files.ok()) continue;
    // The comparison set: the first parent's files and the files of the bases its card names
    // (a fine-tune uploaded onto a repo's first commit is measured against its base too).
    std::vector<store::FileEntry> compare;
    std::string compared_with = "nothing";
    size_t parent_files = 0;
    if (!c.parents.empty()) {
      auto parent = store_->ListFiles(c.parents[0]);
      if (!parent.ok()) continue;
      compare = std::move(*parent);
      parent_files = compare.size();
      compared_with = "parent";
    }
    for (const GitOid& base : VisibleBases(repo, c.id, who)) {
      auto base_files = store_->ListFiles(base);
      if (!base_files.ok()) continue;
      compare.insert(compare.end(), base_files->begin(), base_files->end());
      compared_with = c.parents.empty() ? "base" : "parent+base";
    }
    // Changed: added, or at a path whose content differs from the parent's.
    std::map<std::string_view, Sha256Digest> before;
    for (size_t k = 0; k < parent_files; ++k) before.emplace(compare[k].path, compare[k].sha256);
    size_t budget = kMaxStatChunks;
    bool over = false;
    std::unordered_set<ChunkId, ChunkIdHash> held;
    for (const auto& f : compare) {
      auto chunks = lists.Of(f);
      if (!chunks.ok() || (*chunks)->size() > budget) {
        over = true;
        break;
      }
      budget -= (*chunks)->size();
      for (const auto& ch : **chunks) held.insert(ch.id);
    }
    uint64_t changed_files = 0, changed_bytes = 0, new_bytes = 0;
    std::unordered_set<ChunkId, ChunkIdHash> counted;
    for (const auto& f : *files) {
      if (over) break;
      auto b = before.find(f.path);
      if (b != before.end() && b->second == f.sha256) continue;
      ++changed_files;
      changed_bytes += f.size;
      auto chunks = lists.Of(f);
      if (!chunks.ok() || (*chunks)->size() > budget) {
        over = true;
        break;
      }
      budget -= (*chunks)->size();
      for (const auto& ch : **chunks) {
        if (!held.contains(ch.id) && counted.insert(ch.id).second) new_bytes += ch.size;
      }
    }
    if (over) continue;  // too large to measure here (or unreadable): no figure rather than a wrong one
    entries[i]["hubnode"] = {{"changedFiles", changed_files}, {"changedBytes", changed_bytes},
                             {"newBytes", new_bytes}, {"comparedWith", compared_with}};
  }
}

}  // namespace hubnode::hub

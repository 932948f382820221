// Mark-and-sweep garbage collection (docs/store-format.md "Garbage collection").
#include <algorithm>
#include <unordered_set>

#include "store/store_impl.h"

namespace hubnode::store {
Result<GcResult> StoreImpl::CollectGarbage() {
  // No ref moves while we mark and sweep; imports keep writing (pinned) chunks meanwhile.
  std::lock_guard<std::mutex> lock(commit_mu_);
  std::unordered_set<GitOid, DigestHash> live_objects;
  std::unordered_set<Sha256Digest, DigestHash> live_files;
  std::unordered_set<ChunkId, DigestHash> live_chunks;
  const uint64_t mark_limit = std::max<uint64_t>(1, options_.gc_mark_chunks);
  uint64_t chunk_refs = 0;
  bool partitioned = false;

  // Mark.
  ASSIGN_OR_RETURN(auto repos, ListRepos());
  std::vector<GitOid> commits;
  for (const auto& r : repos) {
    ASSIGN_OR_RETURN(auto refs, ListRefs(r.id));
    for (const auto& ref : refs) commits.push_back(ref.commit);
  }
  std::vector<GitOid> trees;
  while (!commits.empty()) {
    GitOid c = commits.back();
    commits.pop_back();
    if (!live_objects.insert(c).second) continue;
    ASSIGN_OR_RETURN(CommitInfo ci, GetCommit(c));
    trees.push_back(ci.tree);
    for (const auto& p : ci.parents) commits.push_back(p);
  }
  while (!trees.empty()) {
    GitOid t = trees.back();
    trees.pop_back();
    if (!live_objects.insert(t).second) continue;
    ASSIGN_OR_RETURN(StoredObject o, GetObject(t, "tree"));
    ASSIGN_OR_RETURN(auto entries, DecodeTree(o.body));
    for (const auto& e : entries) {
      if (e.mode == kModeTree) {
        trees.push_back(e.oid);
        continue;
      }
      if (!live_objects.insert(e.oid).second) continue;
      ASSIGN_OR_RETURN(FileEntry f, EntryFor(e.name, e));
      if (!live_files.insert(f.sha256).second) continue;
      ASSIGN_OR_RETURN(FileRecord rec, GetFileRecord(f.sha256));
      chunk_refs += rec.chunks.size();
      if (partitioned) continue;
      for (const auto& c : rec.chunks) live_chunks.insert(c.id);
      if (live_chunks.size() > mark_limit) {
        // Too many to hold: the chunks are marked again below, one range of ids at a time.
        partitioned = true;
        std::unordered_set<ChunkId, DigestHash>().swap(live_chunks);
      }
    }
  }

  // Sweep.
  GcResult result;
  auto batch = db_->NewBatch();
  auto flush = [&]() -> Status {
    if (batch.Count() == 0) return OkStatus();
    RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
    batch = db_->NewBatch();
    return OkStatus();
  };
  std::vector<std::string> dead;
  RETURN_IF_ERROR(db_->Scan(Cf::kObjects, "", [&](std::string_view k, std::string_view) {
    auto oid = GitOid::FromBytes(k);
    if (!oid.ok() || !live_objects.count(*oid)) dead.emplace_back(k);
    return true;
  }));
  for (const auto& k : dead) batch.Delete(Cf::kObjects, k);
  result.objects_deleted = dead.size();
  dead.clear();
  RETURN_IF_ERROR(db_->Scan(Cf::kExperts, "", [&](std::string_view k, std::string_view) {
    auto oid = GitOid::FromBytes(k.substr(0, 20));
    if (!oid.ok() || !live_objects.count(*oid)) dead.emplace_back(k);
    return true;
  }));
  for (const auto& k : dead) batch.Delete(Cf::kExperts, k);
  dead.clear();
  RETURN_IF_ERROR(db_->Scan(Cf::kFiles, "", [&](std::string_view k, std::string_view) {
    auto d = Sha256Digest::FromBytes(k);
    if (!d.ok() || !live_files.count(*d)) dead.emplace_back(k);
    return true;
  }));
  for (const auto& k : dead) batch.Delete(Cf::kFiles, k);
  result.files_deleted = dead.size();
  dead.clear();
  RETURN_IF_ERROR(flush());

  // Chunks, in 1 pass when the live ids fit options_.gc_mark_chunks, else in `parts` passes over
  // ranges of the ids' first byte, each marking only its range (memory: the limit; cost: reading
  // the live file records once per pass).
  unsigned parts = 1;
  while (partitioned && parts < 256 && chunk_refs / parts > mark_limit) parts *= 2;
  if (partitioned) parts = std::max(parts, 2u);
  result.mark_passes = parts;
  for (unsigned part = 0; part < parts; ++part) {
    const unsigned lo = part * (256 / parts), hi = lo + 256 / parts;
    if (partitioned) {
      std::unordered_set<ChunkId, DigestHash>().swap(live_chunks);
      for (const Sha256Digest& sha : live_files) {
        ASSIGN_OR_RETURN(FileRecord rec, GetFileRecord(sha));
        for (const auto& c : rec.chunks) {
          const unsigned first = static_cast<uint8_t>(c.id.view()[0]);
          if (first >= lo && first < hi) live_chunks.insert(c.id);
        }
      }
    }
    std::vector<std::pair<ChunkId, uint32_t>> candidates;
    Status err;
    auto visit = [&](std::string_view k, std::string_view v) {
      auto id = ChunkId::FromBytes(k);
      auto m = DecodeChunkMeta(v);
      if (!id.ok() || !m.ok()) {
        err = DataLossError("corrupt chunk meta record");
        return false;
      }
      if (live_chunks.count(*id)) {
        ++result.chunks_kept;
      } else {
        candidates.emplace_back(*id, m->stored_len);
      }
      return true;
    };
    if (parts == 1) {
      RETURN_IF_ERROR(db_->Scan(Cf::kChunkMeta, "", visit));
    } else {
      for (unsigned b = lo; b < hi && err.ok(); ++b) {
        RETURN_IF_ERROR(db_->Scan(Cf::kChunkMeta, std::string(1, static_cast<char>(b)), visit));
      }
    }
    RETURN_IF_ERROR(err);
    for (const auto& [id, stored] : candidates) {
      if (options_.tier_reader) {
        // A reader's records of the writer's chunks stay: only the writer knows what is dead.
        ASSIGN_OR_RETURN(bool tiered, db_->Has(Cf::kDefault, TierLocKey(id)));
        if (tiered) {
          ++result.chunks_kept;
          continue;
        }
      }
      {
        // Decide and delete under the pin lock, so an import cannot pin this chunk, see it present
        // and rely on it between our check and our delete.
        std::lock_guard<std::mutex> pin_lock(pins_.mu());
        if (pins_.IsPinned(id)) {
          ++result.chunks_kept;
          continue;
        }
        auto b = db_->NewBatch();
        b.Delete(Cf::kChunks, id.view());
        b.Delete(Cf::kChunkMeta, id.view());
        b.Delete(Cf::kDefault, TierLocKey(id));
        b.Delete(Cf::kDefault, TierCacheKey(id));
        RETURN_IF_ERROR(db_->Write(b, /*sync=*/false));
        tier_cache_.Remove(id);
      }
      ++result.chunks_deleted;
      result.bytes_freed += stored;
    }
  }
  RETURN_IF_ERROR(SweepPacks(&result));
  if (result.chunks_deleted > 0 || result.objects_deleted > 0) RETURN_IF_ERROR(db_->Compact());
  return result;
}

}  // namespace hubnode::store

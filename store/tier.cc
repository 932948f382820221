// The chunk tier (docs/store-format.md "Chunk tier"): its keys, the local cache, and StoreImpl's
// tier methods (the location records and the pack format are in records.cc).
#include "store/tier.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "base/hex.h"
#include "base/log.h"
#include "store/codec.h"
#include "store/store_impl.h"

namespace hubnode::store {

std::string TierLocKey(const ChunkId& id) { return std::string(kTierLocPrefix) + std::string(id.view()); }
std::string TierCacheKey(const ChunkId& id) { return std::string(kTierCachePrefix) + std::string(id.view()); }

std::vector<ChunkId> TierCache::Add(const ChunkId& id, uint32_t length, uint64_t budget) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.first);
  } else {
    lru_.push_front(id);
    index_[id] = {lru_.begin(), length};
    bytes_ += length;
  }
  std::vector<ChunkId> evict;
  while (bytes_ > budget && !lru_.empty()) {
    ChunkId victim = lru_.back();
    lru_.pop_back();
    bytes_ -= index_[victim].second;
    index_.erase(victim);
    evict.push_back(victim);
  }
  return evict;
}

void TierCache::Touch(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it != index_.end()) lru_.splice(lru_.begin(), lru_, it->second.first);
}

void TierCache::Remove(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return;
  bytes_ -= it->second.second;
  lru_.erase(it->second.first);
  index_.erase(it);
}

bool TierCache::Contains(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.count(id) > 0;
}

uint64_t TierCache::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

uint64_t TierCache::count() {
  std::lock_guard<std::mutex> lock(mu_);
  return index_.size();
}

// ---- the store's side: packs uploaded before any record names them, tiered chunks read back
// by range and checked, the bounded local cache, moving local chunks to the tier, sweeping packs.


Status StoreImpl::LoadTierCache() {
  std::vector<ChunkId> evict;
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, kTierCachePrefix, [&](std::string_view k, std::string_view v) {
    auto id = ChunkId::FromBytes(k.substr(kTierCachePrefix.size()));
    if (id.ok() && v.size() == 4) {
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i) len |= uint32_t{static_cast<uint8_t>(v[i])} << (8 * i);
      for (const ChunkId& victim : tier_cache_.Add(*id, len, options_.chunk_cache_bytes)) evict.push_back(victim);
    }
    return true;
  }));
  // A smaller bound than last time applies at once.
  if (evict.empty() || db_->read_only()) return OkStatus();
  auto batch = db_->NewBatch();
  for (const ChunkId& victim : evict) {
    batch.Delete(Cf::kChunks, victim.view());
    batch.Delete(Cf::kDefault, TierCacheKey(victim));
  }
  return db_->Write(batch, /*sync=*/false);
}

Status StoreImpl::CheckWritable() const {
  if (!options_.tier_reader || options_.replica_writes) return OkStatus();
  const std::string where = tier() ? tier()->Describe() : std::string("its bucket");
  return FailedPreconditionError("this node reads the chunks a writer node puts in " + where +
                                 " and writes nothing of its own; send writes to the writer (a reader "
                                 "takes the writer's commits with `hubnode follow` or `pull --experts all`)");
}

namespace {

constexpr std::string_view kWriterControl = "writer";

// The claim object: "hubnode-writer 1" then "key value" lines (store, host, data, since).
std::string ClaimField(std::string_view claim, std::string_view field) {
  size_t at = 0;
  while (at < claim.size()) {
    size_t end = claim.find('\n', at);
    if (end == std::string_view::npos) end = claim.size();
    std::string_view line = claim.substr(at, end - at);
    if (line.size() > field.size() && line.substr(0, field.size()) == field && line[field.size()] == ' ') {
      return std::string(line.substr(field.size() + 1, 256));
    }
    at = end + 1;
  }
  return "";
}

}  // namespace

Result<std::string> StoreImpl::StoreId() {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kDefault, kStoreIdKey));
  if (v && v->size() == 32) return *v;
  std::random_device rd;
  std::string raw;
  for (int i = 0; i < 4; ++i) {
    uint32_t w = rd();
    raw.append(reinterpret_cast<const char*>(&w), 4);
  }
  const std::string id = HexEncode(raw);
  auto batch = db_->NewBatch();
  batch.Put(Cf::kDefault, kStoreIdKey, id);
  RETURN_IF_ERROR(db_->Write(batch, /*sync=*/true));
  return id;
}

Status StoreImpl::CheckWriterClaim(bool take_if_none, bool explicit_claim) {
  ChunkTier* t = tier();
  if (!t) return FailedPreconditionError("no chunk tier (start with --chunks s3://bucket/prefix)");
  std::lock_guard<std::mutex> lock(claim_mu_);
  ASSIGN_OR_RETURN(std::string id, StoreId());
  auto claim = t->GetControl(kWriterControl, 64 << 10);
  if (!claim.ok() && claim.status().code() != StatusCode::kUnavailable) {
    // Not one of ours (too large, refused): nobody's claim, which only --force replaces.
    return DataLossError("the writer claim of " + t->Describe() + " cannot be read (" + claim.status().message() +
                         "): replace it with `tier claim --force` once its writer, if any, is stopped");
  }
  if (!claim.ok()) {
    return UnavailableError("cannot read the writer claim of " + t->Describe() + ": " + claim.status().message());
  }
  if (!*claim) {
    if (!take_if_none) {
      return NotFoundError("no writer has claimed " + t->Describe() +
                           " (its packs may be another store's): on the writer, run `hubnode --chunks " +
                           t->Describe() + " tier claim`, then gc");
    }
    if (!explicit_claim) {
      // A first upload claims a prefix only when every pack there is this store's: packs of a
      // writer from before claims existed must not become this store's orphans.
      ASSIGN_OR_RETURN(auto packs, t->ListPacks("", ""));
      uint64_t foreign = 0;
      for (const auto& p : packs) {
        ASSIGN_OR_RETURN(bool ours, db_->Has(Cf::kDefault, std::string(kTierPackPrefix) + p.name));
        foreign += ours ? 0 : 1;
      }
      if (foreign > 0) {
        return FailedPreconditionError(t->Describe() + " holds " + std::to_string(foreign) +
                                       " packs this store did not write, and no writer has claimed it: if this store "
                                       "is its writer, run `hubnode --chunks " + t->Describe() +
                                       " tier claim`; if not, start it with --chunks-reader");
      }
    }
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const std::string mine = "hubnode-writer 1\nstore " + id + "\nhost " + host + "\ndata " + options_.data_dir +
                             "\nsince " + std::to_string(std::time(nullptr)) + "\n";
    RETURN_IF_ERROR(t->PutControl(kWriterControl, mine).WithContext("claiming " + t->Describe()));
    // Read back: of two stores claiming at once, the one whose claim stayed is the writer.
    ASSIGN_OR_RETURN(claim, t->GetControl(kWriterControl, 64 << 10));
    if (!*claim) return UnavailableError("the writer claim of " + t->Describe() + " vanished");
  }
  const std::string holder = ClaimField(**claim, "store");
  if (holder == id) return OkStatus();
  return FailedPreconditionError(
      t->Describe() + " is written by another store (host " + ClaimField(**claim, "host") + ", data " +
      ClaimField(**claim, "data") + ", since " + ClaimField(**claim, "since") + "); this store (" + options_.data_dir +
      ") may only read it: start it with --chunks-reader, or, once that writer is stopped for good, take the bucket "
      "over with `hubnode --chunks " + t->Describe() + " tier claim --force`");
}

Status StoreImpl::ClaimTier(bool force) {
  ChunkTier* t = tier();
  if (!t) return FailedPreconditionError("no chunk tier (start with --chunks s3://bucket/prefix)");
  RETURN_IF_ERROR(CheckWritable());
  if (options_.tier_reader) {
    return FailedPreconditionError("a reader (--chunks-reader) cannot be the writer: start it without --chunks-reader");
  }
  if (db_->read_only()) return FailedPreconditionError("the store is read-only");
  Status s = CheckWriterClaim(/*take_if_none=*/true, /*explicit_claim=*/true);
  // --force replaces another store's claim, or one that cannot be read; never acts on an object
  // store that cannot be reached.
  if (s.ok() || !force || s.code() == StatusCode::kUnavailable) return s;
  {
    std::lock_guard<std::mutex> lock(claim_mu_);
    ASSIGN_OR_RETURN(std::string id, StoreId());
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const std::string mine = "hubnode-writer 1\nstore " + id + "\nhost " + host + "\ndata " + options_.data_dir +
                             "\nsince " + std::to_string(std::time(nullptr)) + "\n";
    RETURN_IF_ERROR(t->PutControl(kWriterControl, mine).WithContext("claiming " + t->Describe()));
  }
  return CheckWriterClaim(/*take_if_none=*/false, /*explicit_claim=*/true);
}

Status StoreImpl::UploadPack(PackBuilder pack) {
  if (pack.empty()) return OkStatus();
  ChunkTier* t = tier();
  if (!t) return FailedPreconditionError("no chunk tier");
  if (options_.tier_reader) {
    return FailedPreconditionError("this node reads the chunks a writer node puts in " + t->Describe() +
                                   "; send writes to the writer");
  }
  // Asked before every pack (one small GET per ~32 MiB): a writer whose prefix was taken over
  // stops uploading at once.
  RETURN_IF_ERROR(CheckWriterClaim(/*take_if_none=*/true, /*explicit_claim=*/false));
  const std::string name = NewPackName();
  {
    std::lock_guard<std::mutex> lock(packs_mu_);
    packs_in_flight_.insert(name);
  }
  std::vector<PackBuilder::Entry> entries = pack.entries();
  std::string bytes = pack.Finish();
  // The pack first: no record names it until it is whole in the object store, so a crash leaves
  // at most an unnamed pack, which GC deletes.
  Status s = t->PutPack(name, bytes);
  if (s.ok()) {
    auto batch = db_->NewBatch();
    for (const auto& e : entries) {
      batch.Put(Cf::kChunkMeta, e.id.view(), EncodeChunkMeta(e.meta));
      batch.Put(Cf::kDefault, TierLocKey(e.id), EncodeChunkLoc(ChunkLoc{name, e.offset, e.length}));
    }
    batch.Put(Cf::kDefault, std::string(kTierPackPrefix) + name, "");
    s = db_->Write(batch, /*sync=*/false);
  }
  {
    std::lock_guard<std::mutex> lock(packs_mu_);
    packs_in_flight_.erase(name);
  }
  return s.WithContext("pack " + name + " to " + t->Describe());
}

void StoreImpl::CacheRecord(const ChunkId& id, std::string_view record) {
  const uint64_t budget = options_.chunk_cache_bytes;
  if (budget == 0 || record.size() > budget || db_->read_only()) return;
  auto batch = db_->NewBatch();
  batch.Put(Cf::kChunks, id.view(), record);
  std::string len;
  for (int i = 0; i < 4; ++i) len.push_back(static_cast<char>(record.size() >> (8 * i)));
  batch.Put(Cf::kDefault, TierCacheKey(id), len);
  for (const ChunkId& victim : tier_cache_.Add(id, static_cast<uint32_t>(record.size()), budget)) {
    if (victim == id) continue;
    batch.Delete(Cf::kChunks, victim.view());
    batch.Delete(Cf::kDefault, TierCacheKey(victim));
  }
  // A cache that cannot be written (a full disk) only costs a refetch.
  Status s = db_->Write(batch, /*sync=*/false);
  if (!s.ok()) {
    tier_cache_.Remove(id);
    LOG(Warning) << "chunk cache: " << s.message();
  }
}

Result<std::optional<TieredChunk>> StoreImpl::FetchTiered(const ChunkId& id) {
  for (;;) {
    PendingRecord pending;
    std::promise<Result<std::optional<std::string>>> mine;
    {
      std::lock_guard<std::mutex> lock(fetching_mu_);
      auto it = fetching_.find(id);
      if (it != fetching_.end()) {
        pending = it->second;
      } else {
        fetching_.emplace(id, mine.get_future().share());
      }
    }
    if (pending.valid()) {
      // Another reader is fetching it: its answer, checked here as any record from the bucket.
      Result<std::optional<std::string>> rec = pending.get();
      if (!rec.ok() && rec.status().code() == StatusCode::kAborted) continue;  // a run that could not be read as one
      if (!rec.ok()) return rec.status();
      if (!*rec) return std::optional<TieredChunk>();
      ASSIGN_OR_RETURN(std::string raw, DecodeVerifiedChunk(id, **rec));
      return std::optional<TieredChunk>(TieredChunk{std::move(**rec), std::move(raw)});
    }
    Result<std::optional<TieredChunk>> got = InternalError("unset");
    try {
      got = FetchTieredAlone(id);
    } catch (...) {
      // Waiters are answered and the chunk is free to be read again, whatever was thrown.
      mine.set_value(InternalError("reading chunk " + id.hex() + " failed"));
      std::lock_guard<std::mutex> lock(fetching_mu_);
      fetching_.erase(id);
      throw;
    }
    if (!got.ok()) {
      mine.set_value(got.status());
    } else if (!*got) {
      mine.set_value(std::optional<std::string>());
    } else {
      mine.set_value(std::optional<std::string>((*got)->record));
    }
    std::lock_guard<std::mutex> lock(fetching_mu_);
    fetching_.erase(id);
    return got;
  }
}

Result<std::optional<TieredChunk>> StoreImpl::FetchTieredAlone(const ChunkId& id) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kDefault, TierLocKey(id)));
    if (!v && tier()) {
      // Perhaps in a pack another node wrote since we last looked (or, failing that, named by a
      // clock behind ours).
      RETURN_IF_ERROR(IndexPacks(/*full=*/false, /*urgent=*/false));
      ASSIGN_OR_RETURN(v, db_->Get(Cf::kDefault, TierLocKey(id)));
      if (!v) {
        RETURN_IF_ERROR(IndexPacks(/*full=*/true, /*urgent=*/false));
        ASSIGN_OR_RETURN(v, db_->Get(Cf::kDefault, TierLocKey(id)));
      }
    }
    if (!v) return std::optional<TieredChunk>();
    ASSIGN_OR_RETURN(ChunkLoc loc, DecodeChunkLoc(*v));
    ChunkTier* t = tier();
    if (!t) {
      return UnavailableError("chunk " + id.hex() + " is in the object store, and this node was started without --chunks");
    }
    auto rec = t->ReadPack(loc.pack, loc.offset, loc.length);
    if (!rec.ok() && rec.status().code() == StatusCode::kNotFound && attempt == 0) {
      // The writer's GC moved it (rewrote a mostly dead pack) or deleted it. The writer reads its
      // new location again; a reader forgets the stale one and finds the pack it moved to by
      // indexing (IndexPacks records no location over one it holds).
      if (options_.tier_reader && !db_->read_only()) {
        auto batch = db_->NewBatch();
        batch.Delete(Cf::kDefault, TierLocKey(id));
        batch.Delete(Cf::kDefault, std::string(kTierPackPrefix) + loc.pack);
        RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
        // At once, not at the next look: this read wants the new pack now (each stale location
        // is forgotten once, so this costs one look per chunk the writer's GC moved).
        RETURN_IF_ERROR(IndexPacks(/*full=*/false, /*urgent=*/true));
      }
      continue;
    }
    if (!rec.ok() && rec.status().code() == StatusCode::kNotFound) {
      return DataLossError("chunk " + id.hex() + ": its pack is missing from " + t->Describe());
    }
    if (!rec.ok()) {
      return UnavailableError("chunk " + id.hex() + " is in " + t->Describe() +
                              ", which cannot be read now: " + rec.status().message());
    }
    // Bytes from the object store are untrusted: decoded and hashed against the id, as a peer's.
    auto raw = DecodeVerifiedChunk(id, *rec);
    if (!raw.ok()) {
      LOG(Warning) << "chunk " << id.hex() << " from " << t->Describe() << " is damaged: " << raw.status().message();
      return DataLossError("chunk " + id.hex() + " from the object store does not match its id");
    }
    CacheRecord(id, *rec);
    return std::optional<TieredChunk>(TieredChunk{std::move(*rec), std::move(*raw)});
  }
  return InternalError("unreachable");
}

Result<std::vector<std::string>> StoreImpl::FetchTieredRun(const std::vector<ChunkId>& ids) {
  ChunkTier* t = tier();
  if (!t || ids.empty()) return InvalidArgumentError("no run");
  // Registered as being read (the run, or nothing when one of them is read already); every
  // waiter gets an answer however this returns.
  std::vector<std::promise<Result<std::optional<std::string>>>> mine(ids.size());
  {
    std::lock_guard<std::mutex> lock(fetching_mu_);
    for (size_t k = 0; k < ids.size(); ++k) {
      if (fetching_.count(ids[k])) return InvalidArgumentError("being read");
      for (size_t j = 0; j < k; ++j) {
        if (ids[j] == ids[k]) return InvalidArgumentError("a chunk twice in one run");
      }
    }
    for (size_t k = 0; k < ids.size(); ++k) fetching_.emplace(ids[k], mine[k].get_future().share());
  }
  std::vector<std::string> records(ids.size());
  Result<std::vector<std::string>> got = InternalError("unset");
  try {
    got = FetchTieredRunAlone(ids, &records);
  } catch (...) {
    got = InvalidArgumentError("reading the run failed");  // read one by one instead
  }
  for (size_t k = 0; k < ids.size(); ++k) {
    if (got.ok()) {
      mine[k].set_value(std::optional<std::string>(std::move(records[k])));
    } else if (got.status().code() == StatusCode::kUnavailable) {
      mine[k].set_value(got.status());
    } else {
      // A run that could not be read as one: Aborted sends each waiter to read its chunk alone.
      mine[k].set_value(AbortedError("read alone"));
    }
  }
  std::lock_guard<std::mutex> lock(fetching_mu_);
  for (const ChunkId& id : ids) fetching_.erase(id);
  return got;
}

Result<std::vector<std::string>> StoreImpl::FetchTieredRunAlone(const std::vector<ChunkId>& ids,
                                                                std::vector<std::string>* records) {
  ChunkTier* t = tier();
  std::vector<ChunkLoc> locs;
  uint64_t begin = UINT64_MAX, end = 0, sum = 0;
  for (const ChunkId& id : ids) {
    ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kDefault, TierLocKey(id)));
    if (!v) return InvalidArgumentError("not tiered");
    ASSIGN_OR_RETURN(ChunkLoc loc, DecodeChunkLoc(*v));
    if (!locs.empty() && loc.pack != locs.front().pack) return InvalidArgumentError("not in one pack");
    begin = std::min(begin, loc.offset);
    end = std::max(end, loc.offset + loc.length);
    sum += loc.length;
    locs.push_back(std::move(loc));
  }
  // An import's pool writes a file's chunks into its pack nearly in order (in the order they
  // finish): one GET may carry a few records of other chunks, no more than the run itself.
  if (end - begin > 2 * sum) return InvalidArgumentError("not close together");
  auto bytes = t->ReadPack(locs.front().pack, begin, end - begin);
  if (!bytes.ok() && bytes.status().code() == StatusCode::kNotFound) return InvalidArgumentError("pack moved");
  if (!bytes.ok()) {
    return UnavailableError("chunks of " + t->Describe() + " cannot be read now: " + bytes.status().message());
  }
  std::vector<std::string> raws;
  for (size_t k = 0; k < ids.size(); ++k) {
    std::string_view record = std::string_view(*bytes).substr(locs[k].offset - begin, locs[k].length);
    auto raw = DecodeVerifiedChunk(ids[k], record);
    if (!raw.ok()) return InvalidArgumentError("a chunk of the run is damaged");  // one by one says which
    CacheRecord(ids[k], record);
    (*records)[k] = std::string(record);
    raws.push_back(std::move(*raw));
  }
  return raws;
}

Result<TierPushResult> StoreImpl::PushToTier() {
  if (!tier()) return FailedPreconditionError("no chunk tier (start with --chunks s3://bucket/prefix)");
  if (db_->read_only()) return FailedPreconditionError("the store is read-only");
  RETURN_IF_ERROR(CheckWritable());
  std::vector<std::pair<ChunkId, ChunkMeta>> local;
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kChunkMeta, "", [&](std::string_view k, std::string_view v) {
    auto id = ChunkId::FromBytes(k);
    auto meta = DecodeChunkMeta(v);
    if (!id.ok() || !meta.ok()) {
      err = DataLossError("corrupt chunk meta record");
      return false;
    }
    local.emplace_back(*id, *meta);
    return true;
  }));
  RETURN_IF_ERROR(err);
  TierPushResult result;
  PackBuilder pack;
  std::vector<std::pair<ChunkId, uint32_t>> pushed;
  auto upload = [&]() -> Status {
    if (pack.empty()) return OkStatus();
    result.bytes += pack.bytes();
    ++result.packs;
    RETURN_IF_ERROR(UploadPack(std::move(pack)));
    pack = PackBuilder();
    // The local copies stay as cached copies, least recently pushed out first.
    for (const auto& [id, len] : pushed) {
      auto batch = db_->NewBatch();
      std::string l;
      for (int i = 0; i < 4; ++i) l.push_back(static_cast<char>(len >> (8 * i)));
      batch.Put(Cf::kDefault, TierCacheKey(id), l);
      for (const ChunkId& victim : tier_cache_.Add(id, len, options_.chunk_cache_bytes)) {
        batch.Delete(Cf::kChunks, victim.view());
        batch.Delete(Cf::kDefault, TierCacheKey(victim));
        ++result.evicted_chunks;
      }
      RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
    }
    pushed.clear();
    return OkStatus();
  };
  for (const auto& [id, meta] : local) {
    ASSIGN_OR_RETURN(bool tiered, db_->Has(Cf::kDefault, TierLocKey(id)));
    if (tiered) continue;
    ASSIGN_OR_RETURN(auto rec, db_->Get(Cf::kChunks, id.view()));
    if (!rec) continue;
    // Only verified bytes go to the object store.
    if (!DecodeVerifiedChunk(id, *rec).ok()) {
      LOG(Warning) << "tier push: chunk " << id.hex() << " is damaged here; left alone (hubnode fsck)";
      continue;
    }
    pack.Add(id, meta, *rec);
    pushed.emplace_back(id, static_cast<uint32_t>(rec->size()));
    ++result.chunks;
    if (pack.bytes() >= options_.pack_bytes) RETURN_IF_ERROR(upload());
  }
  RETURN_IF_ERROR(upload());
  if (result.evicted_chunks > 0) RETURN_IF_ERROR(db_->Compact());
  return result;
}

Status StoreImpl::DeleteDefaultKey(const std::string& key) {
  auto batch = db_->NewBatch();
  batch.Delete(Cf::kDefault, key);
  return db_->Write(batch, /*sync=*/false);
}

namespace {

// Whether pack `a` was named after pack `b` (names without a plausible time count as oldest: a
// GC rewrite, the only way one chunk lands in two packs, always makes a time-named pack).
bool NewerPack(std::string_view a, std::string_view b) {
  const int64_t limit = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count() + kPackClockSkewMs;
  auto time_of = [&](std::string_view n) {
    const int64_t ms = PackNameMillis(n);
    return ms > limit ? -1 : ms;
  };
  return time_of(a) > time_of(b);
}

}  // namespace

Status StoreImpl::RecordLocation(Db::Batch& batch, const ChunkId& id, const ChunkMeta& meta, const ChunkLoc& loc) {
  ASSIGN_OR_RETURN(auto cur, db_->Get(Cf::kDefault, TierLocKey(id)));
  if (cur) {
    // A location held already stays unless this pack is newer (the writer's GC moved the chunk).
    auto old = DecodeChunkLoc(*cur);
    if (old.ok() && (old->pack == loc.pack || !NewerPack(loc.pack, old->pack))) return OkStatus();
  } else {
    ASSIGN_OR_RETURN(bool has_meta, db_->Has(Cf::kChunkMeta, id.view()));
    if (!has_meta) batch.Put(Cf::kChunkMeta, id.view(), EncodeChunkMeta(meta));
  }
  batch.Put(Cf::kDefault, TierLocKey(id), EncodeChunkLoc(loc));
  return OkStatus();
}

Status StoreImpl::IndexPacks(bool full, bool urgent) {
  ChunkTier* t = tier();
  if (!t || db_->read_only()) return OkStatus();
  // Only a reader lists the whole bucket again: a writer knows its own packs.
  if (full && !options_.tier_reader) return OkStatus();
  std::lock_guard<std::mutex> lock(index_mu_);
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  const int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
  // Pack names begin with the time they were named: a look lists only those named from an hour
  // before the newest one indexed (an upload may finish well after packs named later) up to a
  // little past this clock (names past that are old random ones or a wrong clock's: a full
  // listing finds them), not the bucket.
  ASSIGN_OR_RETURN(auto listed_v, db_->Get(Cf::kDefault, kTierListedKey));
  const std::string watermark = listed_v.value_or("");
  const std::string after = full ? std::string() : watermark;
  const std::string until = full || watermark.empty() ? std::string() : PackNamePrefix(wall + kPackClockSkewMs);
  if (full) {
    if (last_full_index_ms_ != 0 && now - last_full_index_ms_ < kFullIndexEveryMs) return OkStatus();
  } else if (!urgent) {
    if (last_index_ms_ != 0 && now - last_index_ms_ < 1000) return OkStatus();
  }
  last_index_ms_ = now;
  if (watermark.empty() && options_.tier_reader && !manifests_read_) {
    // A reader's first look: the writer's manifests first, so that only packs written since the
    // last one need their own index read.
    RETURN_IF_ERROR(ReadManifests());
    manifests_read_ = true;
  }
  Result<std::vector<ChunkTier::PackInfo>> packs = std::vector<ChunkTier::PackInfo>();
  if (after.empty()) {
    packs = t->ListPacks("", "");
  } else {
    // One listing per shard digit, from the watermark to the clock.
    for (char shard : std::string_view("0123456789abcdef")) {
      auto part = t->ListPacks(shard + after, until.empty() ? std::string() : shard + until);
      if (!part.ok()) {
        packs = part.status();
        break;
      }
      for (auto& p : *part) packs->push_back(std::move(p));
    }
  }
  if (!packs.ok()) return UnavailableError("cannot list the packs of " + t->Describe() + ": " + packs.status().message());
  if (after.empty()) last_full_index_ms_ = now;
  std::vector<ChunkTier::PackInfo> fresh;
  for (const auto& p : *packs) {
    ASSIGN_OR_RETURN(bool seen, db_->Has(Cf::kDefault, std::string(kTierPackPrefix) + p.name));
    if (!seen && p.size >= kPackFooter) fresh.push_back(p);
  }
  // Footers, then indexes, of the new packs, kIndexReads at a time and at most kIndexBytesInFlight
  // of indexes at once (the GETs a new reader of a large bucket waits on). Untrusted like every
  // byte of the bucket: a lie about where a chunk is shows when its bytes fail to hash to its id.
  constexpr size_t kIndexReads = 16;
  constexpr uint64_t kIndexBytesInFlight = uint64_t{128} << 20;
  struct Indexed {
    Status status;  // not OK: the object store failed (the pass stops)
    uint32_t count = 0;
    uint64_t index_offset = 0;
    bool bad = false;  // a malformed footer or index: skipped, not marked seen (tried again later)
    std::vector<PackIndexEntry> entries;
  };
  // Runs fn(k) for k in [first, end), one thread each; an exception becomes that item's status.
  auto parallel = [](size_t first, size_t end, std::vector<Indexed>& got, const std::function<void(size_t)>& fn) {
    auto guarded = [&](size_t k) {
      try {
        fn(k);
      } catch (const std::exception& e) {
        got[k].status = ResourceExhaustedError(std::string("reading a pack index: ") + e.what());
      }
    };
    std::vector<std::thread> threads;
    for (size_t k = first + 1; k < end; ++k) {
      try {
        threads.emplace_back(guarded, k);
      } catch (const std::exception&) {
        guarded(k);  // no thread to be had: here, in turn
      }
    }
    if (first < end) guarded(first);
    for (auto& th : threads) th.join();
  };
  for (size_t begin = 0; begin < fresh.size(); begin += kIndexReads) {
    const size_t n = std::min(kIndexReads, fresh.size() - begin);
    std::vector<Indexed> got(n);
    parallel(0, n, got, [&](size_t k) {
      const ChunkTier::PackInfo& p = fresh[begin + k];
      auto footer = t->ReadPack(p.name, p.size - kPackFooter, kPackFooter);
      if (!footer.ok()) {
        got[k].status = footer.status();
        return;
      }
      auto f = DecodePackFooter(*footer, p.size);
      if (!f.ok()) {
        LOG(Warning) << "pack " << p.name << " in " << t->Describe() << ": " << f.status().message() << "; skipped";
        got[k].bad = true;
        return;
      }
      std::tie(got[k].count, got[k].index_offset) = *f;
    });
    // Indexes in groups whose bytes stay under the bound (one at least).
    for (size_t g = 0; g < n;) {
      size_t e = g;
      uint64_t bytes = 0;
      while (e < n && (e == g || bytes + uint64_t{got[e].count} * kPackIndexEntry <= kIndexBytesInFlight)) {
        bytes += got[e].status.ok() && !got[e].bad ? uint64_t{got[e].count} * kPackIndexEntry : 0;
        ++e;
      }
      parallel(g, e, got, [&](size_t k) {
        if (!got[k].status.ok() || got[k].bad) return;
        const ChunkTier::PackInfo& p = fresh[begin + k];
        auto index = t->ReadPack(p.name, got[k].index_offset, uint64_t{got[k].count} * kPackIndexEntry);
        if (!index.ok()) {
          got[k].status = index.status();
          return;
        }
        auto entries = DecodePackIndex(*index, got[k].count, got[k].index_offset);
        if (!entries.ok()) {
          LOG(Warning) << "pack " << p.name << " in " << t->Describe() << ": " << entries.status().message() << "; skipped";
          got[k].bad = true;
          return;
        }
        got[k].entries = std::move(*entries);
      });
      g = e;
    }
    for (size_t k = 0; k < n; ++k) {
      const std::string& name = fresh[begin + k].name;
      if (!got[k].status.ok()) {
        return UnavailableError("cannot read the index of pack " + name + " in " + t->Describe() + ": " +
                                got[k].status.message());
      }
      if (got[k].bad) continue;
      auto batch = db_->NewBatch();
      for (const auto& e : got[k].entries) {
        RETURN_IF_ERROR(RecordLocation(batch, e.id, e.meta, ChunkLoc{name, e.offset, e.length}));
      }
      batch.Put(Cf::kDefault, std::string(kTierPackPrefix) + name, "");
      RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
    }
  }
  // The next look starts an hour before the newest pack named (not past this clock; a bucket
  // with no time-named pack starts from this clock).
  int64_t newest = -1;
  for (const auto& p : *packs) {
    const int64_t ms = PackNameMillis(p.name);
    if (ms <= wall + kPackClockSkewMs) newest = std::max(newest, std::min(ms, wall));
  }
  if (newest < 0) newest = wall;
  const std::string next = PackNamePrefix(std::max<int64_t>(0, newest - kPackUploadWindowMs));
  if (next > watermark) {
    auto batch = db_->NewBatch();
    batch.Put(Cf::kDefault, kTierListedKey, next);
    RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
  }
  return OkStatus();
}

Status StoreImpl::ScanLocations(const std::function<Status(const ChunkId&, const ChunkLoc&)>& fn) {
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, kTierLocPrefix, [&](std::string_view k, std::string_view v) {
    auto id = ChunkId::FromBytes(k.substr(kTierLocPrefix.size()));
    auto loc = DecodeChunkLoc(v);
    if (!id.ok() || !loc.ok()) {
      err = DataLossError("corrupt chunk location record");
      return false;
    }
    err = fn(*id, *loc);
    return err.ok();
  }));
  return err;
}

Status StoreImpl::SweepPacks(GcResult* result) {
  ChunkTier* t = tier();
  // Only the writer deletes packs: a reader's records do not say what the writer still names,
  // nor do those of a store that lost (or never held) the writer claim.
  if (!t || options_.tier_reader) return OkStatus();
  // Listed first, then the packs in flight, then the records: a pack listed and not in flight had
  // its records written before the scans below read them.
  ASSIGN_OR_RETURN(auto packs, t->ListPacks("", ""));
  Status claimed = CheckWriterClaim(/*take_if_none=*/false, /*explicit_claim=*/false);
  if (claimed.code() == StatusCode::kNotFound) {
    // No pack at all, or packs uploaded before writers claimed their prefix: left alone.
    if (!packs.empty()) LOG(Warning) << "gc: packs left alone: " << claimed.message();
    return OkStatus();
  }
  RETURN_IF_ERROR(claimed);
  std::set<std::string> in_flight;
  {
    std::lock_guard<std::mutex> lock(packs_mu_);
    in_flight = packs_in_flight_;
  }
  // Live bytes per pack: memory in packs, not chunks (a pass over the location records).
  std::unordered_map<std::string, uint64_t> live_bytes;
  for (const auto& p : packs) live_bytes.emplace(p.name, 0);
  RETURN_IF_ERROR(ScanLocations([&](const ChunkId&, const ChunkLoc& loc) {
    auto it = live_bytes.find(loc.pack);
    if (it != live_bytes.end()) it->second += loc.length + 1;  // + 1: a pack of empty records is live
    return OkStatus();
  }));
  std::vector<const ChunkTier::PackInfo*> rewrite;
  for (const auto& p : packs) {
    if (in_flight.count(p.name)) continue;
    const uint64_t live = live_bytes[p.name];
    if (live == 0) {
      RETURN_IF_ERROR(t->DeletePack(p.name));
      RETURN_IF_ERROR(DeleteDefaultKey(std::string(kTierPackPrefix) + p.name));
      RETURN_IF_ERROR(DeleteDefaultKey(std::string(kTierManifestedPrefix) + p.name));
      ++result->packs_deleted;
      result->pack_bytes_freed += p.size;
    } else if (live * 2 < p.size) {
      rewrite.push_back(&p);
    }
  }
  // Mostly dead packs: their live records move to a new pack (written and named first), then they
  // go. Their records are gathered kRewriteBatch packs per pass, so memory stays bounded.
  constexpr size_t kRewriteBatch = 64;
  for (size_t begin = 0; begin < rewrite.size(); begin += kRewriteBatch) {
    std::map<std::string, std::vector<std::pair<ChunkId, ChunkLoc>>> live;
    for (size_t k = begin; k < std::min(rewrite.size(), begin + kRewriteBatch); ++k) live[rewrite[k]->name];
    RETURN_IF_ERROR(ScanLocations([&](const ChunkId& id, const ChunkLoc& loc) {
      auto it = live.find(loc.pack);
      if (it != live.end()) it->second.emplace_back(id, loc);
      return OkStatus();
    }));
    for (size_t k = begin; k < std::min(rewrite.size(), begin + kRewriteBatch); ++k) {
      const ChunkTier::PackInfo& p = *rewrite[k];
      PackBuilder fresh;
      for (const auto& [id, loc] : live[p.name]) {
        ASSIGN_OR_RETURN(std::string rec, t->ReadPack(p.name, loc.offset, loc.length));
        if (!DecodeVerifiedChunk(id, rec).ok()) return DataLossError("chunk " + id.hex() + " in pack " + p.name + " is damaged");
        ASSIGN_OR_RETURN(auto meta, db_->Get(Cf::kChunkMeta, id.view()));
        if (!meta) continue;
        ASSIGN_OR_RETURN(ChunkMeta m, DecodeChunkMeta(*meta));
        fresh.Add(id, m, rec);
      }
      uint64_t fresh_bytes = fresh.bytes();
      RETURN_IF_ERROR(UploadPack(std::move(fresh)));
      RETURN_IF_ERROR(t->DeletePack(p.name));
      RETURN_IF_ERROR(DeleteDefaultKey(std::string(kTierPackPrefix) + p.name));
      RETURN_IF_ERROR(DeleteDefaultKey(std::string(kTierManifestedPrefix) + p.name));
      ++result->packs_rewritten;
      result->pack_bytes_freed += p.size - std::min(p.size, fresh_bytes);
    }
  }
  return WriteManifests(result);
}

Status StoreImpl::WriteManifests(GcResult* result) {
  ChunkTier* t = tier();
  // The packs earlier manifests cover (one record each).
  std::unordered_set<std::string> covered;
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, kTierManifestedPrefix, [&](std::string_view k, std::string_view) {
    covered.emplace(k.substr(kTierManifestedPrefix.size()));
    return true;
  }));
  // The live locations in the other packs, in record order, as many manifests as they fill. No
  // manifest says it covers a pack until every entry of this pass is written: the covers go last,
  // so a reader that marks a covered pack as indexed has every one of its entries.
  std::unordered_set<std::string> packs;
  ManifestBuilder m;
  auto flush = [&](ManifestBuilder& done) -> Status {
    if (done.empty()) return OkStatus();
    RETURN_IF_ERROR(t->PutControl(std::string(kManifestDir) + NewPackName(), done.Finish()));
    ++result->manifests_written;
    done = ManifestBuilder();
    return OkStatus();
  };
  RETURN_IF_ERROR(ScanLocations([&](const ChunkId& id, const ChunkLoc& loc) -> Status {
    if (covered.count(loc.pack)) return OkStatus();
    auto meta_v = db_->Get(Cf::kChunkMeta, id.view());
    if (!meta_v.ok() || !*meta_v) return OkStatus();  // a chunk being deleted
    auto meta = DecodeChunkMeta(**meta_v);
    if (!meta.ok()) return DataLossError("corrupt chunk meta record");
    if (m.bytes() + kManifestEntry > kMaxManifestBytes) RETURN_IF_ERROR(flush(m));
    m.Add(loc.pack, id, loc.offset, loc.length, *meta);
    packs.insert(loc.pack);
    return OkStatus();
  }));
  for (const std::string& p : packs) {
    if (m.bytes() + 16 > kMaxManifestBytes) RETURN_IF_ERROR(flush(m));
    m.Cover(p);
  }
  RETURN_IF_ERROR(flush(m));
  auto batch = db_->NewBatch();
  for (const std::string& p : packs) batch.Put(Cf::kDefault, std::string(kTierManifestedPrefix) + p, "");
  return db_->Write(batch, /*sync=*/false);
}

Status StoreImpl::ReadManifests() {
  ChunkTier* t = tier();
  auto names = t->ListControls(kManifestDir);
  if (!names.ok()) return UnavailableError("cannot list the manifests of " + t->Describe() + ": " + names.status().message());
  std::vector<std::string> covers;
  bool skipped = false;
  for (const std::string& name : *names) {
    auto bytes = t->GetControl(name, kMaxManifestBytes);
    if (!bytes.ok() && bytes.status().code() != StatusCode::kResourceExhausted) {
      return UnavailableError("cannot read " + name + " of " + t->Describe() + ": " + bytes.status().message());
    }
    // Untrusted like a pack index: a malformed one is skipped (the packs' own indexes remain).
    auto m = bytes.ok() && *bytes ? DecodeManifest(**bytes) : Result<Manifest>(DataLossError("unreadable"));
    if (!m.ok()) {
      LOG(Warning) << name << " in " << t->Describe() << ": " << m.status().message() << "; skipped";
      skipped = true;
      continue;
    }
    auto batch = db_->NewBatch();
    for (const ManifestEntry& e : m->entries) {
      RETURN_IF_ERROR(RecordLocation(batch, e.entry.id, e.entry.meta, ChunkLoc{e.pack, e.entry.offset, e.entry.length}));
    }
    RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
    for (auto& p : m->packs) covers.push_back(std::move(p));
  }
  // Covered packs count as indexed once every manifest is read (a pack's entries may span
  // several), and only when none was skipped (a skipped one may hold some of their entries:
  // those packs are then indexed from their own index).
  if (skipped) covers.clear();
  auto batch = db_->NewBatch();
  for (const std::string& p : covers) batch.Put(Cf::kDefault, std::string(kTierPackPrefix) + p, "");
  return db_->Write(batch, /*sync=*/false);
}

}  // namespace hubnode::store

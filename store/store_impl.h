// The RocksDB-backed Store (private to store/). Split by responsibility:
// store_impl.cc (open, repos, refs, commits, trees, tensors, stats), ingest.cc (imports),
// reader.cc (file reads and export), gc.cc (garbage collection).
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "base/thread_pool.h"
#include "store/db.h"
#include "store/git_objects.h"
#include "store/records.h"
#include "store/store.h"
#include "store/tier.h"

namespace hubnode::store {

// Chunk ids an import in flight depends on; GC never deletes a pinned chunk.
class PinSet {
 public:
  void Pin(const ChunkId& id);
  void UnpinAll(const std::vector<ChunkId>& ids);
  // REQUIRES: mu() held.
  bool IsPinned(const ChunkId& id);
  std::mutex& mu() { return mu_; }

 private:
  std::mutex mu_;
  std::unordered_map<ChunkId, int, DigestHash> pins_;
};

// A tiered chunk read back: its record as stored and its verified raw bytes.
struct TieredChunk {
  std::string record;
  std::string raw;
};

class StoreImpl final : public Store {
 public:
  StoreImpl(const Options& options, std::unique_ptr<Db> db);

  Result<ImportResult> ImportDirectory(const std::string& dir, const RepoId& repo,
                                       const ImportOptions& options) override;
  Result<std::vector<RepoInfo>> ListRepos() override;
  Result<RepoInfo> GetRepo(const RepoId& repo) override;
  Result<std::vector<RefInfo>> ListRefs(const RepoId& repo) override;
  Status SetVisibility(const RepoId& repo, Visibility visibility) override;
  Result<GitOid> Resolve(const RepoId& repo, std::string_view revision) override { return Resolve(repo, revision, false); }
  Result<std::optional<std::string>> GetRepoData(const RepoId& repo, std::string_view key) override;
  Status PutRepoData(const RepoId& repo,
                     const std::vector<std::pair<std::string, std::optional<std::string>>>& puts) override;
  Result<std::vector<std::pair<std::string, std::string>>> ListRepoData(const RepoId& repo,
                                                                        std::string_view prefix) override;
  Result<GitOid> ResolveStaged(const RepoId& repo, std::string_view revision) override {
    return Resolve(repo, revision, true);
  }
  Result<GitOid> Resolve(const RepoId& repo, std::string_view revision, bool staged);
  Status UpdateRef(const RepoId& repo, std::string_view ref, const GitOid& expected,
                   const GitOid& target) override;
  Result<CommitInfo> GetCommit(const GitOid& commit) override;
  Result<std::vector<CommitInfo>> Log(const GitOid& commit, size_t limit) override;
  Result<std::vector<FileEntry>> ListFiles(const GitOid& commit) override;
  Result<FileEntry> StatFile(const GitOid& commit, std::string_view path) override;
  Result<TreeItem> StatPath(const GitOid& commit, std::string_view path) override;
  Result<std::vector<TreeItem>> ListTree(const GitOid& commit, std::string_view path, bool recursive) override;
  Result<std::unique_ptr<FileReader>> OpenFile(const FileEntry& file) override;
  Result<std::vector<FileChunk>> ListChunks(const FileEntry& file) override;
  Result<std::string> ReadChunkRecord(const ChunkId& id) override;
  Result<std::vector<bool>> HasChunks(const std::vector<ChunkId>& ids) override;
  Result<std::vector<TensorInfo>> ListTensors(const FileEntry& file) override;
  Result<TensorLocation> FindTensor(const GitOid& commit, std::string_view name) override;
  Result<ExpertIndex> GetExpertIndex(const GitOid& commit) override;
  Status Export(const GitOid& commit, const std::string& dir) override;
  Result<Stats> GetStats() override;
  uint64_t DiskBytes() override { return db_->DiskBytes(); }
  Result<GcResult> CollectGarbage() override;
  Status CreateRepo(const RepoId& repo, Visibility visibility) override;
  Result<FsckReport> Fsck(const FsckOptions& options) override;
  Result<uint32_t> Backup(const std::string& dir) override { return db_->Backup(dir); }
  bool read_only() const override { return db_->read_only(); }
  // Stores `raw` as chunk `id` over whatever record is there (a damaged one). REQUIRES: raw
  // hashes to id.
  Status ReplaceChunk(const ChunkId& id, std::string_view raw, ElementKindHint hint);
  // A name a new repo may take: not one the HF URL scheme routes elsewhere (ReservedRepoName),
  // and no existing repo's (other than `except`) when case is ignored. REQUIRES: commit_mu_ held.
  Status CheckNewRepoName(const RepoId& repo, const RepoId* except);
  Status DeleteRepo(const RepoId& repo) override;
  Status MoveRepo(const RepoId& from, const RepoId& to) override;
  Result<std::unique_ptr<ContentWriter>> NewContentWriter(const ContentSpec& spec) override;
  Result<bool> HasContent(const Sha256Digest& sha256, uint64_t size) override;
  Result<WrittenCommit> WriteCommit(const CommitSpec& spec) override;
  Status PutChunk(const ChunkId& id, std::string_view raw, ElementKindHint kind) override;
  Result<GitObject> ReadGitObject(const GitOid& oid) override;
  Result<bool> HasGitObject(const GitOid& oid) override;
  Status PutGitObject(const GitOid& oid, GitObjectType type, std::string_view body) override;
  Status IndexCommit(const GitOid& commit) override;
  Status RecordContent(const PartialContent& content) override;
  void SetChunkSource(ChunkSource source) override;
  Result<TierPushResult> PushToTier() override;
  Status ClaimTier(bool force) override;

  // ---- the chunk tier (tier.cc) ----
  ChunkTier* tier() const { return options_.chunk_tier.get(); }
  // FailedPrecondition on a reader node (Options::tier_reader) not opened to replicate: it writes
  // nothing of its own. Every public write method asks first.
  Status CheckWritable() const;
  // OK when this store holds the tier's writer claim. Without a claim in the bucket: takes it when
  // `take_if_none` (a first upload), else NotFound (GC never claims: packs without a claim may be
  // another writer's). Another store's claim: FailedPrecondition naming it.
  // `explicit_claim` (tier claim): take it even when the bucket holds packs this store did not
  // write; a first upload does not.
  Status CheckWriterClaim(bool take_if_none, bool explicit_claim);
  // This store's id (16 random bytes, hex), made at first use.
  Result<std::string> StoreId();
  // Uploads `pack`, then records where each of its chunks is (meta and location).
  Status UploadPack(PackBuilder pack);
  // A tiered chunk's record from the object store, checked against `id` and cached; nullopt when
  // the chunk is not tiered. Unavailable when the object store is down; DataLoss when its bytes
  // are not the chunk's.
  // Concurrent calls for one chunk (many clients of one file, cold cache) share one GET.
  Result<std::optional<TieredChunk>> FetchTiered(const ChunkId& id);
  // Tiered chunks lying close together in one pack (spanning at most twice their size), read with
  // one ranged GET, each checked against its id and cached; their raw bytes in order.
  // InvalidArgument when they are not such a run, or one of them is being read already (read
  // them one by one: FetchTiered shares that read); Unavailable when the object store is down.
  Result<std::vector<std::string>> FetchTieredRun(const std::vector<ChunkId>& ids);
  // Keeps a tiered chunk's record in the local cache, evicting the least recently used past the
  // bound.
  void CacheRecord(const ChunkId& id, std::string_view record);
  TierCache& tier_cache() { return tier_cache_; }
  Status LoadTierCache();
  // GC's part for packs (GcResult's pack counts).
  Status SweepPacks(GcResult* result);
  // Calls fn for every chunk location record, in key order, until it returns an error (returned).
  Status ScanLocations(const std::function<Status(const ChunkId&, const ChunkLoc&)>& fn);
  // Records where the chunks of packs this store has not seen yet are (from the packs' indexes in
  // the object store: a reader node learns the writer's chunks so). Lists the packs named since
  // the last look's watermark, at most once a second (`urgent`: now); `full`: the whole bucket,
  // readers only, at most once in ten minutes (a pack named by a clock behind the watermark's,
  // e.g. a promoted writer's).
  Status IndexPacks(bool full, bool urgent);
  // Records that `id` is at `loc` in `batch` (and its meta when absent), unless a location held
  // already names the same pack or a newer one.
  Status RecordLocation(Db::Batch& batch, const ChunkId& id, const ChunkMeta& meta, const ChunkLoc& loc);
  // The writer, at GC: manifests of the live locations in packs no manifest covers yet.
  Status WriteManifests(GcResult* result);
  // A reader's first look: every manifest's locations recorded, the packs they cover marked
  // indexed.
  Status ReadManifests();
  Status DeleteDefaultKey(const std::string& key);
  std::shared_ptr<const ChunkSource> chunk_source();

  // Helpers shared by the implementation files.
  Result<StoredObject> GetObject(const GitOid& oid, std::string_view what);
  Result<FileRecord> GetFileRecord(const Sha256Digest& content);
  Result<std::optional<GitOid>> ReadRef(const RepoId& repo, std::string_view ref);
  Result<FileEntry> EntryFor(const std::string& path, const TreeEntry& e);
  // Calls fn for each file under tree `oid` (prefix = its path).
  Status WalkTree(const GitOid& oid, const std::string& prefix,
                  const std::function<Status(const std::string&, const TreeEntry&)>& fn);
  // Full ref name for a branch given as "main" or "refs/heads/main".
  static Result<std::string> BranchRef(std::string_view branch);

  const Options& options() const { return options_; }
  Db& db() { return *db_; }
  ThreadPool& pool() { return pool_; }
  PinSet& pins() { return pins_; }
  std::mutex& commit_mu() { return commit_mu_; }

 private:
  Options options_;
  std::unique_ptr<Db> db_;
  ThreadPool pool_;
  PinSet pins_;
  // Held while a ref moves and for the whole of a GC, so GC sees a stable set of refs.
  std::mutex commit_mu_;
  std::mutex source_mu_;
  std::shared_ptr<const ChunkSource> source_;
  TierCache tier_cache_;
  std::mutex packs_mu_;
  std::set<std::string> packs_in_flight_;  // uploading, not yet named by any record: GC keeps them
  std::mutex index_mu_;                     // held while packs are indexed
  int64_t last_index_ms_ = 0;
  int64_t last_full_index_ms_ = 0;
  bool manifests_read_ = false;  // under index_mu_
  std::mutex claim_mu_;  // held while the writer claim is read and written
  // Tiered chunk records being read from the object store, and the answer each reader of the same
  // chunk waits for meanwhile (the record; nullopt: not tiered).
  using PendingRecord = std::shared_future<Result<std::optional<std::string>>>;
  std::mutex fetching_mu_;
  std::unordered_map<ChunkId, PendingRecord, DigestHash> fetching_;
  Result<std::optional<TieredChunk>> FetchTieredAlone(const ChunkId& id);
  Result<std::vector<std::string>> FetchTieredRunAlone(const std::vector<ChunkId>& ids, std::vector<std::string>* records);
};

// Validates a ref name: refs/heads/X, refs/tags/X or refs/pr/N, git's rules for X.
Status ValidateRefName(std::string_view ref);
// Validates a repo-relative file path (no empty, '.' or '..' components, no control bytes).
// Parses an LFS pointer file. nullopt if `text` is not one.
struct LfsPointerInfo {
  Sha256Digest oid;
  uint64_t size;
};
std::optional<LfsPointerInfo> ParseLfsPointer(std::string_view text);

}  // namespace hubnode::store

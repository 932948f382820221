// store: hubnode's content-addressed, git-compatible model store on RocksDB.
//
// A Store holds repos (`ns/name`) with refs (branches, tags, refs/pr/N) pointing at git-compatible
// commits. File contents are split into chunks (tensor-aware for safetensors, content-defined
// otherwise), compressed, and stored once by the SHA-256 of their raw bytes, so a fine-tune that
// keeps a tensor shares that tensor's chunks with its base. The on-disk format is
// docs/store-format.md.
//
// Thread safety: a Store may be used from many threads at once. Imports run concurrently; ref
// updates are serialised and compare-and-swap on the expected old commit. Only one process may
// open a data directory at a time (RocksDB's lock); a second Open fails with Unavailable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "base/status.h"

namespace hubnode::store {

// Where chunk payloads live below RocksDB (docs/store-format.md "Chunk tier"): an object store
// (S3, Ceph RGW, MinIO ...) holding immutable packs of chunk records, each a range-readable object
// with an index. The store names packs (never reusing a name), writes each before any metadata
// names it, and reads chunks back by byte range; every byte read back is untrusted and checked
// against its chunk id. hub/s3 implements it over S3.
//
// Thread safety: every method may be called concurrently.
class ChunkTier {
 public:
  virtual ~ChunkTier() = default;
  // Stores the whole pack `bytes` as pack `name`. Unavailable when the object store is down.
  virtual Status PutPack(std::string_view name, std::string_view bytes) = 0;
  // Exactly `length` bytes at `offset` of pack `name`: NotFound when it is absent, Unavailable
  // when the object store is down or overloaded (after retries).
  virtual Result<std::string> ReadPack(std::string_view name, uint64_t offset, uint64_t length) = 0;
  // Deletes pack `name` (OK when absent).
  virtual Status DeletePack(std::string_view name) = 0;
  struct PackInfo {
    std::string name;
    uint64_t size = 0;
  };
  // The packs in the object store whose names sort after `after` and before `until` (either
  // bound absent when empty), in name order.
  virtual Result<std::vector<PackInfo>> ListPacks(std::string_view after, std::string_view until) = 0;
  // Control objects beside the packs (the writer's claim, manifests): the bytes of `name`
  // (ResourceExhausted past `max_bytes`), nullopt when absent; storing them whole; deleting
  // (OK when absent); the names under `dir` ("manifests/"), in order.
  virtual Result<std::optional<std::string>> GetControl(std::string_view name, uint64_t max_bytes) = 0;
  virtual Status PutControl(std::string_view name, std::string_view bytes) = 0;
  virtual Status DeleteControl(std::string_view name) = 0;
  virtual Result<std::vector<std::string>> ListControls(std::string_view dir) = 0;
  // Where the packs are, for messages ("s3://bucket/prefix"); never a secret.
  virtual std::string Describe() const = 0;
};

struct Options {
  // Directory of the store; created if missing. Default: "./hubdata".
  std::string data_dir = "hubdata";
  // Largest chunk cut from a tensor, in bytes. Default: 1 MiB.
  uint64_t max_chunk_size = 1 << 20;
  // zstd level for chunk payloads. Level 1 compresses bf16 as well as 19 does (specs §5b).
  // Default: 1.
  int zstd_level = 1;
  // Byte-group float tensor data before zstd (bf16/fp16 by 2, fp32 by 4). false = plain zstd
  // only (for comparisons). Default: true.
  bool byte_grouping = true;
  // Compress at all. false stores every chunk raw. Default: true.
  bool compress = true;
  // Threads hashing and compressing chunks during an import. 0 = hardware concurrency.
  // Default: 0.
  unsigned ingest_threads = 0;
  // Disk space kept free for the database's own work; a write that would leave less is refused
  // (ResourceExhausted) and nothing is written. Reads go on; writes work again once space is
  // back. Default: 256 MiB.
  uint64_t min_free_bytes = uint64_t{256} << 20;
  // Open without writing anything (read-only commands). Default: false. A store whose disk is too
  // full to open for writing is opened read-only anyway.
  bool read_only = false;
  // Chunk payloads in an object store below RocksDB; RocksDB keeps every record else and a bounded
  // cache of tiered chunks. shared_ptr: the caller builds the tier and may keep using it (stats,
  // other stores of the same bucket). Default: none (chunks live in RocksDB only).
  std::shared_ptr<ChunkTier> chunk_tier;
  // Stored bytes of tiered chunks kept in the local cache (least recently read go first).
  // Default: 1 GiB.
  uint64_t chunk_cache_bytes = uint64_t{1} << 30;
  // Live chunk ids GC holds in memory at once (~70 bytes each); a store with more is marked in
  // up to 256 passes over ranges of ids, reading its live file records once per pass. Default:
  // 2^24 (about 1 GiB).
  uint64_t gc_mark_chunks = uint64_t{1} << 24;
  // Size (index included) at which a pack being written is closed and uploaded; readers refuse
  // an index over 64 MiB. Default: 32 MiB.
  uint64_t pack_bytes = uint64_t{32} << 20;
  // A reader node of the chunk tier: it reads the packs a writer node uploads (learning where
  // chunks are from the packs' indexes) and never uploads or deletes a pack. It writes nothing of
  // its own: every write (a repo, a ref, a commit, an object, repo data, an import, tier push) is
  // FailedPrecondition, unless `replica_writes`. Chunks fetched to read (a peer's, the bucket's)
  // are cached as on any node. Default: false (the writer).
  bool tier_reader = false;
  // With tier_reader: this store is opened to replicate the writer's commits (`pull`, `follow`),
  // so their metadata writes are allowed; writes that would add chunks are still refused. Default:
  // false.
  bool replica_writes = false;
};

// What `fsck` found: every chunk re-read and re-hashed, every git object re-hashed, every file
// record checked against its chunks.
struct FsckReport {
  uint64_t chunks = 0, chunk_bytes = 0, objects = 0, files = 0;
  std::vector<ChunkId> damaged_chunks;      // unreadable, or not hashing to their id
  std::vector<std::string> damaged_objects;  // git objects (hex id) unreadable or mis-hashed
  std::vector<std::string> damaged_files;    // file records (LFS oid hex) unreadable or inconsistent
  uint64_t missing_chunks = 0;               // referenced but not held (a partly held model)
  std::vector<ChunkId> repaired;             // damaged chunks replaced from the chunk source
  bool clean() const { return damaged_chunks.size() == repaired.size() && damaged_objects.empty() && damaged_files.empty(); }
};

struct FsckOptions {
  // Replace damaged chunks with verified copies from the store's chunk source (peers).
  // Default: false.
  bool repair = false;
  // Progress: chunks checked of the total. Optional.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// A repo name: `name` or `namespace/name`, each part 1-96 of [A-Za-z0-9._-], not starting with
// '.' or '-', without "..".
class RepoId {
 public:
  static Result<RepoId> Parse(std::string_view s);
  const std::string& str() const { return name_; }
  // The namespace ("" for a bare name).
  std::string ns() const { return name_.find('/') == std::string::npos ? "" : name_.substr(0, name_.find('/')); }
  friend auto operator<=>(const RepoId&, const RepoId&) = default;

 private:
  std::string name_;
};

// Whether a name may not be a new repo's: its namespace (or the bare name) is one the URLs of the
// Hugging Face API use for something else (api, datasets, spaces, models) or one this node serves
// (v1, metrics, health, static). Such repos could not be addressed unambiguously.
bool ReservedRepoName(const RepoId& repo);

// A file path inside a repo: relative, '/'-separated, no empty, '.', '..' or '.git' component, no
// control character or backslash, at most kMaxPathBytes in all, components of at most
// kMaxPathComponentBytes (what file systems hold: an export writes every path) and at most
// kMaxPathDepth of them. InvalidArgument naming the rule. Commits, imports and pulls all check it.
inline constexpr size_t kMaxPathBytes = 1024;
inline constexpr size_t kMaxPathComponentBytes = 255;
inline constexpr size_t kMaxPathDepth = 32;
Status ValidatePath(std::string_view path);

enum class Visibility : uint8_t { kPublic = 0, kPrivate = 1, kGated = 2 };

struct Signature {
  std::string name = "hubnode";
  std::string email = "hubnode@localhost";
  int64_t time = 0;       // unix seconds
  int tz_offset_min = 0;  // minutes east of UTC
};

struct CommitInfo {
  GitOid id;
  GitOid tree;
  std::vector<GitOid> parents;
  Signature author;
  Signature committer;
  std::string message;  // as stored, ends with '\n'
  std::string Title() const;  // first line
};

struct FileEntry {
  std::string path;      // '/'-separated, relative to the repo root
  uint64_t size = 0;     // content size (not the pointer's, for LFS files)
  uint32_t mode = 0100644;
  GitOid blob;           // the git blob id (of the pointer file, for LFS)
  bool lfs = false;
  Sha256Digest sha256;   // of the content
  uint64_t pointer_size = 0;  // LFS pointer file size (LFS only)
};

// The (SHA-256, size) an LFS pointer file names; nullopt when `text` is not one.
std::optional<std::pair<Sha256Digest, uint64_t>> ParseLfsPointerText(std::string_view text);

// The Git LFS pointer file text of an LFS file entry (what its git blob holds).
std::string LfsPointerText(const FileEntry& file);

// Whether an import stores this file as Git LFS (over 10 MiB, or HF's default LFS patterns).
bool StoresAsLfs(std::string_view path, uint64_t size);

// A file an import is about to commit, known by its digests before its bytes are here.
struct PlannedFile {
  std::string path;
  uint64_t size = 0;
  std::optional<GitOid> git_blob;       // needed when the file is stored as a git blob
  std::optional<Sha256Digest> sha256;   // needed when it is stored as LFS
};
// The id of the commit ImportDirectory makes from exactly these files (mode 100644), with no
// parent and this author (time included) and message. NotFound when a file lacks the digest its
// stored form needs; InvalidArgument for a bad path.
Result<GitOid> PlanCommitId(const std::vector<PlannedFile>& files, const Signature& author,
                            const std::string& message);

// A tree listing entry: a directory (oid = its git tree) or a file.
struct TreeItem {
  bool is_dir = false;
  std::string path;
  GitOid oid;      // tree id for a directory, blob id for a file
  FileEntry file;  // files only
};

struct FileChunk {
  ChunkId id;           // SHA-256 of the chunk's raw bytes
  uint64_t offset = 0;  // in the file
  uint32_t size = 0;
};

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // absolute offsets in the file
  uint64_t end = 0;
};

struct TensorLocation {
  FileEntry file;
  TensorInfo tensor;
};

inline constexpr uint32_t kSharedExpertIndex = 0xFFFFFFFF;

struct ExpertKey {
  uint32_t layer;
  uint32_t expert;  // kSharedExpertIndex = the layer's shared expert(s)
  friend auto operator<=>(const ExpertKey&, const ExpertKey&) = default;
};

// One byte range of one file that belongs to an expert: a whole per-expert tensor, or an
// expert's slice of a packed [E, ...] tensor.
struct ExpertPart {
  std::string path;
  std::string tensor;
  uint64_t offset = 0;
  uint64_t length = 0;
};

using ExpertIndex = std::map<ExpertKey, std::vector<ExpertPart>>;

struct RefInfo {
  std::string name;  // refs/heads/main, refs/tags/v1, refs/pr/1
  GitOid commit;
};

struct RepoInfo {
  RepoId id;
  int64_t created = 0;
  Visibility visibility = Visibility::kPublic;
  std::string default_branch = "main";
};

struct ImportProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string current_file;
};

struct ImportOptions {
  // Branch to commit to (created if missing): "main", or any full ref name (refs/heads/x,
  // refs/tags/x, refs/pr/N, refs/mirror/<upstream commit>). Default: "main".
  std::string branch = "main";
  // Commit message. Default: "Import <dir>".
  std::string message;
  // Author and committer. time 0 = now.
  Signature author;
  // The commit the branch must point at when the import commits; nullopt = whatever it pointed
  // at when the import started. A zero GitOid = the branch must not exist.
  std::optional<GitOid> expected_parent;
  // Called from the importing thread as bytes are read. May be empty.
  std::function<void(const ImportProgress&)> progress;
  // Visibility of the repo when this import creates it (an existing repo keeps its own).
  // Default: public.
  Visibility visibility = Visibility::kPublic;
};

struct ImportResult {
  GitOid commit;
  bool changed = true;  // false: the tree equals the parent's; no commit was made
  uint64_t files = 0;
  uint64_t bytes = 0;            // logical bytes imported
  uint64_t chunks = 0;           // chunks in the imported files
  uint64_t new_chunks = 0;       // of those, not stored before
  uint64_t new_raw_bytes = 0;    // raw size of the new chunks
  uint64_t new_stored_bytes = 0; // stored (compressed) size of the new chunks
};

struct Stats {
  uint64_t repos = 0, refs = 0, commits = 0, trees = 0, files = 0, chunks = 0;
  uint64_t logical_bytes = 0;      // sum of file sizes over the heads of all refs
  uint64_t file_bytes = 0;         // sum of sizes of distinct file contents
  uint64_t chunk_raw_bytes = 0;    // raw size of distinct chunks
  uint64_t chunk_stored_bytes = 0; // stored size of distinct chunks (record payloads)
  std::map<std::string, uint64_t> chunks_by_codec;
  uint64_t disk_bytes = 0;         // size of the database directory
  // The chunk tier (zero without one): chunks whose records are in packs of the object store and
  // their stored bytes there; of those, the ones also in the local cache; chunks held only here.
  uint64_t remote_chunks = 0, remote_bytes = 0, cached_chunks = 0, cached_bytes = 0;
  uint64_t local_only_chunks = 0, local_only_bytes = 0;
};

// What moving chunks to the tier did (Store::PushToTier).
struct TierPushResult {
  uint64_t chunks = 0, bytes = 0, packs = 0;
  uint64_t evicted_chunks = 0;  // local copies dropped to keep the cache in its bound
};

struct GcResult {
  uint64_t chunks_deleted = 0, bytes_freed = 0, objects_deleted = 0, files_deleted = 0;
  uint64_t chunks_kept = 0;
  // Passes over the chunks (1, or more when the live ids exceed Options::gc_mark_chunks).
  uint32_t mark_passes = 1;
  // The chunk tier: packs deleted (no live chunk left, or orphans of a crash) and rewritten
  // (live fraction under a half), and the object-store bytes that freed.
  uint64_t packs_deleted = 0, packs_rewritten = 0, pack_bytes_freed = 0;
  // Manifests written (the live locations of packs no manifest covered yet).
  uint64_t manifests_written = 0;
};

// Random access to one file's content. Not thread-safe; open one per reader.
class FileReader {
 public:
  virtual ~FileReader() = default;
  virtual uint64_t size() const = 0;
  // Calls sink with consecutive pieces covering [offset, offset+length). OutOfRange if the range
  // is beyond the file; DataLoss if a chunk is missing or corrupt; a sink error is returned as is.
  virtual Status Read(uint64_t offset, uint64_t length,
                      const std::function<Status(std::string_view)>& sink) = 0;
  // Reads the range into a string. REQUIRES: length is small enough to hold in memory.
  Result<std::string> ReadToString(uint64_t offset, uint64_t length);
};

// What streaming one file's content into the store produced.
struct ContentInfo {
  Sha256Digest sha256;
  GitOid git_blob;  // the git blob id of the content; zero unless ContentSpec::git_blob
  uint64_t size = 0;
  uint64_t chunks = 0;
  uint64_t new_chunks = 0;        // chunks the store did not hold before
  uint64_t new_raw_bytes = 0;     // their raw size
  uint64_t new_stored_bytes = 0;  // their stored (compressed) size
};

struct ContentSpec {
  // The file's path in the repo. A `.safetensors` path must hold a valid safetensors file (its
  // header is validated as it arrives); any other content that starts like one is sniffed (its
  // header held until parsed, at most 100 MB) and cut by tensor when it parses, by content if not.
  std::string path;
  uint64_t size = 0;                   // announced size; the content must have exactly this size
  std::optional<Sha256Digest> sha256;  // announced SHA-256 (an LFS oid), checked by Finish
  bool git_blob = false;               // also compute the git blob id (regular files)
};

// Streams one file's content into the store as it arrives (an upload): chunked, compressed and
// hashed like an import. Memory stays bounded whatever the size. Nothing refers to the content
// until a commit names it. Not thread-safe; one per upload.
class ContentWriter {
 public:
  virtual ~ContentWriter() = default;
  // InvalidArgument when the bytes go past the announced size or the safetensors header is bad.
  virtual Status Write(std::string_view bytes) = 0;
  // Checks the size and the SHA-256 against the announced ones and records the content (its
  // file record). InvalidArgument on a mismatch; nothing is recorded then.
  virtual Result<ContentInfo> Finish() = 0;
};

// One change of a commit made through the write API.
struct FileChange {
  enum class Kind : uint8_t { kPut, kDelete, kDeleteFolder };
  Kind kind = Kind::kPut;
  std::string path;
  // kPut only: the content (which the store must hold), its size, and how the tree keeps it.
  Sha256Digest sha256;
  uint64_t size = 0;
  bool lfs = false;
  GitOid git_blob;  // regular (non-LFS) files: the git blob id of the content
};

struct CommitSpec {
  std::optional<GitOid> parent;  // nullopt = a root commit
  std::vector<GitOid> merged;    // further parents: a merge commit (then always written)
  std::vector<FileChange> changes;
  Signature author;              // time 0 = now
  std::string message;
};

struct WrittenCommit {
  GitOid commit;
  bool changed = true;  // false: the tree equals the parent's; `commit` is the parent
  uint64_t files = 0;   // files in the new tree
};

// A git object's type, numbered as in pack files.
enum class GitObjectType : uint8_t { kCommit = 1, kTree = 2, kBlob = 3, kTag = 4 };
std::string_view GitTypeName(GitObjectType type);

struct GitObject {
  GitObjectType type = GitObjectType::kBlob;
  uint64_t size = 0;                 // of the body
  std::string body;                  // commits, trees, inline blobs
  std::optional<FileEntry> content;  // a blob whose content is in the chunk store
};

// How a received chunk's bytes are laid out, for the codec: plain bytes, or 2-/4-byte elements.
enum class ElementKindHint : uint8_t { kBytes, k2Byte, k4Byte };
// The layout an import uses for a tensor dtype: BF16/F16 by 2-byte elements, F32 by 4, else bytes.
ElementKindHint ElementKindForDtype(std::string_view dtype);

// A file this store may hold only in part: its chunk list, from a chunk map the caller trusts.
struct PartialContent {
  std::string path;
  Sha256Digest sha256;
  uint64_t size = 0;
  std::vector<FileChunk> chunks;  // in order, covering [0, size)
};

// Where a reader gets a chunk the store lacks (a partly held model): fetches it (from peers),
// verified against `id`, and returns its raw bytes; Unavailable when nobody can provide it.
// Must be thread-safe.
using ChunkSource = std::function<Result<std::string>(const ChunkId& id, uint32_t raw_len)>;

// Decodes a chunk record received from a peer and checks that its raw bytes hash to `id`.
// DataLoss on a malformed record, a raw size above the chunk limit, or a hash mismatch.
Result<std::string> DecodeVerifiedChunk(const ChunkId& id, std::string_view record);

class Store {
 public:
  // Opens (creating if needed) the store in options.data_dir.
  // Unavailable if another process holds it; FailedPrecondition on an unknown format version.
  static Result<std::unique_ptr<Store>> Open(const Options& options);
  virtual ~Store() = default;

  // Imports the directory `dir` as one commit on `options.branch` of `repo` (created if new).
  // Every safetensors file is validated before anything is written: InvalidArgument names the
  // file, the tensor and the rule, and nothing is stored. FailedPrecondition when the branch moved
  // away from the expected parent. Symlinks and special files are InvalidArgument; `.git`
  // directories are skipped.
  virtual Result<ImportResult> ImportDirectory(const std::string& dir, const RepoId& repo,
                                               const ImportOptions& options) = 0;

  virtual Result<std::vector<RepoInfo>> ListRepos() = 0;
  virtual Result<RepoInfo> GetRepo(const RepoId& repo) = 0;
  virtual Result<std::vector<RefInfo>> ListRefs(const RepoId& repo) = 0;
  // NotFound if the repo does not exist.
  virtual Status SetVisibility(const RepoId& repo, Visibility visibility) = 0;

  // Resolves a revision of `repo`: a branch or tag name, a full ref name (refs/heads/x,
  // refs/tags/x, refs/pr/N), "HEAD" (the default branch), a 40-hex commit reachable from one
  // of the repo's refs, or an upstream commit id this repo mirrors (refs/mirror/<id>). Commits held
  // for review (refs/held/<branch>) never resolve: find them with ListRefs.
  // NotFound otherwise (InvalidArgument for a malformed revision).
  virtual Result<GitOid> Resolve(const RepoId& repo, std::string_view revision) = 0;
  // Resolve as the repo's writers see it: a branch with a commit staged for review
  // (refs/held/<branch>) resolves to that commit, and staged commits are reachable by id.
  virtual Result<GitOid> ResolveStaged(const RepoId& repo, std::string_view revision) = 0;

  // Compare-and-swap of a ref. expected zero = must not exist; new zero = delete.
  // FailedPrecondition if the ref does not hold `expected`; NotFound if `target` is not a commit.
  virtual Status UpdateRef(const RepoId& repo, std::string_view ref, const GitOid& expected,
                           const GitOid& target) = 0;

  virtual Result<CommitInfo> GetCommit(const GitOid& commit) = 0;

  // Small records a repo keeps beside its refs (its discussions), moved and deleted with it. A
  // key is at most 255 bytes, a value at most 1 MiB. NotFound for a repo that does not exist.
  virtual Result<std::optional<std::string>> GetRepoData(const RepoId& repo, std::string_view key) = 0;
  // Writes each (key, value) pair, or deletes the key for nullopt, all at once.
  virtual Status PutRepoData(const RepoId& repo,
                             const std::vector<std::pair<std::string, std::optional<std::string>>>& puts) = 0;
  // The records whose key starts with `prefix`, in key order.
  virtual Result<std::vector<std::pair<std::string, std::string>>> ListRepoData(const RepoId& repo,
                                                                                std::string_view prefix) = 0;
  // First-parent history from `commit`, newest first, at most `limit` entries.
  virtual Result<std::vector<CommitInfo>> Log(const GitOid& commit, size_t limit) = 0;

  // All files of a commit, sorted by path.
  virtual Result<std::vector<FileEntry>> ListFiles(const GitOid& commit) = 0;
  // One file of a commit. NotFound if absent (or a directory).
  virtual Result<FileEntry> StatFile(const GitOid& commit, std::string_view path) = 0;
  // A file or a directory of a commit ("" = the root directory). NotFound if absent.
  virtual Result<TreeItem> StatPath(const GitOid& commit, std::string_view path) = 0;
  // The entries of directory `path` ("" = root), with everything below it when `recursive`
  // (a directory's entry comes before its contents). NotFound if `path` is not a directory.
  virtual Result<std::vector<TreeItem>> ListTree(const GitOid& commit, std::string_view path, bool recursive) = 0;
  virtual Result<std::unique_ptr<FileReader>> OpenFile(const FileEntry& file) = 0;

  // The chunks of a file's content, in order (offsets ascending, sizes summing to the file's).
  // DataLoss when the file's record is missing or corrupt.
  virtual Result<std::vector<FileChunk>> ListChunks(const FileEntry& file) = 0;

  // Peer distribution: a chunk's stored record (codec header + payload, docs/store-format.md),
  // exactly as kept; NotFound when this store lacks the chunk.
  virtual Result<std::string> ReadChunkRecord(const ChunkId& id) = 0;
  // Whether the store holds each chunk (a metadata lookup per id).
  virtual Result<std::vector<bool>> HasChunks(const std::vector<ChunkId>& ids) = 0;

  // The tensor index of a safetensors file (empty for other files).
  virtual Result<std::vector<TensorInfo>> ListTensors(const FileEntry& file) = 0;
  // Finds a tensor by name among the commit's safetensors files.
  virtual Result<TensorLocation> FindTensor(const GitOid& commit, std::string_view name) = 0;
  // The expert index of a commit (empty for a dense model).
  virtual Result<ExpertIndex> GetExpertIndex(const GitOid& commit) = 0;

  // Writes every file of `commit` under `dir` (which must not exist, or be empty).
  virtual Status Export(const GitOid& commit, const std::string& dir) = 0;

  // ---- the write API ----
  // Creates an empty repo (no refs). AlreadyExists if it exists.
  // InvalidArgument for a reserved name (ReservedRepoName); AlreadyExists for a taken name, also
  // when it differs from the new one only in case (as on the Hub). Imports and moves that create a
  // repo follow the same rule.
  virtual Status CreateRepo(const RepoId& repo, Visibility visibility) = 0;
  // Deletes a repo's record and refs; its content stays until GC. NotFound if absent.
  virtual Status DeleteRepo(const RepoId& repo) = 0;
  // Renames a repo (record and refs). NotFound / AlreadyExists.
  virtual Status MoveRepo(const RepoId& from, const RepoId& to) = 0;
  virtual Result<std::unique_ptr<ContentWriter>> NewContentWriter(const ContentSpec& spec) = 0;
  // Whether the store holds a file content of this SHA-256 and size.
  virtual Result<bool> HasContent(const Sha256Digest& sha256, uint64_t size) = 0;
  // ---- partly held models ----
  // Stores one chunk whose raw bytes were received (e.g. from a peer). InvalidArgument unless
  // the bytes hash to `id`. `kind` picks the codec (bf16/fp16 data compresses by byte planes).
  virtual Status PutChunk(const ChunkId& id, std::string_view raw, ElementKindHint kind) = 0;
  // Records a file from its chunk list without needing every chunk: a `.safetensors` file's first
  // chunk (its header) must be held, and the chunk list must be the one this store would cut
  // (InvalidArgument otherwise). The content then counts as held (HasContent), and a commit may
  // name it; reads of its missing chunks go to the chunk source.
  virtual Status RecordContent(const PartialContent& content) = 0;
  // Sets (or clears, with nullptr) where readers fetch missing chunks. Without one, reading a
  // missing chunk is Unavailable. A reader keeps the source it was opened with.
  virtual void SetChunkSource(ChunkSource source) = 0;

  // Checks everything stored (it reads every byte: minutes per 100 GB). With `repair`, damaged
  // chunks are fetched from the chunk source, checked and stored over the damaged ones.
  virtual Result<FsckReport> Fsck(const FsckOptions& options) = 0;
  // Copies the database into the backup directory `dir` (RocksDB's BackupEngine: incremental,
  // checksummed) and returns the backup's id. The data directory's other files are the caller's.
  virtual Result<uint32_t> Backup(const std::string& dir) = 0;
  // Restores the latest backup in `backup_dir` as the store of `data_dir` (which must hold none),
  // after checking the backup's checksums.
  static Status Restore(const std::string& backup_dir, const std::string& data_dir);
  // Whether the store was opened read-only (asked for, or its disk was full).
  virtual bool read_only() const = 0;

  // Writes a commit (trees, commit object, expert index) from a parent and changes without moving
  // any ref; UpdateRef publishes it. InvalidArgument for a bad path or a file/folder clash;
  // NotFound when a change deletes what is absent or puts content the store lacks.
  virtual Result<WrittenCommit> WriteCommit(const CommitSpec& spec) = 0;

  // ---- git objects as the git protocol moves them (hub/git) ----
  // One object's type and body: commits, trees and inline blobs (LFS pointer files) carry their
  // body; a regular file's blob names its content (read it with OpenFile). NotFound when absent.
  virtual Result<GitObject> ReadGitObject(const GitOid& oid) = 0;
  virtual Result<bool> HasGitObject(const GitOid& oid) = 0;
  // Stores one object received over git (a push, a git mirror) unless it is held already: the body
  // must hash to `oid` (InvalidArgument otherwise); a commit must parse; a tree must parse, be in
  // git's order and hold only files (100644, 100755) and folders (40000) with valid names
  // (symlinks and submodules are InvalidArgument); a blob that is an LFS pointer is kept inline,
  // any other blob's content goes to the chunk store. Nothing refers to it until a ref moves.
  virtual Status PutGitObject(const GitOid& oid, GitObjectType type, std::string_view body) = 0;
  // Records the expert index of a commit whose objects were stored with PutGitObject (its
  // safetensors files' content must be held).
  virtual Status IndexCommit(const GitOid& commit) = 0;

  // Walks every ref head; cost grows with the number of refs and files.
  virtual Result<Stats> GetStats() = 0;
  // Size of the database files on disk; cheap.
  virtual uint64_t DiskBytes() = 0;
  // Mark and sweep from every ref; never deletes what an import in flight wrote. With a chunk
  // tier it also sweeps packs: deletes those no chunk record names (a crash between a pack's
  // upload and its commit leaves such orphans) and rewrites those mostly dead.
  virtual Result<GcResult> CollectGarbage() = 0;
  // Moves every chunk held only here into packs in the chunk tier, then drops local copies past
  // the cache bound. FailedPrecondition without a tier; Unavailable when the object store is down
  // (what was pushed before stays pushed).
  virtual Result<TierPushResult> PushToTier() = 0;
  // Makes this store the one writer of its chunk tier's bucket prefix: the control object
  // `writer` names this store's id (made once per store; a restored backup gets a new one). A
  // writer store claims the prefix itself at its first pack upload; another store's claim makes
  // its uploads and its pack GC FailedPrecondition, so two writers cannot delete each other's
  // packs. `force`: over another store's claim (promoting a reader: that writer must be stopped
  // for good). FailedPrecondition without a tier, on a reader, or when another store holds the
  // claim and !force; Unavailable when the object store is down.
  virtual Status ClaimTier(bool force) = 0;
};

}  // namespace hubnode::store

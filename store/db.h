// A thin RocksDB wrapper: the column families of docs/store-format.md, point reads, atomic
// batches and prefix scans, with every RocksDB error turned into a Status. No rocksdb type leaves
// db.cc.
//
// Thread safety: all methods may be called concurrently (RocksDB is thread-safe). A Batch is not.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::store {

enum class Cf : int { kDefault = 0, kChunks, kChunkMeta, kFiles, kObjects, kRefs, kRepos, kExperts, kCount };

class Db {
 public:
  class Batch {
   public:
    ~Batch();
    Batch(Batch&&) noexcept;
    Batch& operator=(Batch&&) noexcept;
    void Put(Cf cf, std::string_view key, std::string_view value);
    void Delete(Cf cf, std::string_view key);
    size_t Count() const;

   private:
    friend class Db;
    struct Rep;
    explicit Batch(std::unique_ptr<Rep> rep);
    std::unique_ptr<Rep> rep_;
  };

  // A batch bound to this database; apply it with Write().
  Batch NewBatch() const;

  struct OpenOptions {
    // Free bytes kept on the database's file system for RocksDB's own writes (flushes,
    // compactions, its log and manifest): a write that would leave less is refused with
    // ResourceExhausted before RocksDB sees it. RocksDB must never meet a full disk: Debian's
    // build asserts (aborts) on a write after a failed one. Default: 256 MiB.
    uint64_t min_free_bytes = uint64_t{256} << 20;
    // Open read-only (no write at all, also none at open). Default: false; chosen anyway when
    // the disk is too full to open safely.
    bool read_only = false;
  };
  // Opens or creates the database at `path`.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const OpenOptions& options);
  static Result<std::unique_ptr<Db>> Open(const std::string& path) { return Open(path, OpenOptions{}); }
  ~Db();
  // Whether it was opened read-only (every write is ResourceExhausted).
  bool read_only() const;
  // Bytes free for this process on the database's file system.
  uint64_t FreeBytes() const;
  // Copies the database into the RocksDB backup directory `dir` (incremental: files an earlier
  // backup there holds are not copied again) and returns the new backup's id.
  Result<uint32_t> Backup(const std::string& dir);
  // Restores the latest backup of `backup_dir` into `path` (which must not hold a database).
  static Status Restore(const std::string& backup_dir, const std::string& path);

  // The value, nullopt if absent.
  Result<std::optional<std::string>> Get(Cf cf, std::string_view key) const;
  // As Get, without RocksDB's block and blob checksums, for a value the caller checks itself: a
  // chunk record, whose decoded bytes are hashed against its key (docs/decisions.md 46). Damage
  // then shows as bytes that do not decode or hash, or as a value missing.
  Result<std::optional<std::string>> GetUnchecked(Cf cf, std::string_view key) const;
  Result<bool> Has(Cf cf, std::string_view key) const;
  // Applies `batch` atomically; `sync` = fsync the WAL before returning.
  Status Write(Batch& batch, bool sync);
  // Calls fn(key, value) for each key with `prefix`, in key order, until fn returns false.
  // Never use on Cf::kChunks: iterating it would load every blob.
  Status Scan(Cf cf, std::string_view prefix,
              const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // Total size of the files in the database directory.
  uint64_t DiskBytes() const;
  // Flushes memtables and compacts, so deletes free their space (used after GC).
  Status Compact();

 private:
  struct Rep;
  explicit Db(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace hubnode::store

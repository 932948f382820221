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

  // Opens or creates the database at `path`.
  static Result<std::unique_ptr<Db>> Open(const std::string& path);
  ~Db();

  // The value, nullopt if absent.
  Result<std::optional<std::string>> Get(Cf cf, std::string_view key) const;
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

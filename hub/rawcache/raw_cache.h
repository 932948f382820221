// A cache of hot files in raw form, on local disk beside the store (DATA/rawcache/<sha256>), so a
// popular file is served by plain reads of a file in the page cache instead of chunk reads,
// checksums and decompression (bench/RESULTS.md "Downloads"), and a model run with a small expert
// budget reloads evicted experts from its weight shards' raw copies (docs/decisions.md 46). Files
// are content-addressed and immutable, so an entry never goes stale: a file is written from the
// store once, its SHA-256 checked, then renamed into place; least recently used entries are
// deleted past the capacity (readers holding an entry open keep reading it). A copy an earlier
// run left is re-hashed before it is served again; one that does not hash to its name is deleted.
//
// Thread safety: all methods may be called concurrently; fills and re-hashes run on one
// background thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/store.h"

namespace hubnode::hub {

struct RawCacheOptions {
  // The directory of the copies (DATA/rawcache); created when missing. Default: empty (required).
  std::string dir;
  // Bytes of disk the copies may occupy. Default: 4 GiB.
  uint64_t capacity = uint64_t{4} << 30;
  // Smallest file cached: small files are cheap to read from chunks. Default: 8 MiB.
  uint64_t min_size = uint64_t{8} << 20;
  // Re-hash every copy an earlier run left as soon as the cache starts (a server, which may serve
  // any of them), or only the copies asked for, by Open or Fill (`hubnode run`, which reads one
  // model: re-hashing the whole cache at every start would cost more than it saves). Either way a
  // copy is served only once re-hashed. Default: true.
  bool verify_all_at_start = true;
};

class RawCache {
 public:
  // An open cached file; closes on destruction.
  struct Entry {
    int fd = -1;
    uint64_t size = 0;
    ~Entry();
  };

  // `store` must outlive the cache. Copies an earlier run left are kept (within the capacity,
  // oldest out first) and served once the worker has re-hashed them.
  RawCache(RawCacheOptions options, store::Store* store);
  ~RawCache();

  // The verified copy of the file with this SHA-256 and size, opened; nullptr when there is none
  // (a copy an earlier run left and not yet re-hashed is queued for its re-hash first).
  std::shared_ptr<Entry> Open(const Sha256Digest& sha256, uint64_t size);
  // Queues writing `file` into the cache: no-op when cached or queued, under min_size or over the
  // capacity, or when some of its chunks are not held here (a fill never fetches from peers).
  // A copy an earlier run left is re-hashed first, and written again if it does not match.
  void Fill(const store::FileEntry& file);
  // Deletes the copy of `sha256`, which a reader found damaged (shorter than its size): the bytes
  // were checked when written, so only a change on disk since does that. Fill writes it again.
  void Discard(const Sha256Digest& sha256);
  uint64_t bytes() const;
  uint64_t capacity() const { return options_.capacity; }

 private:
  struct Item {
    uint64_t size;
    std::list<Sha256Digest>::iterator pos;
    bool verified;  // false: left by an earlier run, not re-hashed yet (never served)
  };
  void Run();
  void Verify(const Sha256Digest& sha256);
  Status Write(const store::FileEntry& file);
  void RequestVerify(const Sha256Digest& sha256);        // REQUIRES: mu_ held
  void EvictFor(uint64_t incoming);                      // REQUIRES: mu_ held
  void Drop(std::map<Sha256Digest, Item>::iterator it);  // REQUIRES: mu_ held
  bool Stopping() const;
  std::string PathOf(const Sha256Digest& sha256) const;

  const RawCacheOptions options_;
  store::Store* store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Sha256Digest> lru_;  // most recent at the front
  std::map<Sha256Digest, Item> items_;
  uint64_t bytes_ = 0;
  std::deque<store::FileEntry> queue_;  // files to write
  std::map<Sha256Digest, bool> queued_;
  std::deque<Sha256Digest> verify_;        // copies of an earlier run to re-hash, next first
  std::optional<Sha256Digest> verifying_;  // the one the worker is re-hashing
  // Files Fill asked for whose old copy waits for its re-hash: written again if it fails.
  std::map<Sha256Digest, store::FileEntry> refill_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace hubnode::hub

// A cache of hot files in raw form, on local disk beside the store (DATA/rawcache/<sha256>), so a
// popular file is served by plain reads of a file in the page cache instead of chunk reads,
// checksums and decompression (bench/RESULTS.md "Downloads"). Files are content-addressed and
// immutable, so an entry never goes stale: a file is written from the store once, its SHA-256
// checked, then renamed into place; least recently used entries are deleted past the capacity
// (readers holding an entry open keep reading it).
//
// Thread safety: all methods may be called concurrently; fills run on one background thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace hubnode::hub {

class RawCache {
 public:
  // An open cached file; closes on destruction.
  struct Entry {
    int fd = -1;
    uint64_t size = 0;
    ~Entry();
  };

  // `capacity` bytes of disk at most; files under `min_size` are never cached. Entries an earlier
  // run left are served again once the worker has re-hashed them (a bad one is deleted).
  RawCache(std::string dir, uint64_t capacity, uint64_t min_size, store::Store* store);
  ~RawCache();

  // The cached file, opened; nullptr when it is not cached.
  std::shared_ptr<Entry> Open(const Sha256Digest& sha256, uint64_t size);
  // Queues writing `file` into the cache (no-op when cached, queued, under min_size or over the
  // capacity, or when some of its chunks are not held here).
  void Fill(const store::FileEntry& file);
  uint64_t bytes() const;

 private:
  void Run();
  void Admit(const Sha256Digest& sha256, uint64_t size);
  Status Write(const store::FileEntry& file);
  void EvictFor(uint64_t incoming);  // REQUIRES: mu_ held
  std::string PathOf(const Sha256Digest& sha256) const;

  const std::string dir_;
  const uint64_t capacity_, min_size_;
  store::Store* store_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Sha256Digest> lru_;  // most recent at the front
  struct Item {
    uint64_t size;
    std::list<Sha256Digest>::iterator pos;
  };
  std::map<Sha256Digest, Item> items_;
  uint64_t bytes_ = 0;
  std::deque<store::FileEntry> queue_;
  std::map<Sha256Digest, bool> queued_;
  std::vector<std::pair<Sha256Digest, uint64_t>> verify_;  // entries of an earlier run, to re-check
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace hubnode::hub

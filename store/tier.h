// The chunk tier's records and pack format (docs/store-format.md "Chunk tier"): where a tiered
// chunk's record lies (pack, offset, length), the packs being built, and the bounded local cache
// of tiered chunk records.
#pragma once

#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/hash.h"
#include "base/status.h"
#include "store/records.h"

namespace hubnode::store {

// Keys in the default column family.
inline constexpr std::string_view kTierLocPrefix = "tier/loc/";      // + chunk id (32 bytes)
inline constexpr std::string_view kTierCachePrefix = "tier/cache/";  // + chunk id: cached copy
inline constexpr std::string_view kTierPackPrefix = "tier/pack/";    // + pack name: its index is recorded
std::string TierLocKey(const ChunkId& id);
std::string TierCacheKey(const ChunkId& id);

// Where a chunk's record is: bytes [offset, offset+length) of pack `pack` (32 hex digits).
struct ChunkLoc {
  std::string pack;
  uint64_t offset = 0;
  uint32_t length = 0;
};
std::string EncodeChunkLoc(const ChunkLoc& loc);
Result<ChunkLoc> DecodeChunkLoc(std::string_view v);

// A new pack's name: 128 random bits, hex.
std::string NewPackName();

// A pack being filled: chunk records back to back, then the index (id, offset, length, codec,
// raw length per chunk: 49 bytes), then a 20-byte footer: u32 count, u64 index offset, "HNPACK01".
class PackBuilder {
 public:
  struct Entry {
    ChunkId id;
    ChunkMeta meta;
    uint64_t offset;
    uint32_t length;
  };
  void Add(const ChunkId& id, const ChunkMeta& meta, std::string_view record);
  uint64_t bytes() const { return data_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // The whole pack (records, index, footer). Call once.
  std::string Finish();

 private:
  std::string data_;
  std::vector<Entry> entries_;
};

inline constexpr size_t kPackFooter = 20;
inline constexpr size_t kPackIndexEntry = 49;
// The index of a pack from its footer and index bytes (untrusted): DataLoss when malformed.
struct PackIndexEntry {
  ChunkId id;
  uint64_t offset;
  uint32_t length;
  ChunkMeta meta;  // codec, raw length, stored length (= length - record header)
};
Result<std::pair<uint32_t, uint64_t>> DecodePackFooter(std::string_view footer, uint64_t pack_size);
Result<std::vector<PackIndexEntry>> DecodePackIndex(std::string_view index, uint32_t count, uint64_t index_offset);

// The local copies of tiered chunks, least recently used first out. Thread-safe.
class TierCache {
 public:
  // Records a cached copy (or a use of one) and returns the ids to evict to stay within `budget`.
  std::vector<ChunkId> Add(const ChunkId& id, uint32_t length, uint64_t budget);
  void Touch(const ChunkId& id);
  void Remove(const ChunkId& id);
  bool Contains(const ChunkId& id);
  uint64_t bytes();
  uint64_t count();

 private:
  std::mutex mu_;
  std::list<ChunkId> lru_;  // front = most recent
  std::unordered_map<ChunkId, std::pair<std::list<ChunkId>::iterator, uint32_t>, DigestHash> index_;
  uint64_t bytes_ = 0;
};

}  // namespace hubnode::store

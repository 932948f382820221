// The chunk tier's keys (docs/store-format.md "Chunk tier") and the bounded local cache of tiered
// chunk records. The location records and the pack format are records.h's.
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
// This store's id (32 hex digits), named in the writer claim of the tier it writes.
inline constexpr std::string_view kStoreIdKey = "store/id";
// + pack name: a manifest the writer put lists this pack's live chunks.
inline constexpr std::string_view kTierManifestedPrefix = "tier/manifested/";
// Where manifests are, among the tier's control objects.
inline constexpr std::string_view kManifestDir = "manifests/";
// A reader's next pack listing starts after this value (a PackNamePrefix).
inline constexpr std::string_view kTierListedKey = "tier/listed";
// How long after its name a pack's upload may still finish (so a listing reaches back that far),
// and how far ahead of this clock a writer's may run (a look lists no further).
inline constexpr int64_t kPackUploadWindowMs = int64_t{3600} * 1000;
inline constexpr int64_t kPackClockSkewMs = int64_t{600} * 1000;
// A reader that still misses a chunk after listing from its watermark lists the whole bucket, at
// most this often.
inline constexpr int64_t kFullIndexEveryMs = int64_t{600} * 1000;
std::string TierLocKey(const ChunkId& id);
std::string TierCacheKey(const ChunkId& id);

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

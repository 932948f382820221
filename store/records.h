// Encoding of the values of the store's column families (docs/store-format.md). Decoders treat
// their input as untrusted: any inconsistency is DataLoss.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/codec.h"
#include "store/store.h"

namespace hubnode::store {

struct ChunkRef {
  ChunkId id;
  uint32_t raw_len;
};

struct FileRecord {
  enum class Kind : uint8_t { kPlain = 0, kSafetensors = 1 };
  Kind kind = Kind::kPlain;
  uint64_t size = 0;
  std::vector<ChunkRef> chunks;
  uint64_t header_end = 0;             // safetensors only
  std::vector<TensorInfo> tensors;     // safetensors only
};
std::string EncodeFileRecord(const FileRecord& r);
Result<FileRecord> DecodeFileRecord(std::string_view v);

struct ChunkMeta {
  Codec codec;
  uint32_t raw_len;
  uint32_t stored_len;
};
std::string EncodeChunkMeta(const ChunkMeta& m);
Result<ChunkMeta> DecodeChunkMeta(std::string_view v);

enum class ObjectType : uint8_t { kTree = 1, kCommit = 2, kInlineBlob = 3, kChunkedBlob = 4 };
struct StoredObject {
  ObjectType type;
  std::string body;        // tree/commit body, or inline blob content
  Sha256Digest content;    // chunked blob only
  uint64_t size = 0;       // chunked blob only
};
std::string EncodeObject(const StoredObject& o);
Result<StoredObject> DecodeObject(std::string_view v);

std::string EncodeRepo(const RepoInfo& r);
Result<RepoInfo> DecodeRepo(const RepoId& id, std::string_view v);

std::string EncodeExpertParts(const std::vector<ExpertPart>& parts);
Result<std::vector<ExpertPart>> DecodeExpertParts(std::string_view v);

// Keys.
std::string RefKey(const RepoId& repo, std::string_view ref);
std::string ExpertKeyBytes(const GitOid& commit, const ExpertKey& k);

// ---- the chunk tier (docs/store-format.md "Chunk tier"); decoders treat their input as untrusted.

// Where a chunk's record is: bytes [offset, offset+length) of pack `pack` (32 hex digits).
struct ChunkLoc {
  std::string pack;
  uint64_t offset = 0;
  uint32_t length = 0;
};
std::string EncodeChunkLoc(const ChunkLoc& loc);
Result<ChunkLoc> DecodeChunkLoc(std::string_view v);

// A new pack's name, 32 hex digits: a random shard digit, the time it is named (milliseconds
// since the Unix epoch, 12 digits), then 76 random bits. Within a shard names sort by time, so a
// reader lists only the packs named since it last looked (16 listings); across shards, new packs
// spread over the key space as random names did (object stores split hot key ranges).
std::string NewPackName();
// The milliseconds in a pack name, after its shard digit (names made before time-ordered names
// were random: theirs is a meaningless number, and callers ignore times in the future).
int64_t PackNameMillis(std::string_view name);
// The 12 digits of time that follow the shard digit in the names of packs named at `ms`: shard +
// this is the ListPacks `after` that lists the shard's packs named from then on.
std::string PackNamePrefix(int64_t ms);

inline constexpr size_t kPackFooter = 20;
inline constexpr size_t kPackIndexEntry = 49;
inline constexpr uint64_t kMaxPackIndexBytes = uint64_t{64} << 20;

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
  // The pack's size so far, its index included (writers close a pack at Options::pack_bytes, so
  // no index they write passes kMaxPackIndexBytes).
  uint64_t bytes() const { return data_.size() + entries_.size() * kPackIndexEntry; }
  bool empty() const { return entries_.empty(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // The whole pack (records, index, footer). Call once.
  std::string Finish();

 private:
  std::string data_;
  std::vector<Entry> entries_;
};

// The index of a pack from its footer and index bytes (untrusted): DataLoss when malformed.
struct PackIndexEntry {
  ChunkId id;
  uint64_t offset;
  uint32_t length;
  ChunkMeta meta;  // codec, raw length, stored length (= length - record header)
};
Result<std::pair<uint32_t, uint64_t>> DecodePackFooter(std::string_view footer, uint64_t pack_size);
Result<std::vector<PackIndexEntry>> DecodePackIndex(std::string_view index, uint32_t count, uint64_t index_offset);

// A manifest: the live chunk locations of many packs in one object, which the writer puts at GC
// (`<prefix>manifests/<name>`) so that a new reader learns them from a few large reads instead of
// two per pack. Entries: pack name (16 bytes) + a pack index entry (49); then the covered pack
// names (16 bytes each); then u32 entry count, u32 pack count, "HNMIDX01". At most
// kMaxManifestBytes.
inline constexpr size_t kManifestEntry = 16 + kPackIndexEntry;
inline constexpr uint64_t kMaxManifestBytes = uint64_t{64} << 20;
struct ManifestEntry {
  std::string pack;  // 32 hex
  PackIndexEntry entry;
};
struct Manifest {
  std::vector<ManifestEntry> entries;
  std::vector<std::string> packs;  // every pack whose live chunks it lists (32 hex each)
};
class ManifestBuilder {
 public:
  // REQUIRES: `pack` is 32 lowercase hex digits.
  void Add(std::string_view pack, const ChunkId& id, uint64_t offset, uint32_t length, const ChunkMeta& meta);
  void Cover(std::string_view pack);
  // The size Finish() would return.
  uint64_t bytes() const { return data_.size() + packs_.size() * 16 + 16; }
  bool empty() const { return count_ == 0 && packs_.empty(); }
  std::string Finish();

 private:
  std::string data_;
  std::vector<std::string> packs_;  // binary, 16 bytes each
  uint32_t count_ = 0;
};
// Untrusted bytes: DataLoss when malformed.
Result<Manifest> DecodeManifest(std::string_view bytes);

}  // namespace hubnode::store

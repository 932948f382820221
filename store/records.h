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

}  // namespace hubnode::store

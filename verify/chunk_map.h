// Chunk maps: a signed in-toto statement (predicate https://hubnode.dev/chunk-map/v1, documented
// in docs/chunk-maps.md) binding each file's SHA-256 and size to the ordered SHA-256 ids and
// sizes of its chunks, so that a node holding part of a file can check every chunk it receives
// on its own, before the whole file (and so its SHA-256) is there. Signed by the publisher's key
// or by a node key the trust store accepts. Private to verify/; re-exported by verify/verify.h.
//
// Thread safety: values; functions are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/hash.h"
#include "base/status.h"
#include "verify/trust.h"

namespace hubnode::verify {

class PrivateKey;
class PublicKey;

struct ChunkMapChunk {
  ChunkId id;         // SHA-256 of the chunk's raw bytes
  uint32_t size = 0;  // raw bytes
};

struct ChunkMapFile {
  std::string path;
  Sha256Digest sha256;
  uint64_t size = 0;
  std::vector<ChunkMapChunk> chunks;  // in file order; sizes sum to `size`
};

struct ChunkMap {
  std::string repo;    // "ns/name"
  std::string commit;  // the git commit id the files belong to (40 hex)
  std::vector<ChunkMapFile> files;

  // NotFound when the map has no such file.
  Result<const ChunkMapFile*> File(std::string_view path) const;
  // The byte offset of chunk `index` of `file`.
  static uint64_t Offset(const ChunkMapFile& file, size_t index);
  // OK when `data` is chunk `index` of `path`: its size and SHA-256 match. DataLoss otherwise
  // (the message names the file and chunk); OutOfRange for an index past the last chunk.
  Status CheckChunk(std::string_view path, size_t index, std::string_view data) const;
};

// The statement's JSON text (what is signed).
std::string ChunkMapStatement(const ChunkMap& map);
// Parses and checks a statement: InvalidArgument names the field or rule (sizes that do not sum
// to the file size, duplicate paths, malformed digests, more than the limits allow).
Result<ChunkMap> ParseChunkMapStatement(std::string_view statement_json);

// A Sigstore bundle v0.3 (DSSE, key mode) around the statement.
Result<std::string> SignChunkMap(const ChunkMap& map, const PrivateKey& key);
// Verifies with one key, then parses. PermissionDenied for a bad signature or another key.
Result<ChunkMap> VerifyChunkMap(std::string_view bundle_json, const PublicKey& key);

struct TrustedChunkMap {
  ChunkMap map;
  TrustedSignature signer;
  bool node_key = false;  // signed by a trusted node key (not the publisher)
};
// Verifies with the trust store: a publisher key of the map's namespace, or a trusted node key,
// unrevoked and unexpired at `now`. PermissionDenied says why not.
Result<TrustedChunkMap> VerifyChunkMapWithTrustStore(std::string_view bundle_json, const TrustStore& trust,
                                                     int64_t now);

}  // namespace hubnode::verify

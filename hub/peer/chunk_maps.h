// Chunk maps of stored revisions (verify/chunk_map.h, docs/chunk-maps.md) and the node's
// identity key that signs the maps this node originates.
#pragma once

#include <string>

#include "base/status.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

// DATA/node.key (PKCS#8, mode 0600) and DATA/node.key.pub, created on first use (P-256).
Result<verify::PrivateKey> LoadOrCreateNodeKey(const std::string& data_dir);

// The chunk map of repo@commit from the store's file records: every file, its SHA-256, size and
// chunks in order.
Result<verify::ChunkMap> ChunkMapOf(store::Store& st, const store::RepoId& repo, const GitOid& commit);

// Compares a map with what the store holds for the same revision: OK when every file and chunk
// agrees. FailedPrecondition names the first difference.
Status CompareWithStore(const verify::ChunkMap& map, store::Store& st);

}  // namespace hubnode::hub

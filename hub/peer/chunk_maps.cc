#include "hub/peer/chunk_maps.h"

#include <sys/stat.h>

#include <filesystem>

#include "base/file.h"

namespace hubnode::hub {

Result<verify::PrivateKey> LoadOrCreateNodeKey(const std::string& data_dir) {
  const std::string path = data_dir + "/node.key";
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    ASSIGN_OR_RETURN(std::string pem, ReadFileToString(path, 1 << 20));
    auto key = verify::PrivateKey::FromPem(pem);
    if (!key.ok()) return key.status().WithContext(path);
    return key;
  }
  std::filesystem::create_directories(data_dir, ec);
  ASSIGN_OR_RETURN(verify::PrivateKey key, verify::PrivateKey::Generate(verify::Curve::kP256));
  // Written with a restrictive mode from the start: the key must never be readable by others.
  const mode_t old = ::umask(077);
  Status s = WriteFileAtomic(path, key.Pem());
  ::umask(old);
  RETURN_IF_ERROR(s);
  RETURN_IF_ERROR(WriteFileAtomic(path + ".pub", key.public_key().pem()));
  return key;
}

Result<verify::ChunkMap> ChunkMapOf(store::Store& st, const store::RepoId& repo, const GitOid& commit) {
  verify::ChunkMap map;
  map.repo = repo.str();
  map.commit = commit.hex();
  ASSIGN_OR_RETURN(std::vector<store::FileEntry> files, st.ListFiles(commit));
  for (const store::FileEntry& f : files) {
    verify::ChunkMapFile mf;
    mf.path = f.path;
    mf.sha256 = f.sha256;
    mf.size = f.size;
    ASSIGN_OR_RETURN(std::vector<store::FileChunk> chunks, st.ListChunks(f));
    for (const store::FileChunk& c : chunks) mf.chunks.push_back(verify::ChunkMapChunk{c.id, c.size});
    map.files.push_back(std::move(mf));
  }
  return map;
}

Status CompareWithStore(const verify::ChunkMap& map, store::Store& st) {
  ASSIGN_OR_RETURN(store::RepoId repo, store::RepoId::Parse(map.repo));
  ASSIGN_OR_RETURN(GitOid commit, GitOid::FromHex(map.commit));
  ASSIGN_OR_RETURN(verify::ChunkMap held, ChunkMapOf(st, repo, commit));
  if (held.files.size() != map.files.size()) {
    return FailedPreconditionError("the map lists " + std::to_string(map.files.size()) + " files, the store " +
                                   std::to_string(held.files.size()));
  }
  for (size_t i = 0; i < held.files.size(); ++i) {
    const verify::ChunkMapFile &a = map.files[i], &b = held.files[i];
    if (a.path != b.path || a.sha256 != b.sha256 || a.size != b.size) {
      return FailedPreconditionError("file " + a.path + " differs from the store's " + b.path);
    }
    if (a.chunks.size() != b.chunks.size()) return FailedPreconditionError(a.path + ": chunk count differs");
    for (size_t c = 0; c < a.chunks.size(); ++c) {
      if (a.chunks[c].id != b.chunks[c].id || a.chunks[c].size != b.chunks[c].size) {
        return FailedPreconditionError(a.path + ": chunk " + std::to_string(c) + " differs");
      }
    }
  }
  return OkStatus();
}

}  // namespace hubnode::hub

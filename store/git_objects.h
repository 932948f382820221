// Git object encoding with git's exact ids (docs/store-format.md "Git objects").
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace hubnode::store {

inline constexpr uint32_t kModeFile = 0100644;
inline constexpr uint32_t kModeExecutable = 0100755;
inline constexpr uint32_t kModeTree = 040000;

// SHA-1 of "<type> <size>\0<body>".
GitOid HashObject(std::string_view type, std::string_view body);
// The header git hashes before a body of `size` bytes.
std::string ObjectHeader(std::string_view type, uint64_t size);

struct TreeEntry {
  uint32_t mode;
  std::string name;
  GitOid oid;
};

// Sorts entries in git order and encodes them. REQUIRES: names unique, no '/', non-empty.
std::string EncodeTree(std::vector<TreeEntry> entries);
Result<std::vector<TreeEntry>> DecodeTree(std::string_view body);

struct CommitObject {
  GitOid tree;
  std::vector<GitOid> parents;
  Signature author;
  Signature committer;
  std::string message;  // ends with '\n' (EncodeCommit adds one if missing)
};
std::string EncodeCommit(const CommitObject& c);
Result<CommitObject> DecodeCommit(std::string_view body);

struct TreeFile {
  std::string path;  // '/'-separated
  uint32_t mode;
  GitOid blob;
};
// Builds the git trees holding `files`; calls emit(tree id, encoded StoredObject-free body) for
// each tree, and returns the root tree's id.
GitOid BuildTrees(const std::vector<TreeFile>& files,
                  const std::function<void(const GitOid&, const std::string&)>& emit);

// The Git LFS pointer text for a file.
std::string LfsPointer(const Sha256Digest& oid, uint64_t size);
// Files over 10 MiB, or matching Hugging Face's default LFS patterns, are stored as LFS.
bool ShouldStoreAsLfs(std::string_view path, uint64_t size);

}  // namespace hubnode::store

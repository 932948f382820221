// The write half of the Hugging Face compatible API (docs/http-api.md "Write API"): repo create,
// delete, move and settings; preupload; the Git LFS batch API with pre-signed upload URLs (basic
// and multipart transfers) whose PUTs stream straight into the chunk store; NDJSON commits with
// parentCommit compare-and-swap and create_pr; branches and tags; validate-yaml. Every commit runs
// the node's policy before it becomes visible.
//
// Thread safety: Handle may be called from many server threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "hub/http/auth.h"
#include "hub/http/http_util.h"
#include "hub/http/router.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct WriteOptions {
  // Where multipart upload parts wait for their completion (DATA/uploads).
  std::string uploads_dir;
  // The key that signs upload URLs (32 random bytes, DATA/upload.key).
  std::string url_key;
  // Base URL for the URLs this node hands out; empty = from the request's Host header.
  std::string public_url;
  // The trust store file (policy, signature requirements). Empty = the default policy.
  std::string trust_path;
  std::string common_licenses = "/usr/share/common-licenses";
  // Largest LFS object accepted. Default: 1 TiB.
  uint64_t max_object = uint64_t{1} << 40;
  // Objects from this size up are offered the multipart transfer. Default: 256 MiB.
  uint64_t multipart_threshold = uint64_t{256} << 20;
  // Part size of multipart uploads. Default: 64 MiB.
  uint64_t multipart_chunk = uint64_t{64} << 20;
  // Lifetime of a signed upload URL, seconds. Default: 3600.
  int64_t url_lifetime_s = 3600;
  // Largest single NDJSON line of a commit (one inline file, base64). Default: 16 MiB.
  size_t max_line = 16 << 20;
  // Largest other JSON request body. Default: 16 MiB.
  size_t max_body = 16 << 20;
  // Largest git push (its pack, spooled to uploads_dir). Default: 4 GiB.
  uint64_t max_push = uint64_t{4} << 30;
  // Largest object in a pushed pack (files above it go through git-lfs). Default: 64 MiB.
  uint64_t max_push_object = uint64_t{64} << 20;
  // All objects of a pushed pack, inflated and with deltas applied (zlib and delta bombs).
  // Default: 2 GiB.
  uint64_t max_push_inflated = uint64_t{2} << 30;
  // Lifetime of a signed LFS download URL, seconds. Default: 3600.
  int64_t download_url_lifetime_s = 3600;
  // A reader node of the chunk tier: an LFS upload batch is refused (403 ReaderNode), or with
  // writer_url redirected there (307). Default: false, empty.
  bool reader_node = false;
  std::string writer_url;
};

// Releases what is staged for review on `branch` (refs/held/<branch>, or the staged commit
// `commit` when given as 40 hex digits) onto the branch, where every reader sees it. Returns the
// released commit; NotFound when nothing is staged there.
Result<GitOid> ReleaseStaged(store::Store& store, const store::RepoId& repo, const std::string& branch_or_commit);

// The opposite of ReleaseStaged: deletes refs/held/<branch> (found by the same spellings), so the
// staged commit is seen by nobody and its objects are reclaimed by the next gc; the released
// branch does not move. Returns the dropped commit; NotFound when nothing is staged there;
// FailedPrecondition when the staged head moved while it was being dropped.
Result<GitOid> RefuseStaged(store::Store& store, const store::RepoId& repo, const std::string& branch_or_commit);

// Loads DATA/upload.key, creating it (0600) on first use.
Result<std::string> LoadOrCreateUrlKey(const std::string& data_dir);

class WriteApi {
 public:
  WriteApi(store::Store* store, WriteOptions options);
  ~WriteApi();

  // Whether this request is one of the write routes (decided from the method and path alone,
  // before the body is read).
  static bool Handles(const httplib::Request& req);
  // Whether this write-API route only reads (git fetch, LFS downloads, YAML validation, every GET)
  // or, for the LFS batch, decides from its body: what a reader node of the chunk tier still
  // serves.
  static bool Reads(const httplib::Request& req);
  // Serves a write route, reading the body from `reader` as it needs it.
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
              const std::optional<Principal>& who);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubnode::hub

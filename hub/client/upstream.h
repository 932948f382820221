// A client for an upstream Hugging Face compatible endpoint (huggingface.co, a mirror, another
// hubnode), over libcurl: repo info, recursive tree listing, commit info and verified downloads.
//
// Errors: NotFound for RepoNotFound / RevisionNotFound / EntryNotFound answers; Unavailable for
// network failures and 5xx (retryable); DeadlineExceeded for timeouts; PermissionDenied for
// 401/403 without RepoNotFound (gated repos, bad upstream token); DataLoss when a download does
// not match the size and digest the upstream listed.
//
// Thread safety: methods may be called concurrently (each call uses its own curl handle).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/status.h"

namespace hubnode::hub {

struct UpstreamOptions {
  // Base URL, e.g. https://huggingface.co or http://127.0.0.1:8080. Required.
  std::string url;
  // Bearer token sent upstream; never logged. Default: none.
  std::string token;
  // Seconds to connect. Default: 10.
  long connect_timeout_s = 10;
  // Abort a transfer slower than 1 KiB/s for this many seconds. Default: 30.
  long low_speed_time_s = 30;
  // Cap on the receive rate of each transfer, bytes/s; 0 = none. Default: 0.
  int64_t max_rate = 0;
};

struct UpstreamFile {
  std::string path;
  uint64_t size = 0;
  GitOid blob;           // git blob id
  bool lfs = false;
  Sha256Digest sha256;   // LFS only
};

struct UpstreamRevision {
  std::string sha;
  bool is_private = false;
  bool gated = false;
};

struct UpstreamCommit {
  std::string sha;
  std::string title;
  std::string author;
  int64_t time = 0;
};

class Upstream {
 public:
  explicit Upstream(UpstreamOptions options);
  const std::string& url() const { return options_.url; }
  // The token sent upstream (empty for none); for a second client of the same upstream.
  const std::string& token() const { return options_.token; }

  // The commit a revision of a repo resolves to upstream (repo info's `sha`), and its visibility.
  Result<UpstreamRevision> ResolveRevision(const std::string& repo, const std::string& rev);
  // Every file of the repo at commit `sha` (recursive tree, following Link pagination).
  Result<std::vector<UpstreamFile>> ListFiles(const std::string& repo, const std::string& sha);
  // Title, author and date of commit `sha` (best effort: fields may be empty).
  Result<UpstreamCommit> Commit(const std::string& repo, const std::string& sha);
  // Downloads a file into `dest`, resuming from the bytes already there, and verifies its size
  // and digest (SHA-256 for LFS files, git blob id otherwise). `progress` gets new byte counts.
  Status Download(const std::string& repo, const std::string& sha, const UpstreamFile& file,
                  const std::string& dest, const std::function<void(uint64_t)>& progress);
  // A chunk from a hubnode peer (/api/peer/v1/chunks/{id}): the stored record, decoded and
  // checked against its id here. `repo`@`rev` names the revision it belongs to (the peer checks
  // that the caller may read it); `headers` are sent too (a node's request signature, made over
  // ChunkTarget). NotFound when the peer lacks it; PermissionDenied when it refuses this caller;
  // DataLoss when the bytes do not hash to the id.
  Result<std::string> GetChunk(const ChunkId& id, const std::string& repo = "", const std::string& rev = "",
                               const std::vector<std::string>& headers = {});
  // The path and query GetChunk requests.
  static std::string ChunkTarget(const ChunkId& id, const std::string& repo, const std::string& rev);
  // The node-signed chunk map of repo@sha from a hubnode (/api/models/{repo}/chunk-map/{sha}),
  // not yet verified. NotFound when the endpoint has none.
  Result<std::string> GetChunkMap(const std::string& repo, const std::string& sha);
  // Bytes [offset, offset+length) of a file at commit `sha` (an HTTP Range on its resolve URL):
  // Unavailable unless the answer is a 206 of exactly that length.
  Result<std::string> GetRange(const std::string& repo, const std::string& sha, const std::string& path,
                               uint64_t offset, uint64_t length);
  // Whether the upstream serves `repo` over git's smart HTTP protocol v2 (GET info/refs with
  // Git-Protocol: version=2 answers a v2 advertisement with fetch).
  bool SpeaksGit(const std::string& repo);
  // Fetches the git objects of `wants` the client lacks (protocol v2 fetch, `haves` offered, all
  // objects of their history: commits, trees and blobs, LFS files as pointers) and writes the pack
  // into `pack_path`. ResourceExhausted past `max_bytes`; Unavailable/DeadlineExceeded for
  // transport failures; InvalidArgument when the answer is not a v2 fetch response.
  Status GitFetch(const std::string& repo, const std::vector<std::string>& wants, const std::vector<std::string>& haves,
                  const std::string& pack_path, uint64_t max_bytes);
  // The body of GET {url}{path} (path includes any query). NotFound for 404, Unavailable for
  // another status or a network failure; InvalidArgument above `max_body`.
  Result<std::string> Fetch(const std::string& path, size_t max_body);

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::string error_code;
    std::string link_next;
  };
  Result<Response> Get(const std::string& url, size_t max_body, const std::string& range = "",
                       const std::vector<std::string>& extra_headers = {});

  UpstreamOptions options_;
};

}  // namespace hubnode::hub

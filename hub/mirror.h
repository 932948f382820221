// Mirroring repos from an upstream into the store: `hubnode pull` and the server's pull-through.
//
// A pull resolves the revision upstream, downloads every (selected) file into a staging folder
// under the data directory (files in parallel, each verified against the upstream's SHA-256 or
// git blob id, resuming what an earlier attempt left), then imports the folder as one commit.
// Nothing is visible before that commit; a failed pull leaves only the staging folder, which the
// next attempt resumes. The local commit is the node's own (the HF API does not expose the raw
// git objects needed to rebuild the upstream's commit id); `refs/mirror/<upstream sha>` maps the
// upstream id to it, so both resolve.
//
// Thread safety: Pull may be called concurrently; pulls of the same repo and revision are done
// once, the others wait for it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hub/upstream.h"
#include "store/store.h"

namespace hubnode::hub {

struct PullOptions {
  // Only files matching one of these globs (fnmatch, '*' crosses '/'); empty = all.
  std::vector<std::string> include;
  // Files matching any of these are skipped.
  std::vector<std::string> exclude;
  // Files downloaded in parallel. Default: 4.
  unsigned jobs = 4;
  // Called with (bytes done, bytes total, current file). May be empty.
  std::function<void(uint64_t, uint64_t, const std::string&)> progress;
};

struct PullResult {
  GitOid commit;
  std::string upstream_sha;
  uint64_t files = 0, bytes = 0;
  bool already_held = false;
};

class Mirror {
 public:
  Mirror(store::Store* store, Upstream* upstream, std::string staging_root)
      : store_(store), upstream_(upstream), staging_root_(std::move(staging_root)) {}

  Result<PullResult> Pull(const store::RepoId& repo, const std::string& rev, const PullOptions& options);
  Upstream& upstream() { return *upstream_; }

 private:
  Result<PullResult> PullLocked(const store::RepoId& repo, const std::string& rev, const PullOptions& options);

  store::Store* store_;
  Upstream* upstream_;
  std::string staging_root_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> in_flight_;
};

// Repos the server may mirror: deny patterns win; a non-empty allow list must match.
struct MirrorPolicy {
  std::vector<std::string> allow, deny;
  bool Allows(const std::string& repo) const;
};

}  // namespace hubnode::hub

// What a received history (a push, a mirrored revision) brings and whether it may be accepted:
// the new objects reached from a tip through the received pack only (objects outside it are
// collected, never read, so a push learns nothing of objects it does not name from its own
// repo), and a bounded walk of a commit's paths (no tree bomb expands).
#pragma once

#include <set>
#include <vector>

#include "base/status.h"
#include "hub/git/upload_pack.h"
#include "store/store.h"

namespace hubnode::hub::git {

struct NewHistory {
  std::vector<GitOid> commits;  // commits of the pack reached from the tip
  std::vector<GitOid> blobs;    // blobs of the pack reached from the tip
  std::set<GitOid> external;    // objects named by the pack's objects but not in it
};

// Walks from `tip` through objects in `received` (read from the store, where they were put);
// objects outside `received` go to `external` unread. ResourceExhausted past `max_objects`.
Result<NewHistory> WalkReceived(store::Store& store, const GitOid& tip, const std::set<GitOid>& received,
                                uint64_t max_objects);

// Every object of `oids` is reachable from the view's refs (one walk for all of them, at most
// limits.max_walk objects). NotFound otherwise, with one message whatever the reason.
Status CheckAllReachable(const RepoView& view, const std::set<GitOid>& oids, const UploadLimits& limits);

// Checks every path of `commit` with store::ValidatePath (depth, length, names) while walking its
// trees iteratively; each file costs one unit of `*budget`, and the walk stops with
// ResourceExhausted when the budget runs out (a tree that names one subtree many times expands
// without bound otherwise).
Status CheckPaths(store::Store& store, const GitOid& commit, uint64_t* budget);

}  // namespace hubnode::hub::git

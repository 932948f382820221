#include "hub/git/connectivity.h"

#include <deque>
#include <string>

#include "store/git_objects.h"

namespace hubnode::hub::git {

using store::GitObjectType;

Result<NewHistory> WalkReceived(store::Store& store, const GitOid& tip, const std::set<GitOid>& received,
                                uint64_t max_objects) {
  NewHistory out;
  std::set<GitOid> seen;
  std::deque<std::pair<GitOid, GitObjectType>> queue;
  auto visit = [&](const GitOid& oid, GitObjectType type) {
    if (!seen.insert(oid).second) return;
    if (!received.count(oid)) {
      out.external.insert(oid);
      return;
    }
    queue.emplace_back(oid, type);
  };
  visit(tip, GitObjectType::kCommit);
  while (!queue.empty()) {
    if (seen.size() > max_objects) return ResourceExhaustedError("the pushed history has too many objects to check");
    auto [oid, type] = queue.front();
    queue.pop_front();
    ASSIGN_OR_RETURN(store::GitObject obj, store.ReadGitObject(oid));
    if (obj.type != type) {
      return InvalidArgumentError(oid.hex() + " is a " + std::string(store::GitTypeName(obj.type)) + ", named as a " +
                                  std::string(store::GitTypeName(type)));
    }
    if (type == GitObjectType::kBlob) {
      out.blobs.push_back(oid);
      continue;
    }
    if (type == GitObjectType::kCommit) {
      out.commits.push_back(oid);
      ASSIGN_OR_RETURN(store::CommitObject c, store::DecodeCommit(obj.body));
      visit(c.tree, GitObjectType::kTree);
      for (const auto& p : c.parents) visit(p, GitObjectType::kCommit);
      continue;
    }
    ASSIGN_OR_RETURN(auto entries, store::DecodeTree(obj.body));
    for (const auto& e : entries) visit(e.oid, e.mode == store::kModeTree ? GitObjectType::kTree : GitObjectType::kBlob);
  }
  return out;
}

Status CheckAllReachable(const RepoView& view, const std::set<GitOid>& oids, const UploadLimits& limits) {
  if (oids.empty()) return OkStatus();
  std::set<GitOid> left = oids;
  std::set<GitOid> seen;
  std::deque<GitOid> commits;
  for (const auto& r : view.refs) {
    if (seen.insert(r.commit).second) commits.push_back(r.commit);
  }
  // Commits first (cheap, and what most wants are), then their trees.
  std::vector<GitOid> trees;
  while (!commits.empty() && !left.empty()) {
    if (seen.size() > limits.max_walk) return NotFoundError("objects not reachable from this repo's refs");
    GitOid c = commits.front();
    commits.pop_front();
    left.erase(c);
    auto info = view.store->GetCommit(c);
    if (!info.ok()) continue;
    trees.push_back(info->tree);
    for (const auto& p : info->parents) {
      if (seen.insert(p).second) commits.push_back(p);
    }
  }
  std::vector<std::pair<GitOid, int>> stack;
  for (auto it = trees.rbegin(); it != trees.rend(); ++it) stack.emplace_back(*it, 0);
  while (!stack.empty() && !left.empty()) {
    if (seen.size() > limits.max_walk) break;
    auto [t, depth] = stack.back();
    stack.pop_back();
    left.erase(t);
    if (depth > 64) continue;
    auto obj = view.store->ReadGitObject(t);
    if (!obj.ok() || obj->type != GitObjectType::kTree) continue;
    auto entries = store::DecodeTree(obj->body);
    if (!entries.ok()) continue;
    for (const auto& e : *entries) {
      if (!seen.insert(e.oid).second) continue;
      if (e.mode == store::kModeTree) stack.emplace_back(e.oid, depth + 1);
      else left.erase(e.oid);
    }
  }
  if (!left.empty()) return NotFoundError("objects not reachable from this repo's refs");
  return OkStatus();
}

Status CheckPaths(store::Store& store, const GitOid& commit, uint64_t* budget) {
  ASSIGN_OR_RETURN(store::CommitInfo info, store.GetCommit(commit));
  std::vector<std::pair<GitOid, std::string>> stack{{info.tree, ""}};
  while (!stack.empty()) {
    auto [tree, prefix] = stack.back();
    stack.pop_back();
    ASSIGN_OR_RETURN(store::GitObject obj, store.ReadGitObject(tree));
    if (obj.type != GitObjectType::kTree) return InvalidArgumentError(tree.hex() + " is not a tree");
    ASSIGN_OR_RETURN(auto entries, store::DecodeTree(obj.body));
    for (const auto& e : entries) {
      if (*budget == 0) return ResourceExhaustedError("too many files to check in one push (push fewer commits at a time)");
      --*budget;
      std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
      RETURN_IF_ERROR(store::ValidatePath(path));
      if (e.mode == store::kModeTree) stack.emplace_back(e.oid, std::move(path));
    }
  }
  return OkStatus();
}

}  // namespace hubnode::hub::git

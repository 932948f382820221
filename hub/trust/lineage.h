// The lineage of a model on this node: its base models upward (from the `base_model` of each
// model card, recursively), and the models on this node that name it as their base, downward.
// Each model comes with its license, license class, signature status and policy verdict, so a
// reader sees how terms flow from a base to its fine-tunes. docs/http-api.md "Lineage".
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"
#include "hub/trust/trust_gate.h"
#include "store/store.h"

namespace hubnode::hub {

struct LineageOptions {
  // Whether the caller may see a repo (private repos of others are left out, never named).
  std::function<bool(const store::RepoInfo&)> visible;
  // The trust report of a repo's revision.
  std::function<TrustReport(const store::RepoInfo&, const GitOid&)> trust;
  int max_depth = 16;
  size_t max_repos = 5000;  // repos scanned for derived models
};

// {"id", "license", "licenseClass", "signature", "verdict", "relation", "bases": [...],
//  "derived": [...]}; a base that is not on this node is {"id", "onNode": false}.
// NotFound when the repo is absent or not visible, or has no default branch.
Result<nlohmann::json> Lineage(store::Store& st, const store::RepoId& repo, const LineageOptions& options);

// The same as indented text, one model per line.
std::string LineageText(const nlohmann::json& lineage);

}  // namespace hubnode::hub

// Maps a request path to a route of the Hugging Face compatible API. Routing keys on the
// /resolve/, /raw/, /revision/, /tree/ ... markers, not on the number of segments, so one-segment
// repo ids (`gpt2`) and two-segment ids (`ns/name`) both work; revisions may contain slashes
// (`refs/pr/1`, given raw or percent-encoded).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hubnode::hub {

enum class RouteKind {
  kNone,
  kResolve,     // /{repo}/resolve/{rev}/{path}
  kRaw,         // /{repo}/raw/{rev}/{path}
  kRepoInfo,    // /api/models/{repo}[/revision/{rev}]
  kTree,        // /api/models/{repo}/tree/{rev}[/{path}]
  kPathsInfo,   // /api/models/{repo}/paths-info/{rev}
  kRefs,        // /api/models/{repo}/refs
  kCommits,     // /api/models/{repo}/commits/{rev}
  kTrust,       // /api/models/{repo}/trust[/{rev}]
  kChunkMap,    // /api/models/{repo}/chunk-map[/{rev}]
  kLineage,     // /api/models/{repo}/lineage
  kCard,        // /api/models/{repo}/card[/{rev}] (the card as safe HTML, for the web UI)
  kPeers,       // /api/models/{repo}/peers[/{rev}] (what the node's peers hold of a revision)
  kListRepos,   // /api/models
  kWhoami,      // /api/whoami-v2
  kNode,        // /api/node (store figures and peers, for node-wide tokens)
  kTokens,      // /api/tokens (the tokens the caller may see: itself, its namespace's, or all)
  kHealth,      // /health
  kMetrics,     // /metrics
};

struct Route {
  RouteKind kind = RouteKind::kNone;
  std::string repo_type = "model";  // model, dataset or space
  std::string repo;                 // as given; validated by the handler
  std::string rev;                  // empty = default
  std::string path;
};

// `target` is the raw request target (path and query, still percent-encoded): each segment is
// decoded on its own, so an encoded '/' inside a revision (`feat%2Fx`) stays in the revision.
Route ParseRoute(std::string_view target);

// The raw request target's path (query dropped) split on '/', each segment percent-decoded on
// its own, so an encoded slash (`feat%2Fx`, `refs%2Fpr%2F1`) stays inside its segment.
std::vector<std::string> SplitTarget(std::string_view target);
// Segments [from, to) joined with '/'.
std::string JoinSegments(const std::vector<std::string>& s, size_t from, size_t to);

// The name of a route kind for metrics and logs.
std::string_view RouteName(RouteKind kind);

}  // namespace hubnode::hub

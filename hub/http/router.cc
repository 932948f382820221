#include "hub/http/router.h"

#include <vector>

namespace hubnode::hub {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one segment ('+' stays '+': this is a path, not a form).
std::string Decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0, lo = 0;
    if (s[i] == '%' && i + 2 < s.size() && (hi = HexValue(s[i + 1])) >= 0 && (lo = HexValue(s[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> SplitTarget(std::string_view target) {
  std::string_view p = target.substr(0, target.find('?'));
  if (!p.empty() && p[0] == '/') p.remove_prefix(1);
  std::vector<std::string> out;
  while (!p.empty()) {
    size_t slash = p.find('/');
    out.push_back(Decode(p.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  return out;
}

std::string JoinSegments(const std::vector<std::string>& s, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < s.size(); ++i) {
    if (i > from) out.push_back('/');
    out.append(s[i]);
  }
  return out;
}

namespace {

// Splits "rev/path..." where rev may be refs/pr/N, refs/convert/X, refs/heads/X or refs/tags/X.
void SplitRev(const std::vector<std::string>& s, size_t i, Route* r) {
  size_t rev_len = 1;
  if (s.size() > i + 2 && s[i] == "refs" &&
      (s[i + 1] == "pr" || s[i + 1] == "convert" || s[i + 1] == "heads" || s[i + 1] == "tags")) {
    rev_len = 3;
  }
  r->rev = JoinSegments(s, i, i + rev_len);
  r->path = JoinSegments(s, i + rev_len, s.size());
}

bool IsRepoType(std::string_view s) { return s == "models" || s == "datasets" || s == "spaces"; }

std::string Singular(std::string_view plural) { return std::string(plural.substr(0, plural.size() - 1)); }

}  // namespace

Route ParseRoute(std::string_view target) {
  Route r;
  std::string_view path = target.substr(0, target.find('?'));
  if (path.empty() || path[0] != '/') return r;
  path.remove_prefix(1);
  const auto s = SplitTarget(target);
  auto only = [](RouteKind k) {
    Route out;
    out.kind = k;
    return out;
  };
  if (path == "health") return only(RouteKind::kHealth);
  if (path == "metrics") return only(RouteKind::kMetrics);
  if (path == "api/whoami-v2") return only(RouteKind::kWhoami);
  if (path == "api/node") return only(RouteKind::kNode);
  if (path == "api/tokens") return only(RouteKind::kTokens);
  if (s.empty()) return r;

  if (s[0] == "api") {
    if (s.size() < 2 || !IsRepoType(s[1])) return r;
    r.repo_type = Singular(s[1]);
    if (s.size() == 2) {
      r.kind = RouteKind::kListRepos;
      return r;
    }
    // Repo id of one or two segments, then an optional marker.
    auto marker = [](std::string_view m) {
      return m == "revision" || m == "tree" || m == "paths-info" || m == "refs" || m == "commits" || m == "trust" ||
             m == "chunk-map" || m == "lineage" || m == "card" || m == "peers";
    };
    // A marker right after one segment ends a one-segment repo id, unless another marker follows
    // it (then the first is the second segment of the name: `ns/card/revision/main`).
    size_t n = (s.size() == 3 || (marker(s[3]) && !(s.size() > 4 && marker(s[4])))) ? 1 : 2;
    r.repo = JoinSegments(s, 2, 2 + n);
    size_t i = 2 + n;
    if (i >= s.size()) {
      r.kind = RouteKind::kRepoInfo;
      return r;
    }
    std::string_view m = s[i];
    if (m == "refs" && i + 1 == s.size()) {
      r.kind = RouteKind::kRefs;
      return r;
    }
    if (m == "trust" && i + 1 == s.size()) {
      r.kind = RouteKind::kTrust;
      return r;
    }
    if (m == "chunk-map" && i + 1 == s.size()) {
      r.kind = RouteKind::kChunkMap;
      return r;
    }
    if (m == "lineage" && i + 1 == s.size()) {
      r.kind = RouteKind::kLineage;
      return r;
    }
    if (m == "card" && i + 1 == s.size()) {
      r.kind = RouteKind::kCard;
      return r;
    }
    if (m == "peers" && i + 1 == s.size()) {
      r.kind = RouteKind::kPeers;
      return r;
    }
    if (i + 1 >= s.size()) return Route{};
    SplitRev(s, i + 1, &r);
    if (m == "revision" && r.path.empty()) {
      r.kind = RouteKind::kRepoInfo;
    } else if (m == "tree") {
      r.kind = RouteKind::kTree;
    } else if (m == "paths-info" && r.path.empty()) {
      r.kind = RouteKind::kPathsInfo;
    } else if (m == "commits" && r.path.empty()) {
      r.kind = RouteKind::kCommits;
    } else if (m == "trust" && r.path.empty()) {
      r.kind = RouteKind::kTrust;
    } else if (m == "chunk-map" && r.path.empty()) {
      r.kind = RouteKind::kChunkMap;
    } else if (m == "card" && r.path.empty()) {
      r.kind = RouteKind::kCard;
    } else if (m == "peers" && r.path.empty()) {
      r.kind = RouteKind::kPeers;
    } else {
      return Route{};
    }
    return r;
  }

  size_t base = 0;
  if (s[0] == "datasets" || s[0] == "spaces") {
    r.repo_type = Singular(s[0]);
    base = 1;
  }
  for (size_t n = 1; n <= 2; ++n) {
    size_t i = base + n;
    if (i < s.size() && (s[i] == "resolve" || s[i] == "raw") && i + 2 < s.size()) {
      r.kind = s[i] == "resolve" ? RouteKind::kResolve : RouteKind::kRaw;
      r.repo = JoinSegments(s, base, i);
      SplitRev(s, i + 1, &r);
      if (r.path.empty()) return Route{};
      return r;
    }
  }
  return Route{};
}

std::string_view RouteName(RouteKind kind) {
  switch (kind) {
    case RouteKind::kNone: return "none";
    case RouteKind::kResolve: return "resolve";
    case RouteKind::kRaw: return "raw";
    case RouteKind::kRepoInfo: return "repo_info";
    case RouteKind::kTree: return "tree";
    case RouteKind::kPathsInfo: return "paths_info";
    case RouteKind::kRefs: return "refs";
    case RouteKind::kCommits: return "commits";
    case RouteKind::kTrust: return "trust";
    case RouteKind::kChunkMap: return "chunk_map";
    case RouteKind::kLineage: return "lineage";
    case RouteKind::kCard: return "card";
    case RouteKind::kPeers: return "peers";
    case RouteKind::kListRepos: return "list_repos";
    case RouteKind::kWhoami: return "whoami";
    case RouteKind::kNode: return "node";
    case RouteKind::kTokens: return "tokens";
    case RouteKind::kHealth: return "health";
    case RouteKind::kMetrics: return "metrics";
  }
  return "none";
}

}  // namespace hubnode::hub

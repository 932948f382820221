// The JSON API: repo info, tree, paths-info, refs, commits, repo listing, whoami, the node, tokens.
#include <algorithm>
#include <charconv>
#include <map>
#include <ctime>

#include "base/file.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "hub/peer/chunk_maps.h"
#include "hub/read/card_html.h"
#include "hub/read/handlers.h"
#include "hub/trust/card.h"
#include "hub/trust/lineage.h"

namespace hubnode::hub {
namespace {

constexpr size_t kMaxSmallFile = 1 << 20;     // README.md / config.json read for repo info
constexpr size_t kDefaultPage = 1000;
constexpr size_t kMaxPage = 10000;
// Paths per paths-info request (the Python client sends at most 50 per call), and entries per
// page of an expanded tree listing (each needs its last commit).
constexpr size_t kMaxPaths = 1000;
constexpr size_t kMaxExpandedPage = 100;
constexpr size_t kLastCommitDepth = 100;

size_t QueryNumber(const httplib::Request& req, const char* name, size_t fallback, size_t max) {
  if (!req.has_param(name)) return fallback;
  std::string v = req.get_param_value(name);
  size_t n = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return fallback;
  return std::min(n, max);
}

// A "Link: <...>; rel=\"next\"" for the same request with cursor=next (absolute: the JS client
// ignores relative links).
void SetNextLink(const httplib::Request& req, const std::string& base, size_t next, httplib::Response& res) {
  std::string url = base + UrlEncode(req.path, true) + "?";
  for (const auto& [k, v] : req.params) {
    if (k == "cursor") continue;
    url += UrlEncode(k, false) + "=" + UrlEncode(v, false) + "&";
  }
  url += "cursor=" + std::to_string(next);
  res.set_header("Link", "<" + url + ">; rel=\"next\"");
}

std::string MongoLikeId(const std::string& repo) { return Sha256Of("repo:" + repo).hex().substr(0, 24); }

Result<std::string> ReadSmallFile(store::Store* st, const GitOid& commit, const std::string& path) {
  ASSIGN_OR_RETURN(store::FileEntry f, st->StatFile(commit, path));
  if (f.size > kMaxSmallFile) return ResourceExhaustedError(path + " is too large to inline");
  ASSIGN_OR_RETURN(auto reader, st->OpenFile(f));
  return reader->ReadToString(0, f.size);
}

json Visibility(const store::RepoInfo& r) {
  return r.visibility == store::Visibility::kGated ? json("manual") : json(false);
}

}  // namespace

bool Handlers::CanPullThrough(const store::RepoId& repo) const {
  return mirror_ != nullptr && !options_.offline && options_.mirror_policy.Allows(repo.str());
}

bool Handlers::Holds(const store::RepoId& repo, const std::string& rev) {
  return store_->GetRepo(repo).ok() && store_->Resolve(repo, rev).ok();
}

bool Handlers::PullThrough(const store::RepoId& repo, const std::string& rev, bool repo_missing,
                           httplib::Response& res) {
  auto pulled = mirror_->Pull(repo, rev, PullOptions{});
  if (pulled.ok()) return true;
  SendPullError(repo, rev, pulled.status(), repo_missing, res);
  return false;
}

void Handlers::SendPullError(const store::RepoId& repo, const std::string& rev, const Status& s, bool repo_missing,
                             httplib::Response& res) {
  switch (s.code()) {
    case StatusCode::kNotFound:
    case StatusCode::kPermissionDenied:
      if (repo_missing) {
        SendError(res, 401, "RepoNotFound", "Repository not found");
      } else {
        SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + rev.substr(0, 200));
      }
      break;
    case StatusCode::kFailedPrecondition:
      // The node's license or signature policy refused (or holds) what the upstream has.
      SendError(res, 451, "PolicyRefused", s.message());
      break;
    case StatusCode::kDeadlineExceeded:
      res.set_header("Retry-After", "30");
      SendError(res, 504, "UpstreamTimeout", "the upstream did not answer in time; retry later");
      break;
    case StatusCode::kUnavailable:
    case StatusCode::kDataLoss:
      // Retryable, and never RepoNotFound: the repo may well exist upstream.
      res.set_header("Retry-After", "30");
      SendError(res, 502, "UpstreamUnavailable", "the upstream is unavailable; retry later");
      break;
    default:
      SendStatus(res, s);
  }
  LOG(Warning) << "pull-through of " << repo.str() << "@" << rev.substr(0, 200) << " failed: " << s.ToString();
}

std::optional<store::RepoInfo> Handlers::OpenRepo(const Route& r, const std::optional<Principal>& who,
                                                  httplib::Response& res) {
  auto id = store::RepoId::Parse(r.repo);
  if (!id.ok()) {
    SendError(res, 400, "BadRequest", id.status().message());
    return std::nullopt;
  }
  auto info = r.repo_type == "model" ? store_->GetRepo(*id) : Result<store::RepoInfo>(NotFoundError("no such repo"));
  if (!info.ok() && info.status().code() == StatusCode::kNotFound && r.repo_type == "model" && CanPullThrough(*id)) {
    if (!PullThrough(*id, r.rev.empty() || r.rev == "HEAD" ? "main" : r.rev, true, res)) return std::nullopt;
    info = store_->GetRepo(*id);
  }
  if (!info.ok() && info.status().code() != StatusCode::kNotFound) {
    SendStatus(res, info.status());
    return std::nullopt;
  }
  // A private repo answers exactly as a missing one.
  if (!info.ok() || (info->visibility == store::Visibility::kPrivate && !CanRead(who, *info))) {
    SendError(res, 401, "RepoNotFound", "Repository not found");
    return std::nullopt;
  }
  return *info;
}

void Handlers::RefreshMirrored(const store::RepoInfo& repo, const std::string& rev, httplib::Response& res) {
  if (options_.mirror_ttl_s < 0 || !CanPullThrough(repo.id)) return;
  const std::string branch = rev.empty() || rev == "HEAD" ? repo.default_branch : rev;
  if (branch.size() == 40 && IsLowerHex(branch)) return;  // a commit id never moves
  auto record = store_->GetRepoData(repo.id, "mirror");
  if (!record.ok() || !*record) return;  // not a mirrored repo
  if (!store_->Resolve(repo.id, branch).ok()) return;  // not held: the pull-through path fetches it
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(refresh_mu_);
    const std::string key = repo.id.str() + "\n" + branch;
    auto it = refreshed_.find(key);
    if (it != refreshed_.end() && now - it->second < std::chrono::seconds(options_.mirror_ttl_s)) return;
    if (refreshed_.size() > 100000) refreshed_.clear();
    refreshed_[key] = now;  // one re-resolve per TTL, whoever asks meanwhile
  }
  auto pulled = mirror_->Pull(repo.id, branch, PullOptions{});
  if (pulled.ok()) return;
  const StatusCode code = pulled.status().code();
  res.set_header("X-Hubnode-Mirror-Stale",
                 code == StatusCode::kUnavailable || code == StatusCode::kDeadlineExceeded
                     ? "the upstream is unavailable; serving the last revision held"
                     : "the upstream's revision could not be mirrored; serving the last revision held");
  LOG(Warning) << "refresh of mirrored " << repo.id.str() << "@" << branch.substr(0, 200) << ": " << pulled.status().ToString();
}

std::optional<GitOid> Handlers::ResolveRev(const store::RepoInfo& repo, const std::string& rev,
                                           const std::optional<Principal>& who, httplib::Response& res) {
  const bool writer = CanWrite(who, repo.id);
  RefreshMirrored(repo, rev, res);
  auto resolve = [&](const std::string& r) { return writer ? store_->ResolveStaged(repo.id, r) : store_->Resolve(repo.id, r); };
  auto c = resolve(rev.empty() ? "HEAD" : rev);
  if (!c.ok() && c.status().code() == StatusCode::kNotFound && !rev.empty() && rev != "HEAD" &&
      CanPullThrough(repo.id)) {
    if (!PullThrough(repo.id, rev, false, res)) return std::nullopt;
    c = resolve(rev);
  }
  if (!c.ok()) {
    if (c.status().code() == StatusCode::kNotFound || c.status().code() == StatusCode::kInvalidArgument) {
      SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + rev.substr(0, 200));
    } else {
      SendStatus(res, c.status());
    }
    return std::nullopt;
  }
  if (writer) {
    // Tell the writer when what they read is staged: readers without write access see less.
    auto released = store_->Resolve(repo.id, rev.empty() ? "HEAD" : rev);
    if (!released.ok() || *released != *c) {
      res.set_header("X-Hubnode-Held", "staged for review by this node's policy: only the repo's writers see it");
    }
  }
  return *c;
}

std::vector<json> Handlers::LastCommits(const GitOid& commit, const std::vector<std::string>& paths) {
  // For each path, the oldest commit of the run (on the first-parent chain, newest first) over
  // which the path keeps the content it has at `commit`. One pass for all paths: a path's object
  // at commit i is its object at commit i-1 when its directory's tree did not change between them
  // (no listing then), else an entry of that directory's listing at i, read once per commit and
  // directory. So the cost follows what changed, not paths x history (10,000 paths took 18 s).
  std::vector<json> out(paths.size(), nullptr);
  auto log = store_->Log(commit, kLastCommitDepth);
  if (!log.ok() || log->empty()) return out;
  const size_t n = log->size();
  using Oid = std::optional<GitOid>;
  std::vector<std::unordered_map<std::string, Oid>> memo(n);
  std::vector<std::unordered_map<std::string, std::unordered_map<std::string, GitOid>>> listings(n);
  std::function<Oid(size_t, const std::string&)> oid_at = [&](size_t i, const std::string& path) -> Oid {
    auto hit = memo[i].find(path);
    if (hit != memo[i].end()) return hit->second;
    Oid result;
    if (path.empty()) {
      result = (*log)[i].tree;
    } else {
      const size_t slash = path.rfind('/');
      const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
      const Oid dir_oid = oid_at(i, dir);
      if (dir_oid && i > 0 && oid_at(i - 1, dir) == dir_oid) {
        result = oid_at(i - 1, path);  // the same directory tree: the same entry
      } else if (dir_oid) {
        auto& listing = listings[i];
        auto it = listing.find(dir);
        if (it == listing.end()) {
          std::unordered_map<std::string, GitOid> entries;
          if (auto items = store_->ListTree((*log)[i].id, dir, false); items.ok()) {
            for (const auto& item : *items) entries.emplace(item.path, item.oid);
          }
          it = listing.emplace(dir, std::move(entries)).first;
        }
        if (auto e = it->second.find(path); e != it->second.end()) result = e->second;
      }
    }
    memo[i].emplace(path, result);
    return result;
  };
  for (size_t k = 0; k < paths.size(); ++k) {
    const Oid current = oid_at(0, paths[k]);
    size_t last = 0;
    for (size_t i = 1; i < n && oid_at(i, paths[k]) == current; ++i) last = i;
    const store::CommitInfo& c = (*log)[last];
    out[k] = json{{"id", c.id.hex()}, {"title", c.Title()}, {"date", IsoTime(c.committer.time)}};
  }
  return out;
}

json Handlers::FileJson(const store::FileEntry& f) {
  json j = {{"type", "file"}, {"oid", f.blob.hex()}, {"size", f.size}, {"path", f.path}};
  if (f.lfs) j["lfs"] = {{"oid", f.sha256.hex()}, {"size", f.size}, {"pointerSize", f.pointer_size}};
  return j;
}

void Handlers::RepoInfo(const Route& r, const std::optional<Principal>& who, const httplib::Request&,
                        httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  auto c = store_->GetCommit(*commit);
  auto files = store_->ListFiles(*commit);
  if (!c.ok() || !files.ok()) return SendStatus(res, !c.ok() ? c.status() : files.status());

  json siblings = json::array();
  std::map<std::string, uint64_t> params;
  uint64_t total_params = 0, used = 0;
  for (const auto& f : *files) {
    json s = {{"rfilename", f.path}, {"size", f.size}, {"blobId", f.blob.hex()}};
    if (f.lfs) s["lfs"] = {{"size", f.size}, {"sha256", f.sha256.hex()}, {"pointerSize", f.pointer_size}};
    siblings.push_back(s);
    used += f.size;
    if (f.path.size() > 12 && f.path.compare(f.path.size() - 12, 12, ".safetensors") == 0) {
      auto tensors = store_->ListTensors(f);
      if (!tensors.ok()) continue;
      for (const auto& t : *tensors) {
        uint64_t n = 1;
        for (uint64_t d : t.shape) n *= d;
        params[t.dtype] += n;
        total_params += n;
      }
    }
  }
  json card = nullptr, tags = json::array();
  if (auto readme = ReadSmallFile(store_, *commit, "README.md"); readme.ok()) card = CardDataFromReadme(*readme);
  if (card.is_object() && card.contains("tags") && card["tags"].is_array()) {
    for (const auto& t : card["tags"]) {
      if (t.is_string()) tags.push_back(t);
    }
  }
  std::string ns = repo->id.str().find('/') == std::string::npos ? "" : repo->id.str().substr(0, repo->id.str().find('/'));
  json j = {{"_id", MongoLikeId(repo->id.str())},
            {"id", repo->id.str()},
            {"modelId", repo->id.str()},
            {"author", ns},
            {"sha", commit->hex()},
            {"lastModified", IsoTime(c->committer.time)},
            {"createdAt", IsoTime(repo->created)},
            {"private", repo->visibility == store::Visibility::kPrivate},
            {"gated", Visibility(*repo)},
            {"disabled", false},
            {"downloads", 0},
            {"likes", 0},
            {"tags", tags},
            {"siblings", siblings},
            {"spaces", json::array()},
            {"usedStorage", used}};
  if (!card.is_null()) {
    j["cardData"] = card;
    if (card.is_object() && card.contains("library_name")) j["library_name"] = card["library_name"];
    if (card.is_object() && card.contains("pipeline_tag")) j["pipeline_tag"] = card["pipeline_tag"];
  }
  if (total_params > 0) j["safetensors"] = {{"parameters", params}, {"total", total_params}};
  if (res.has_header("X-Hubnode-Held")) {
    const std::string branch = r.rev.empty() || r.rev == "HEAD" ? repo->default_branch : r.rev;
    j["held"] = {{"reason", res.get_header_value("X-Hubnode-Held")},
                 {"ref", "refs/held/" + (branch.starts_with("refs/heads/") ? branch.substr(11) : branch)},
                 {"release", "hubnode approve " + repo->id.str() + "@refs/held/" +
                                 (branch.starts_with("refs/heads/") ? branch.substr(11) : branch)}};
  }
  // A mirrored repo says how: over git with the upstream's own commit ids, or from files with
  // the node's (refs/mirror/<upstream sha> maps them).
  if (auto m = store_->GetRepoData(repo->id, "mirror"); m.ok() && *m) {
    json mj = JsonDepthWithin(**m) ? json::parse(**m, nullptr, false) : json(json::value_t::discarded);
    if (mj.is_object()) {
      mj.erase("upstream");  // the upstream's address is the operator's business
      j["mirror"] = mj;
    }
  }
  if (res.has_header("X-Hubnode-Mirror-Stale")) j["mirrorStale"] = res.get_header_value("X-Hubnode-Mirror-Stale");
  j["locality"] = Locality(*commit);
  TrustReport trust = TrustOf(*repo, *commit, who);
  j["licenseClass"] = trust.license_class;
  j["signatureStatus"] = trust.signature;
  j["trustVerdict"] = std::string(verify::VerdictName(trust.verdict));
  if (auto cfg = ReadSmallFile(store_, *commit, "config.json"); cfg.ok()) {
    json config = (JsonDepthWithin(*cfg) ? json::parse(*cfg, nullptr, false) : json(json::value_t::discarded));
    if (config.is_object()) {
      json small = json::object();
      for (const char* k : {"model_type", "architectures"}) {
        if (config.contains(k)) small[k] = config[k];
      }
      j["config"] = small;
    }
  }
  SendJson(res, j);
}

void Handlers::Tree(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                    httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  bool recursive = QueryFlag(req, "recursive", false), expand = QueryFlag(req, "expand", false);
  auto items = store_->ListTree(*commit, r.path, recursive);
  if (!items.ok()) {
    if (items.status().code() == StatusCode::kNotFound) {
      res.set_header("X-Repo-Commit", commit->hex());
      return SendError(res, 404, "EntryNotFound", "Entry not found");
    }
    return SendStatus(res, items.status());
  }
  size_t limit = QueryNumber(req, "limit", kDefaultPage, kMaxPage);
  if (limit == 0) limit = kDefaultPage;
  size_t cursor = QueryNumber(req, "cursor", 0, items->size());
  if (expand) limit = std::min(limit, kMaxExpandedPage);
  json out = json::array();
  std::vector<std::string> file_paths;
  for (size_t i = cursor; i < items->size() && i < cursor + limit; ++i) {
    const auto& it = (*items)[i];
    out.push_back(it.is_dir ? json{{"type", "directory"}, {"oid", it.oid.hex()}, {"path", it.path}} : FileJson(it.file));
    if (!it.is_dir) file_paths.push_back(it.path);
  }
  if (expand) {
    std::vector<json> last = LastCommits(*commit, file_paths);
    size_t k = 0;
    for (json& e : out) {
      if (e["type"] == "file") e["lastCommit"] = std::move(last[k++]);
    }
  }
  if (cursor + limit < items->size()) SetNextLink(req, BaseUrl(req, options_.public_url), cursor + limit, res);
  SendJson(res, out);
}

void Handlers::PathsInfo(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                         httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  std::vector<std::string> paths;
  bool expand = false;
  if (req.get_header_value("Content-Type").rfind("application/json", 0) == 0) {
    json body = (JsonDepthWithin(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded));
    if (body.is_discarded() || !body.is_object() || !body.contains("paths") || !body["paths"].is_array()) {
      return SendError(res, 400, "BadRequest", "body must be {\"paths\": [...], \"expand\": bool}");
    }
    for (const auto& p : body["paths"]) {
      if (!p.is_string()) return SendError(res, 400, "BadRequest", "paths must be strings");
      paths.push_back(p.get<std::string>());
    }
    expand = body.value("expand", false) == true;
  } else {
    size_t n = req.get_param_value_count("paths");
    for (size_t i = 0; i < n; ++i) paths.push_back(req.get_param_value("paths", i));
    expand = QueryFlag(req, "expand", false);
  }
  if (paths.size() > kMaxPaths) {
    return SendError(res, 400, "BadRequest", "at most " + std::to_string(kMaxPaths) + " paths per request");
  }
  json out = json::array();
  std::vector<std::string> file_paths;
  for (const auto& p : paths) {
    auto item = store_->StatPath(*commit, p);
    if (!item.ok() || p.empty()) continue;  // absent paths are simply not listed
    out.push_back(item->is_dir ? json{{"type", "directory"}, {"oid", item->oid.hex()}, {"path", item->path}}
                               : FileJson(item->file));
    if (!item->is_dir) file_paths.push_back(item->path);
  }
  if (expand) {
    std::vector<json> last = LastCommits(*commit, file_paths);
    size_t k = 0;
    for (json& e : out) {
      if (e["type"] == "file") e["lastCommit"] = std::move(last[k++]);
    }
  }
  SendJson(res, out);
}

void Handlers::Refs(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                    httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto refs = store_->ListRefs(repo->id);
  if (!refs.ok()) return SendStatus(res, refs.status());
  json branches = json::array(), tags = json::array(), prs = json::array();
  // The repo's writers see each branch at its staged head (refs/held/<branch>), held-only
  // branches included; everyone else sees the released heads.
  std::map<std::string, GitOid> held;
  if (CanWrite(who, repo->id)) {
    for (const auto& ref : *refs) {
      if (ref.name.rfind("refs/held/", 0) == 0) held[ref.name.substr(10)] = ref.commit;
    }
  }
  for (const auto& ref : *refs) {
    auto entry = [&](std::string name) {
      return json{{"name", name}, {"ref", ref.name}, {"targetCommit", ref.commit.hex()}};
    };
    if (ref.name.rfind("refs/heads/", 0) == 0) {
      const std::string name = ref.name.substr(11);
      auto h = held.find(name);
      if (h == held.end()) {
        branches.push_back(entry(name));
      } else {
        branches.push_back({{"name", name}, {"ref", ref.name}, {"targetCommit", h->second.hex()}, {"held", true}});
        held.erase(h);
      }
    }
    if (ref.name.rfind("refs/tags/", 0) == 0) tags.push_back(entry(ref.name.substr(10)));
    if (ref.name.rfind("refs/pr/", 0) == 0) prs.push_back(entry(ref.name.substr(5)));
  }
  for (const auto& [name, commit] : held) {
    branches.push_back({{"name", name}, {"ref", "refs/heads/" + name}, {"targetCommit", commit.hex()}, {"held", true}});
  }
  json out = {{"branches", branches}, {"tags", tags}, {"converts", json::array()}};
  if (QueryFlag(req, "include_prs", false)) out["pullRequests"] = prs;
  SendJson(res, out);
}

void Handlers::Commits(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                       httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  size_t limit = QueryNumber(req, "limit", 50, 1000);
  if (limit == 0) limit = 50;
  size_t cursor = QueryNumber(req, "cursor", 0, 1'000'000);
  auto log = store_->Log(*commit, cursor + limit + 1);
  if (!log.ok()) return SendStatus(res, log.status());
  json out = json::array();
  for (size_t i = cursor; i < log->size() && i < cursor + limit; ++i) {
    const auto& c = (*log)[i];
    out.push_back({{"id", c.id.hex()}, {"title", c.Title()}, {"message", c.message},
                   {"authors", json::array({json{{"user", c.author.name}}})}, {"date", IsoTime(c.committer.time)}});
  }
  if (QueryFlag(req, "stats", false) && cursor < log->size()) {
    AddCommitStats(repo->id, std::span<const store::CommitInfo>(*log).subspan(cursor), who, out);
  }
  if (log->size() > cursor + limit) SetNextLink(req, BaseUrl(req, options_.public_url), cursor + limit, res);
  SendJson(res, out);
}

json Handlers::RepoFacts(const store::RepoInfo& repo, const GitOid& head, const std::optional<Principal>& who) {
  std::string trust_text;
  if (!options_.trust_path.empty()) trust_text = ReadFileToString(options_.trust_path, 16 << 20).value_or("");
  const std::string view = !who ? "-" : who->ns.empty() ? "*" : who->ns;
  const std::string key = repo.id.str() + "\n" + head.hex() + "\n" + view + "\n" + Sha256Of(trust_text).hex();
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(verdict_mu_);
    auto it = facts_.find(key);
    if (it != facts_.end() && now - it->second.second < std::chrono::seconds(30)) return it->second.first;
  }
  json f = json::object();
  if (!head.IsZero()) {
    TrustReport t = TrustOf(repo, head, who);
    f["license"] = t.spdx;
    f["licenseClass"] = t.license_class;
    f["signatureStatus"] = t.signature;
    f["trustVerdict"] = std::string(verify::VerdictName(t.verdict));
    uint64_t size = 0;
    if (auto files = store_->ListFiles(head); files.ok()) {
      for (const auto& file : *files) size += file.size;
    }
    f["usedStorage"] = size;
    f["modelType"] = nullptr;
    if (auto cfg = ReadSmallFile(store_, head, "config.json"); cfg.ok()) {
      json config = JsonDepthWithin(*cfg) ? json::parse(*cfg, nullptr, false) : json(json::value_t::discarded);
      if (config.is_object() && config.contains("model_type") && config["model_type"].is_string()) {
        f["modelType"] = config["model_type"];
      }
    }
  }
  std::lock_guard lock(verdict_mu_);
  if (facts_.size() >= 4096) facts_.clear();
  facts_[key] = {f, now};
  return f;
}

void Handlers::ListRepos(const std::optional<Principal>& who, const httplib::Request& req, httplib::Response& res) {
  auto repos = store_->ListRepos();
  if (!repos.ok()) return SendStatus(res, repos.status());
  std::string search = req.get_param_value("search"), author = req.get_param_value("author");
  std::string sort = req.has_param("sort") ? req.get_param_value("sort") : "id";
  // Filters on what a full listing says (the web UI's facets); any of them implies full.
  const std::string want_class = req.get_param_value("license_class"), want_sig = req.get_param_value("signature"),
                    want_family = req.get_param_value("family"), want_verdict = req.get_param_value("verdict");
  const bool want_held = QueryFlag(req, "held", false);
  const bool full = QueryFlag(req, "full", false) || !want_class.empty() || !want_sig.empty() || !want_family.empty() ||
                    !want_verdict.empty() || want_held;
  struct Row {
    store::RepoInfo info;
    GitOid sha;
    int64_t modified;
    json facts;
    bool held = false;
  };
  std::vector<Row> rows;
  for (const auto& r : *repos) {
    if (r.visibility == store::Visibility::kPrivate && !CanRead(who, r)) continue;
    const std::string& id = r.id.str();
    if (!search.empty() && id.find(search) == std::string::npos) continue;
    if (!author.empty() && id.rfind(author + "/", 0) != 0) continue;
    Row row{r, GitOid(), r.created, json(), false};
    if (auto head = store_->Resolve(r.id, "HEAD"); head.ok()) {
      row.sha = *head;
      if (auto c = store_->GetCommit(*head); c.ok()) row.modified = c->committer.time;
    }
    if (full) {
      row.facts = RepoFacts(r, row.sha, who);
      // Held for review: only the repo's writers learn that something is staged.
      if (CanWrite(who, r.id)) {
        if (auto refs = store_->ListRefs(r.id); refs.ok()) {
          for (const auto& rf : *refs) row.held |= rf.name.starts_with("refs/held/");
        }
      }
      auto str = [&](const char* k) {
        return row.facts.contains(k) && row.facts[k].is_string() ? row.facts[k].get<std::string>() : std::string();
      };
      if (!want_class.empty() && str("licenseClass") != want_class) continue;
      if (!want_sig.empty() && str("signatureStatus") != want_sig) continue;
      if (!want_family.empty() && str("modelType") != want_family) continue;
      if (!want_verdict.empty() && str("trustVerdict") != want_verdict) continue;
      if (want_held && !row.held) continue;
    }
    rows.push_back(std::move(row));
  }
  bool desc = req.get_param_value("direction") == "-1" || (sort != "id" && !req.has_param("direction"));
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (sort == "lastModified") return desc ? a.modified > b.modified : a.modified < b.modified;
    if (sort == "createdAt") return desc ? a.info.created > b.info.created : a.info.created < b.info.created;
    if (sort == "usedStorage" && full) {
      uint64_t sa = a.facts.value("usedStorage", uint64_t{0}), sb = b.facts.value("usedStorage", uint64_t{0});
      return desc ? sa > sb : sa < sb;
    }
    return desc ? a.info.id.str() > b.info.id.str() : a.info.id.str() < b.info.id.str();
  });
  size_t limit = QueryNumber(req, "limit", kDefaultPage, kMaxPage);
  if (limit == 0) limit = kDefaultPage;
  size_t cursor = QueryNumber(req, "cursor", 0, rows.size());
  json out = json::array();
  for (size_t i = cursor; i < rows.size() && i < cursor + limit; ++i) {
    const Row& row = rows[i];
    const std::string& id = row.info.id.str();
    json j = {{"_id", MongoLikeId(id)}, {"id", id}, {"modelId", id},
              {"author", id.find('/') == std::string::npos ? "" : id.substr(0, id.find('/'))},
              {"sha", row.sha.hex()}, {"lastModified", IsoTime(row.modified)},
              {"createdAt", IsoTime(row.info.created)},
              {"private", row.info.visibility == store::Visibility::kPrivate}, {"gated", Visibility(row.info)},
              {"downloads", 0}, {"likes", 0}, {"tags", json::array()}};
    if (full) {
      for (auto it = row.facts.begin(); it != row.facts.end(); ++it) j[it.key()] = it.value();
      if (row.held) j["held"] = true;
    }
    out.push_back(std::move(j));
  }
  res.set_header("X-Total-Count", std::to_string(rows.size()));
  if (cursor + limit < rows.size()) SetNextLink(req, BaseUrl(req, options_.public_url), cursor + limit, res);
  SendJson(res, out);
}

std::optional<std::string> Handlers::DeniedNow(const store::RepoInfo& repo, const GitOid& commit,
                                              const std::optional<Principal>& who) {
  std::string trust_text;
  if (!options_.trust_path.empty()) trust_text = ReadFileToString(options_.trust_path, 16 << 20).value_or("");
  const std::string view = !who ? "-" : who->ns.empty() ? "*" : who->ns;
  const std::string key = repo.id.str() + "\n" + commit.hex() + "\n" + view + "\n" + Sha256Of(trust_text).hex();
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(verdict_mu_);
    auto it = verdicts_.find(key);
    if (it != verdicts_.end() && now - it->second.at < std::chrono::seconds(30)) return it->second.denied;
  }
  TrustReport report = TrustOf(repo, commit, who);
  std::optional<std::string> denied;
  if (report.verdict == verify::Verdict::kDeny) denied = report.Summary();
  std::lock_guard lock(verdict_mu_);
  if (verdicts_.size() >= 4096) verdicts_.clear();  // a bound, not an LRU: verdicts are cheap to redo
  verdicts_[key] = CachedVerdict{denied, now};
  return denied;
}

TrustReport Handlers::TrustOf(const store::RepoInfo& repo, const GitOid& commit, const std::optional<Principal>& who) {
  verify::TrustStore trust;
  if (!options_.trust_path.empty()) {
    auto loaded = TrustFile(options_.trust_path).Load();
    if (loaded.ok()) trust = std::move(*loaded);
  }
  auto visible = [who](const store::RepoInfo& base) {
    return base.visibility != store::Visibility::kPrivate || CanRead(who, base);
  };
  return Assess(CommitView(*store_, repo.id, commit), repo.id.str(), NodeContext(trust, &matcher_, store_, visible));
}

void Handlers::Trust(const Route& r, const std::optional<Principal>& who, const httplib::Request&,
                     httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  json j = TrustOf(*repo, *commit, who).ToJson();
  j["sha"] = commit->hex();
  j["id"] = repo->id.str();
  SendJson(res, j);
}

void Handlers::ChunkMap(const Route& r, const std::optional<Principal>& who, httplib::Response& res) {
  if (options_.node_key == nullptr) return SendError(res, 404, "NotFound", "this node serves no chunk maps");
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  // A chunk map names every chunk of the files: it follows the download rule, not repo info's.
  if (repo->visibility == store::Visibility::kGated && !CanRead(who, *repo)) {
    return SendError(res, 403, "GatedRepo", "Access to model " + repo->id.str() + " is restricted.");
  }
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  if (auto denied = DeniedNow(*repo, *commit, who)) {
    return SendError(res, 451, "PolicyRefused", "This node's policy does not allow serving this revision: " + *denied);
  }
  auto map = ChunkMapOf(*store_, repo->id, *commit);
  if (!map.ok()) return SendStatus(res, map.status());
  auto bundle = verify::SignChunkMap(*map, *options_.node_key);
  if (!bundle.ok()) return SendStatus(res, bundle.status());
  res.set_header("X-Repo-Commit", commit->hex());
  res.set_content(*bundle, "application/json");
}

void Handlers::Whoami(const std::optional<Principal>& who, httplib::Response& res) {
  if (!who) return SendError(res, 401, "", "Invalid credentials in Authorization header");
  std::string name = who->ns.empty() ? who->token_name : who->ns;
  SendJson(res, {{"type", "user"},
                 {"id", MongoLikeId("user:" + name)},
                 {"name", name},
                 {"fullname", name},
                 {"orgs", json::array()},
                 {"auth",
                  {{"type", "access_token"},
                   {"accessToken",
                    {{"displayName", who->token_name},
                     {"role", std::string(ScopeName(who->scope))},
                     {"createdAt", IsoTime(who->created)}}}}}});
}

void Handlers::Node(const std::optional<Principal>& who, httplib::Response& res) {
  if (!who) return SendError(res, 401, "Unauthorized", "a node-wide token is required (Authorization: Bearer hf_...)");
  if (!who->ns.empty()) return SendError(res, 403, "Forbidden", "the node's figures are for node-wide tokens");
  const auto now = std::chrono::steady_clock::now();
  json stats;
  {
    std::lock_guard lock(node_mu_);
    if (node_stats_ && now - node_stats_->second < std::chrono::seconds(30)) stats = node_stats_->first;
  }
  if (stats.is_null()) {
    // A walk of every ref head: computed at most every 30 s whoever asks.
    auto s = store_->GetStats();
    if (!s.ok()) return SendStatus(res, s.status());
    stats = {{"repos", s->repos}, {"refs", s->refs}, {"commits", s->commits}, {"trees", s->trees},
             {"files", s->files}, {"chunks", s->chunks}, {"logicalBytes", s->logical_bytes},
             {"fileBytes", s->file_bytes}, {"chunkRawBytes", s->chunk_raw_bytes},
             {"chunkStoredBytes", s->chunk_stored_bytes}, {"chunksByCodec", s->chunks_by_codec},
             {"diskBytes", s->disk_bytes}};
    std::lock_guard lock(node_mu_);
    node_stats_ = std::make_pair(stats, now);
  }
  json peers = json::array();
  if (mirror_ != nullptr) {
    for (const auto& p : mirror_->PeerStatistics()) {
      peers.push_back({{"url", p.url}, {"chunks", p.chunks}, {"bytes", p.bytes}, {"failures", p.failures},
                       {"badChunks", p.bad_chunks}, {"seconds", p.seconds}, {"demoted", p.demoted},
                       {"bytesPerSecond", p.seconds > 0 ? static_cast<double>(p.bytes) / p.seconds : 0.0}});
    }
  }
  SendJson(res, {{"store", stats}, {"peers", peers}, {"upstream", mirror_ != nullptr && !options_.offline}});
}

void Handlers::Tokens(const std::optional<Principal>& who, httplib::Response& res) {
  if (!who) return SendError(res, 401, "Unauthorized", "a token is required (Authorization: Bearer hf_...)");
  auto tokens = tokens_->List();
  if (!tokens.ok()) return SendStatus(res, tokens.status());
  json out = json::array();
  for (const TokenInfo& t : *tokens) {
    const bool current = t.name == who->token_name;  // names are unique
    // A read token manages nothing: it sees itself. A write token sees the tokens of the
    // namespace it writes to; a node-wide one, every token.
    const bool visible = who->scope != Scope::kWrite ? current : who->ns.empty() || t.ns == who->ns;
    if (!visible) continue;
    out.push_back({{"name", t.name}, {"role", std::string(ScopeName(t.scope))}, {"namespace", t.ns},
                   {"createdAt", IsoTime(t.created)}, {"current", current}});
  }
  SendJson(res, out);
}

void Handlers::Card(const Route& r, const std::optional<Principal>& who, httplib::Response& res) {
  // The card is metadata (as repo info's cardData): public and gated repos show it to everyone.
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  if (auto denied = DeniedNow(*repo, *commit, who)) {
    return SendError(res, 451, "PolicyRefused", "This node's policy does not allow serving this revision: " + *denied);
  }
  res.set_header("X-Repo-Commit", commit->hex());
  auto readme = ReadSmallFile(store_, *commit, "README.md");
  if (!readme.ok()) return SendJson(res, {{"sha", commit->hex()}, {"html", ""}, {"card", false}});
  auto html = RenderCardHtml(*readme, "/" + repo->id.str() + "/resolve/" + commit->hex());
  if (!html.ok()) return SendError(res, 422, "CardTooLarge", html.status().message());
  SendJson(res, {{"sha", commit->hex()}, {"html", *html}, {"card", true}});
}

void Handlers::LineageRoute(const Route& r, const std::optional<Principal>& who, httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  LineageOptions o;
  o.visible = [&who](const store::RepoInfo& info) {
    return info.visibility != store::Visibility::kPrivate || CanRead(who, info);
  };
  o.trust = [this, who](const store::RepoInfo& info, const GitOid& commit) { return TrustOf(info, commit, who); };
  auto j = Lineage(*store_, repo->id, o);
  if (!j.ok()) {
    if (j.status().code() == StatusCode::kNotFound) return SendError(res, 404, "RevisionNotFound", "the repo has no commit yet");
    return SendStatus(res, j.status());
  }
  SendJson(res, *j);
}

json Handlers::Locality(const GitOid& commit) {
  constexpr size_t kMaxListed = 256;
  json out = {{"complete", true}};
  auto files = store_->ListFiles(commit);
  if (!files.ok()) return out;
  uint64_t total = 0, local = 0;
  json per_file = json::array();
  // Held chunk ranges of each LFS file, for the expert view.
  std::map<std::string, std::vector<std::pair<store::FileChunk, bool>>> chunks_of;
  for (const auto& f : *files) {
    total += f.size;
    if (!f.lfs) {
      local += f.size;
      continue;
    }
    auto chunks = store_->ListChunks(f);
    if (!chunks.ok()) continue;
    std::vector<ChunkId> ids;
    for (const auto& c : *chunks) ids.push_back(c.id);
    auto held = store_->HasChunks(ids);
    if (!held.ok()) continue;
    uint64_t have = 0;
    auto& list = chunks_of[f.path];
    for (size_t i = 0; i < ids.size(); ++i) {
      if ((*held)[i]) have += (*chunks)[i].size;
      list.emplace_back((*chunks)[i], (*held)[i]);
    }
    local += have;
    per_file.push_back({{"path", f.path}, {"size", f.size}, {"localBytes", have}});
  }
  out["complete"] = local == total;
  out["bytes"] = total;
  out["localBytes"] = local;
  out["files"] = per_file;
  auto experts = store_->GetExpertIndex(commit);
  if (experts.ok() && !experts->empty()) {
    size_t held_experts = 0;
    json missing = json::array();
    // The expert map: [layer, expert (-1 = shared), bytes, held] for each expert, for the web UI.
    constexpr size_t kMaxMapped = 16384;
    json map = json::array();
    for (const auto& [key, parts] : *experts) {
      bool whole = true;
      uint64_t bytes = 0;
      for (const auto& p : parts) {
        bytes += p.length;
        for (const auto& [c, held] : chunks_of[p.path]) {
          if (!held && c.offset < p.offset + p.length && c.offset + c.size > p.offset) whole = false;
        }
      }
      if (map.size() < kMaxMapped) {
        map.push_back({key.layer, key.expert == store::kSharedExpertIndex ? -1 : static_cast<int64_t>(key.expert), bytes,
                       whole ? 1 : 0});
      }
      if (whole) {
        ++held_experts;
      } else if (missing.size() < kMaxListed) {
        missing.push_back(std::to_string(key.layer) + ":" +
                          (key.expert == store::kSharedExpertIndex ? std::string("shared") : std::to_string(key.expert)));
      }
    }
    out["experts"] = {{"total", experts->size()}, {"local", held_experts}, {"missing", missing}, {"map", map}};
  }
  return out;
}

void Handlers::Handle(const httplib::Request& req, httplib::Response& res) {
  auto who = tokens_->Authenticate(req.get_header_value("Authorization"));
  if (!who.ok()) {
    SendError(res, 401, "", who.status().message());
    return;
  }
  Route r = ParseRoute(req.target);
  bool post = req.method == "POST";
  if (post != (r.kind == RouteKind::kPathsInfo)) {
    if (r.kind != RouteKind::kNone) {
      SendError(res, 405, "MethodNotAllowed", "method not allowed");
      return;
    }
  }
  switch (r.kind) {
    case RouteKind::kResolve:
    case RouteKind::kRaw: return File(r, *who, req, res);
    case RouteKind::kRepoInfo: return RepoInfo(r, *who, req, res);
    case RouteKind::kTree: return Tree(r, *who, req, res);
    case RouteKind::kPathsInfo: return PathsInfo(r, *who, req, res);
    case RouteKind::kRefs: return Refs(r, *who, req, res);
    case RouteKind::kCommits: return Commits(r, *who, req, res);
    case RouteKind::kTrust: return Trust(r, *who, req, res);
    case RouteKind::kChunkMap: return ChunkMap(r, *who, res);
    case RouteKind::kLineage: return LineageRoute(r, *who, res);
    case RouteKind::kCard: return Card(r, *who, res);
    case RouteKind::kPeers: return Peers(r, *who, res);
    case RouteKind::kListRepos: return ListRepos(*who, req, res);
    case RouteKind::kWhoami: return Whoami(*who, res);
    case RouteKind::kNode: return Node(*who, res);
    case RouteKind::kTokens: return Tokens(*who, res);
    case RouteKind::kHealth: return SendJson(res, json{{"status", "ok"}});
    default: return SendError(res, 404, "NotFound", "no such route");
  }
}

}  // namespace hubnode::hub

// The Hugging Face compatible read API: downloads (resolve/raw, ranges, the raw cache of hot
// files, pull-through from the upstream, 503 for chunks no peer can give), repo info, tree,
// paths-info, refs, commits, listing, whoami, /health, and the node's own trust, chunk-map and
// lineage routes. Each handler takes the parsed route and the caller's principal and fills the
// response; errors follow the Hugging Face clients' contract.
//
// Thread safety: Handle may be called concurrently.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <span>

#include "hub/http/auth.h"
#include "hub/http/http_util.h"
#include "hub/http/metrics.h"
#include "hub/http/router.h"
#include "hub/mirror/mirror.h"
#include "hub/peer/peer_have.h"
#include "hub/rawcache/raw_cache.h"
#include "hub/trust/trust_gate.h"
#include "store/store.h"

namespace hubnode::hub {

struct ReadOptions {
  // Base URL for absolute links (pagination); empty = from the request's Host header.
  // Default: empty.
  std::string public_url;
  // With a mirror: which repos may be pulled through. Default: all.
  MirrorPolicy mirror_policy;
  // Serve only what is held, never contact the upstream. Default: false.
  bool offline = false;
  // Seconds a mirrored branch is served before it is resolved against the upstream again; a
  // negative value never re-resolves. Default: 60.
  int64_t mirror_ttl_s = 60;
  // The trust store file, for the trust status of served revisions. Default: none.
  std::string trust_path;
  // Reference license texts. Default: Debian's.
  std::string common_licenses = "/usr/share/common-licenses";
  // This node's identity key, which signs the chunk maps it serves; none = no chunk maps.
  // Default: none.
  const verify::PrivateKey* node_key = nullptr;
  // The peers this node was started with (serve --peer): GET /api/models/{repo}/peers asks them
  // which chunks they hold (signed with node_key). Default: none.
  std::vector<std::string> peers;
};

class Handlers {
 public:
  // The store, tokens, metrics and mirror (nullable: no upstream) must outlive the handlers.
  Handlers(ReadOptions options, store::Store* store, TokenStore* tokens, Metrics* metrics, Mirror* mirror)
      : options_(std::move(options)),
        store_(store),
        tokens_(tokens),
        metrics_(metrics),
        mirror_(mirror),
        matcher_(verify::LicenseMatcher::FromDirectory(options_.common_licenses)),
        peer_holdings_(MakePeerHoldings(options_)) {}

  void Handle(const httplib::Request& req, httplib::Response& res);
  // Why repo@commit may not be served to `who` now: the policy's current verdict is deny (under
  // today's trust store, in the caller's view of bases). nullopt when it may be. Verdicts are
  // cached for 30 s per revision, trust store and view.
  std::optional<std::string> DeniedNow(const store::RepoInfo& repo, const GitOid& commit,
                                       const std::optional<Principal>& who);
  // Hot files are served from (and queued into) this cache. Nullable.
  void SetRawCache(RawCache* cache) { raw_cache_ = cache; }

 private:
  // routes_files.cc
  void File(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
            httplib::Response& res);
  // routes_api.cc
  void RepoInfo(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                httplib::Response& res);
  void Tree(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
            httplib::Response& res);
  void PathsInfo(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                 httplib::Response& res);
  void Refs(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
            httplib::Response& res);
  void Commits(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
               httplib::Response& res);
  void ListRepos(const std::optional<Principal>& who, const httplib::Request& req, httplib::Response& res);
  void Whoami(const std::optional<Principal>& who, httplib::Response& res);
  void Trust(const Route& r, const std::optional<Principal>& who, const httplib::Request& req, httplib::Response& res);
  void ChunkMap(const Route& r, const std::optional<Principal>& who, httplib::Response& res);
  // GET /api/node: the store's figures and the peers' counters, for node-wide tokens (operators).
  void Node(const std::optional<Principal>& who, httplib::Response& res);
  // commit_stats.cc: adds "hubnode": {changedFiles, changedBytes, newBytes, comparedWith} to the
  // entries of the first 20 of `commits` (entries[i] is commits[i]'s): the files added or changed
  // against the first parent, and the raw bytes of their distinct chunks that the comparison set
  // (the parent's files; for a root commit, the files of the bases its card names that `who`
  // may see; else nothing) lacks. A commit over 200,000 chunks, or unreadable, gets none.
  void AddCommitStats(const store::RepoId& repo, std::span<const store::CommitInfo> commits,
                      const std::optional<Principal>& who, json& entries);
  // The default-branch heads of the base models named by the card at `commit` that `who` may
  // see (private ones it may not read are left out, as by the lineage route).
  std::vector<GitOid> VisibleBases(const store::RepoId& repo, const GitOid& commit,
                                   const std::optional<Principal>& who);
  // GET /api/tokens: the tokens the caller may see (a read token itself, a namespace's write token
  // its namespace's, a node-wide write token all), never a secret or digest.
  void Tokens(const std::optional<Principal>& who, httplib::Response& res);
  std::mutex node_mu_;
  std::optional<std::pair<json, std::chrono::steady_clock::time_point>> node_stats_;
  // GET /api/models/{repo}/card[/{rev}]: the README rendered to safe HTML (card_html.h).
  void Card(const Route& r, const std::optional<Principal>& who, httplib::Response& res);
  void LineageRoute(const Route& r, const std::optional<Principal>& who, httplib::Response& res);
  // The trust report of a served revision, as `who` may see it (bases it may not read are absent).
  TrustReport TrustOf(const store::RepoInfo& repo, const GitOid& commit, const std::optional<Principal>& who);

  // The repo of a route if the caller may see it; otherwise the error response is sent.
  std::optional<store::RepoInfo> OpenRepo(const Route& r, const std::optional<Principal>& who,
                                          httplib::Response& res);
  // The commit of a route's revision (empty = default branch); otherwise RevisionNotFound is sent.
  // The repo's writers see the commits staged for review on its branches; everyone else the
  // released ones.
  std::optional<GitOid> ResolveRev(const store::RepoInfo& repo, const std::string& rev,
                                   const std::optional<Principal>& who, httplib::Response& res);
  // The offset of the first chunk of [offset, +length) this store lacks (a partly held file).
  std::optional<uint64_t> FirstMissingChunk(const store::FileEntry& f, uint64_t offset, uint64_t length);
  // What of a revision this node holds: per file and per expert (the partial-model view).
  json Locality(const GitOid& commit);
  // routes_peers.cc: GET /api/models/{repo}/peers[/{rev}]: what of the revision each peer holds,
  // and each expert as held here, on a peer, or missing.
  void Peers(const Route& r, const std::optional<Principal>& who, httplib::Response& res);
  static std::unique_ptr<PeerHoldings> MakePeerHoldings(const ReadOptions& options);
  // File entry JSON as tree and paths-info return it.
  json FileJson(const store::FileEntry& f);
  // Each path's `lastCommit` at `commit` (null when the history cannot be read).
  std::vector<json> LastCommits(const GitOid& commit, const std::vector<std::string>& paths);
  // Whether a miss for `repo` may be filled from the upstream.
  bool CanPullThrough(const store::RepoId& repo) const;
  // Whether the store holds repo@rev.
  bool Holds(const store::RepoId& repo, const std::string& rev);
  // A mirrored branch older than the TTL is resolved against the upstream again and pulled when
  // it moved; with the upstream unreachable, what is held is served with X-Hubnode-Mirror-Stale.
  void RefreshMirrored(const store::RepoInfo& repo, const std::string& rev, httplib::Response& res);
  // Pulls repo@rev through; on failure sends the error and returns false.
  bool PullThrough(const store::RepoId& repo, const std::string& rev, bool repo_missing, httplib::Response& res);
  // The answer for a failed pull: RepoNotFound / RevisionNotFound when the upstream lacks it,
  // 502/504 with Retry-After when it cannot be reached.
  void SendPullError(const store::RepoId& repo, const std::string& rev, const Status& s, bool repo_missing,
                     httplib::Response& res);
  void ServeFromFill(const std::shared_ptr<Fill>& fill, const Route& r, const httplib::Request& req,
                     httplib::Response& res);

  const ReadOptions options_;
  store::Store* store_;
  TokenStore* tokens_;
  Metrics* metrics_;
  Mirror* mirror_;
  verify::LicenseMatcher matcher_;
  std::unique_ptr<PeerHoldings> peer_holdings_;  // null without peers
  RawCache* raw_cache_ = nullptr;
  std::mutex refresh_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> refreshed_;  // repo\nbranch -> last check
  struct CachedVerdict {
    std::optional<std::string> denied;
    std::chrono::steady_clock::time_point at;
  };
  std::mutex verdict_mu_;
  std::map<std::string, CachedVerdict> verdicts_;  // key: repo, commit, view, trust store digest
  // What a listing with full=true says of a repo's head (license, signature, family, size),
  // cached 30 s under the same kind of key.
  std::map<std::string, std::pair<json, std::chrono::steady_clock::time_point>> facts_;
  json RepoFacts(const store::RepoInfo& repo, const GitOid& head, const std::optional<Principal>& who);
};

}  // namespace hubnode::hub

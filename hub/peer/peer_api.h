// The peer protocol, server side (/api/peer/v1/, documented in docs/http-api.md): chunks by id
// (the stored records, compressed; the receiver decodes and checks the hash), batches of chunks,
// which chunks of a revision this node holds, a catalog of repos and commits with their chunk
// maps, and a revision's expert index with each expert's chunk range.
//
// Chunks follow the repos' access rule: a request names the revision a chunk belongs to
// (`?repo=ns/name&rev=commit`, or "repo"/"rev" in a batch) and the caller must be allowed to read
// that repo (a gated repo needs a token); a chunk the revision does not reference is answered as
// absent. A request signed with a node key the trust store trusts (hub/peer/peer_auth.h) may
// fetch any chunk, and ask which chunks of any repo this node holds (have/).
//
// Thread safety: Handle() is called concurrently from the server's workers.
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>

#include "hub/http/auth.h"
#include "hub/http/http_util.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

class PeerApi {
 public:
  // `node_key` (nullable) is named in the catalog so peers can pin it. `trust_path` is the
  // trust store file whose node keys may sign requests (empty: none may).
  PeerApi(store::Store* st, const verify::PrivateKey* node_key, std::vector<std::string> peers, std::string trust_path)
      : st_(st), node_key_(node_key), peers_(std::move(peers)), trust_path_(std::move(trust_path)) {}
  void Handle(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who);
  // Why a revision may not be served to a caller now (the policy's current verdict); chunks of
  // such a revision are refused (451). Unset: every revision may be served.
  using DeniedFn = std::function<std::optional<std::string>(const store::RepoInfo&, const GitOid&,
                                                            const std::optional<Principal>&)>;
  void SetDenied(DeniedFn denied) { denied_ = std::move(denied); }

 private:
  void Chunk(const httplib::Request& req, std::string_view hex, httplib::Response& res,
             const std::optional<Principal>& who);
  void Chunks(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who);
  // Which chunks the caller may have: every chunk for a request signed by a trusted node;
  // otherwise those of repo@rev, which the caller must be allowed to read. nullopt when the
  // error was sent.
  std::optional<std::function<bool(const ChunkId&)>> ChunkAccess(const httplib::Request& req, const std::string& repo,
                                                                 const std::string& rev, httplib::Response& res,
                                                                 const std::optional<Principal>& who);
  // Whether the request is signed by a node key the trust store trusts: false when unsigned, or
  // (if `unsigned_allowed`) signed by a key it does not trust; nullopt when the error was sent
  // (a bad or stale signature, or an untrusted key where an unsigned request would not do).
  std::optional<bool> TrustedNode(const httplib::Request& req, bool unsigned_allowed, httplib::Response& res);
  // The chunk ids a commit's files reference, sorted (a few commits are cached).
  Result<std::shared_ptr<const std::vector<ChunkId>>> ChunksOf(const GitOid& commit);
  // The commit (a branch or tag head of `repo`) whose Mirrored-From trailer names `upstream`,
  // the upstream's commit id of the same files.
  std::optional<GitOid> MirrorOf(const store::RepoId& repo, const std::string& upstream);
  void Have(const httplib::Request& req, std::string_view repo, httplib::Response& res,
            const std::optional<Principal>& who);
  void Catalog(httplib::Response& res, const std::optional<Principal>& who);
  void Tensors(const httplib::Request& req, std::string_view repo, httplib::Response& res,
               const std::optional<Principal>& who);
  void Experts(const httplib::Request& req, std::string_view repo, httplib::Response& res,
               const std::optional<Principal>& who);
  // The repo and commit of a peer request if the caller may read it (a trusted node may read
  // every repo); else the error is sent.
  std::optional<std::pair<store::RepoId, GitOid>> Open(std::string_view repo, const std::string& rev,
                                                       httplib::Response& res, const std::optional<Principal>& who,
                                                       bool trusted = false);

  store::Store* st_;
  const verify::PrivateKey* node_key_;
  std::vector<std::string> peers_;
  std::string trust_path_;
  DeniedFn denied_;
  std::mutex cache_mu_;
  std::list<std::pair<GitOid, std::shared_ptr<const std::vector<ChunkId>>>> chunk_sets_;  // most recent first
};

}  // namespace hubnode::hub

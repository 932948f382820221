// The peer protocol, server side (/api/peer/v1/, documented in docs/http-api.md): chunks by id
// (the stored records, compressed; the receiver decodes and checks the hash), batches of chunks,
// which chunks of a revision this node holds, a catalog of repos and commits with their chunk
// maps, and a revision's expert index with each expert's chunk range.
//
// Thread safety: Handle() is called concurrently from the server's workers.
#pragma once

#include <optional>

#include "hub/http/auth.h"
#include "hub/http/http_util.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

class PeerApi {
 public:
  // `node_key` (nullable) is named in the catalog so peers can pin it.
  PeerApi(store::Store* st, const verify::PrivateKey* node_key, std::vector<std::string> peers)
      : st_(st), node_key_(node_key), peers_(std::move(peers)) {}
  void Handle(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who);

 private:
  void Chunk(std::string_view hex, httplib::Response& res);
  void Chunks(const httplib::Request& req, httplib::Response& res);
  void Have(const httplib::Request& req, std::string_view repo, httplib::Response& res,
            const std::optional<Principal>& who);
  void Catalog(httplib::Response& res, const std::optional<Principal>& who);
  void Tensors(const httplib::Request& req, std::string_view repo, httplib::Response& res,
               const std::optional<Principal>& who);
  void Experts(const httplib::Request& req, std::string_view repo, httplib::Response& res,
               const std::optional<Principal>& who);
  // The repo and commit of a peer request if the caller may read it; else the error is sent.
  std::optional<std::pair<store::RepoId, GitOid>> Open(const httplib::Request& req, std::string_view repo,
                                                       httplib::Response& res, const std::optional<Principal>& who);

  store::Store* st_;
  const verify::PrivateKey* node_key_;
  std::vector<std::string> peers_;
};

}  // namespace hubnode::hub

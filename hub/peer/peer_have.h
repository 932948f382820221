// Which chunks of a revision this node's peers hold: GET /api/peer/v1/have/{repo}?rev=R asked of
// every configured peer at once (libcurl multi), signed with this node's key as chunk fetches
// are, each answer checked strictly against this node's own view of the revision. Peers are
// untrusted: an answer that is not JSON, names another repo or commit, lists other files or
// chunk counts, or carries a bitmap of the wrong size makes that peer's entry an error, never
// a wrong answer. Answers are cached for a few seconds per query, and only a few queries run at
// once (each bounded by a short deadline), so page loads do not hammer the peers.
//
// Thread safety: PeerHoldings::Ask may be called concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct PeerHoldingsOptions {
  // Peer base URLs (serve --peer); the first max_peers distinct ones are asked. Required.
  std::vector<std::string> peers;
  // Signs every request (hub/peer/peer_auth.h). Nullable: unsigned requests. No bearer token is
  // ever sent. Must outlive the object. Default: none.
  const verify::PrivateKey* node_key = nullptr;
  // Milliseconds for all of a query's requests together (connect included). Default: 3000.
  int timeout_ms = 3000;
  // Seconds an answer is reused for the same query. Default: 10.
  int cache_s = 10;
  // Queries running at once; others wait (at most timeout_ms + 2 s) for a slot. Default: 2.
  int max_queries = 2;
  // Peers asked at most. Default: 16.
  size_t max_peers = 16;
};

// What is asked: a repo at one revision, and this node's view of it (every file of the
// revision, in order, with its chunk count), against which each answer is checked.
struct HaveQuery {
  std::string repo;
  // The revision's ids to ask by, in order: a peer that answers 404 for one is asked by the next
  // (the upstream ids this node's commit mirrors, then its own). At most 4.
  std::vector<std::string> revs;
  std::vector<std::pair<std::string, uint64_t>> files;  // path, chunks
};

struct PeerHolding {
  std::string url;
  bool reachable = false;  // it answered HTTP
  std::string error;       // non-empty: no usable answer (unreachable, refused, malformed)
  std::string commit;      // the peer's commit of the revision; empty: it holds no such revision
  bool trusted = false;    // it trusts this node's key (serves it any chunk, as reads need)
  // have[i][k]: the peer holds chunk k of query.files[i] (empty unless commit is set).
  std::vector<std::vector<bool>> have;
};

class PeerHoldings {
 public:
  explicit PeerHoldings(PeerHoldingsOptions options);
  // Every peer's holding for the query, in peer order, from the cache when it is fresh.
  // ResourceExhausted when too many queries are in flight to wait for a slot.
  Result<std::shared_ptr<const std::vector<PeerHolding>>> Ask(const HaveQuery& query);
  // Checks one peer's answer to GET have/{repo}?rev=asked against the query; fills commit,
  // trusted and have, or returns why the answer is unusable (fixed text: nothing the peer sent).
  static Status ParseHave(const HaveQuery& query, const std::string& asked, std::string_view body,
                          PeerHolding* out);

 private:
  std::vector<PeerHolding> Query(const HaveQuery& query);

  PeerHoldingsOptions options_;
  std::vector<std::string> urls_;
  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::set<std::string> in_flight_;
  std::map<std::string, std::pair<std::shared_ptr<const std::vector<PeerHolding>>,
                                  std::chrono::steady_clock::time_point>> cache_;
};

}  // namespace hubnode::hub

// Fetching chunks from peer nodes (/api/peer/v1/chunks/{id}) with libcurl multi: several chunks
// from several peers at once, every chunk decoded and checked against its id before it is handed
// on; peers ranked by measured throughput; failures retried elsewhere with backoff; a peer that
// sends a bad chunk, or fails repeatedly, is demoted (not asked again by this fetcher).
//
// Thread safety: Fetch() may be called concurrently (each call runs its own transfers; peer
// rankings are shared).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/hash.h"
#include "base/status.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct PeerFetchOptions {
  // Peer base URLs (hubnodes serving /api/peer/v1/). Required.
  std::vector<std::string> peers;
  // Bearer token sent to every peer; never logged. Default: none.
  std::string token;
  // Chunk requests in flight per peer. Default: 4.
  int max_per_peer = 4;
  // Seconds to connect. Default: 5.
  int connect_timeout_s = 5;
  // A transfer below 16 KiB/s for this many seconds is abandoned (a slow peer). Default: 5.
  int low_speed_s = 5;
  // Failed transfers before a peer is demoted. Default: 3.
  int max_failures = 3;
  // Learn more peers from the given peers' catalogs (/api/peer/v1/catalog) before the first
  // fetch, up to max_peers in all. Default: true.
  bool discover = true;
  // Peers used at most, configured and learned. Default: 16.
  int max_peers = 16;
  // This node's identity key: when set, every chunk request is signed with it
  // (hub/peer/peer_auth.h), so a peer that trusts this node serves it any chunk. Default: none.
  std::optional<verify::PrivateKey> node_key;
};

// The revision a fetch's chunks belong to, named in each request so that a peer can check the
// caller may read it (peers serve chunks only within a revision the caller may read, or to a
// trusted node). Empty: none (the request must then be signed).
struct ChunkScope {
  std::string repo;
  std::string commit;
};

struct PeerStats {
  std::string url;
  uint64_t chunks = 0, bytes = 0;  // verified chunks received, and their stored (wire) bytes
  uint64_t failures = 0, bad_chunks = 0;
  double seconds = 0;  // summed transfer time of its verified chunks
  bool demoted = false;
};

class ChunkFetcher {
 public:
  explicit ChunkFetcher(PeerFetchOptions options);
  ~ChunkFetcher();
  // Fetches ids[i] for every i, calling sink(i, raw bytes) from this thread once each chunk is
  // verified. Unavailable names how many chunks no peer could provide (every peer lacked them,
  // was demoted or kept failing); a sink error stops the fetch and is returned.
  Status Fetch(const std::vector<ChunkId>& ids, const std::function<Status(size_t, std::string&&)>& sink,
               const ChunkScope& scope = {});
  std::vector<PeerStats> stats() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Peer {
    PeerStats stats;
    int in_flight = 0;
    Clock::time_point retry_after;
  };
  // The best peer for a chunk (skipping `tried`): -1 when all usable ones are busy or backing
  // off, -2 when none is usable at all. REQUIRES: mu_ held.
  int Pick(const std::vector<bool>& tried) const;
  // Adds the peers the configured peers' catalogs list (once). REQUIRES: mu_ not held.
  void Discover();
  bool discovered_ = false;

  PeerFetchOptions options_;
  mutable std::mutex mu_;
  std::vector<Peer> peers_;
  // Idle curl multi handles: each keeps its connection cache, so later fetches reuse the
  // connections to the peers instead of opening one per chunk. void*: keeps curl out of here.
  std::vector<void*> idle_multis_;
};

// A store chunk source over peers: each chunk a reader misses is fetched (verified against its
// id by the fetcher) from them. The fetcher is shared by every reader. A reader does not know
// which repo it reads for, so these requests name no revision: they need the fetcher's node key,
// trusted by the peers.
store::ChunkSource PeerChunkSource(std::shared_ptr<ChunkFetcher> fetcher);

}  // namespace hubnode::hub

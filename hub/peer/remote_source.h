// A runtime TensorSource over peers: a model this node does not hold is run from chunks fetched
// on demand from hubnode peers — config, tokenizer and non-expert weights at load, each routed
// expert when the expert cache misses — every chunk checked against the revision's chunk map,
// which the trust store must accept.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "hub/peer/peer_fetch.h"
#include "runtime/runtime.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct RemoteSourceStats {
  uint64_t chunks = 0, raw_bytes = 0;  // chunks fetched (verified) and their raw size
};

// `peers` serve the HF read API and /api/peer/v1/ (the first answers metadata). NotFound when
// the revision does not exist there; PermissionDenied when no chunk map the trust store accepts
// is available; Unavailable when no peer answers.
Result<std::unique_ptr<runtime::TensorSource>> OpenPeerSource(const PeerFetchOptions& peers, const std::string& repo,
                                                              const std::string& rev, const verify::TrustStore& trust,
                                                              std::shared_ptr<RemoteSourceStats> stats);

}  // namespace hubnode::hub

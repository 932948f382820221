// Signed peer requests. A node proves it holds its identity key (DATA/node.key) by signing each
// request to another node's peer API; the serving node accepts the signature from a key its trust
// store holds as a node key (`hubnode trust add-node-key`), unrevoked and unexpired. A trusted
// node may fetch any chunk (it serves partly held models to its own readers); everyone else names
// the repo revision a chunk belongs to and must be allowed to read that repo.
//
// The signature (ECDSA, DER, base64) covers
//   "hubnode-peer-request-v1\n" METHOD "\n" TARGET "\n" TIME "\n" hex(SHA-256(body)) "\n" HOST
// where TARGET is the request's path and query as sent, TIME the unix seconds in
// X-Hubnode-Time, and HOST the authority (host[:port]) of the URL the request was sent to, as its
// Host header carries it (so a request signed for one node is no use at another). A request is
// accepted within 300 seconds of its time.
//
// Thread safety: free functions, reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "verify/verify.h"

namespace hubnode::hub {

inline constexpr std::string_view kPeerKeyHeader = "X-Hubnode-Node-Key";
inline constexpr std::string_view kPeerTimeHeader = "X-Hubnode-Time";
inline constexpr std::string_view kPeerSignatureHeader = "X-Hubnode-Signature";
inline constexpr int64_t kPeerClockSkew = 300;

// The three headers ("Name: value") that sign a request to `base_url` (scheme://host[:port]) +
// `target` (path and query).
Result<std::vector<std::string>> SignPeerRequest(const verify::PrivateKey& key, std::string_view base_url,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, int64_t now);

// The signing headers of a GET of `target` now, for a client that sends them when it can: empty
// when `key` is null or signing fails (the peer then answers as to an unsigned reader).
std::vector<std::string> PeerGetHeadersNow(const verify::PrivateKey* key, std::string_view base_url,
                                           std::string_view target);

struct SignedPeerRequest {
  std::string key_hint, time, signature;  // the three header values
  std::string host;                        // the request's Host header
  std::string method, target, body;
};

// The trusted node key that signed the request, by name. NotFound when the trust store holds no
// usable node key with the request's hint (unknown, revoked or expired: the signature proves
// nothing here, and the caller is treated as if it had not signed); Unauthenticated for a
// malformed or stale request, or a signature that does not verify.
Result<std::string> VerifyPeerRequest(const SignedPeerRequest& request, const verify::TrustStore& trust, int64_t now);

}  // namespace hubnode::hub

#include "hub/peer/peer_auth.h"

#include <charconv>
#include <ctime>

#include "base/hash.h"

namespace hubnode::hub {
namespace {

std::string Message(std::string_view host, std::string_view method, std::string_view target, std::string_view time,
                    std::string_view body) {
  std::string m = "hubnode-peer-request-v1\n";
  m.append(method).append("\n").append(target).append("\n").append(time).append("\n");
  m.append(Sha256Of(body).hex()).append("\n").append(host);
  return m;
}

// "http://host:port/x" -> "host:port".
std::string_view Authority(std::string_view url) {
  if (auto p = url.find("://"); p != std::string_view::npos) url.remove_prefix(p + 3);
  if (auto p = url.find('/'); p != std::string_view::npos) url = url.substr(0, p);
  return url;
}

}  // namespace

Result<std::vector<std::string>> SignPeerRequest(const verify::PrivateKey& key, std::string_view base_url,
                                                 std::string_view method, std::string_view target,
                                                 std::string_view body, int64_t now) {
  const std::string time = std::to_string(now);
  ASSIGN_OR_RETURN(std::string sig, key.Sign(Message(Authority(base_url), method, target, time, body)));
  return std::vector<std::string>{std::string(kPeerKeyHeader) + ": " + key.public_key().Hint(),
                                  std::string(kPeerTimeHeader) + ": " + time,
                                  std::string(kPeerSignatureHeader) + ": " + verify::Base64Encode(sig)};
}

Result<std::string> VerifyPeerRequest(const SignedPeerRequest& r, const verify::TrustStore& trust, int64_t now) {
  const verify::PublisherKey* key = nullptr;
  std::string why = "signed by a node key this node does not trust";
  for (const verify::PublisherKey& k : trust.keys) {
    if (!k.node || k.hint != r.key_hint) continue;
    if (k.revoked) {
      why = "the node key " + k.name + " is revoked";
    } else if (k.expires != 0 && k.expires < now) {
      why = "the node key " + k.name + " has expired";
    } else {
      key = &k;
      break;
    }
  }
  if (key == nullptr) return NotFoundError("peer request: " + why);
  int64_t t = 0;
  auto parsed = std::from_chars(r.time.data(), r.time.data() + r.time.size(), t);
  if (parsed.ec != std::errc() || parsed.ptr != r.time.data() + r.time.size()) {
    return UnauthenticatedError("peer request: malformed " + std::string(kPeerTimeHeader));
  }
  if (t < now - kPeerClockSkew || t > now + kPeerClockSkew) {
    return UnauthenticatedError("peer request: its time is more than 300 s from this node's clock");
  }
  auto sig = verify::Base64Decode(r.signature);
  if (!sig.ok() || sig->empty() || sig->size() > 200) {
    return UnauthenticatedError("peer request: malformed " + std::string(kPeerSignatureHeader));
  }
  auto pub = verify::PublicKey::FromPem(key->pem);
  if (!pub.ok()) return UnauthenticatedError("peer request: the trusted node key " + key->name + " is malformed");
  if (!pub->Verify(Message(r.host, r.method, r.target, r.time, r.body), *sig).ok()) {
    return UnauthenticatedError("peer request: the signature does not verify");
  }
  return key->name;
}

std::vector<std::string> PeerGetHeadersNow(const verify::PrivateKey* key, std::string_view base_url,
                                           std::string_view target) {
  if (key == nullptr) return {};
  auto h = SignPeerRequest(*key, base_url, "GET", target, "", static_cast<int64_t>(std::time(nullptr)));
  return h.ok() ? std::move(*h) : std::vector<std::string>{};
}

}  // namespace hubnode::hub

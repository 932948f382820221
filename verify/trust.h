// The trust store: publisher keys per namespace (with expiry and revocation), and which
// namespaces require a signature. Serialised as JSON by its owner (hub keeps DATA/trust.json).
// Private to verify/; re-exported by verify/verify.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "verify/license.h"

namespace hubnode::verify {

class PublicKey;

struct PublisherKey {
  std::string ns;         // namespace the key may sign for; "*" = any
  std::string name;       // a label
  std::string pem;        // the public key
  std::string hint;       // SHA-256 of the re-encoded PEM (the bundle's publicKey.hint)
  int64_t added = 0;
  int64_t expires = 0;    // unix seconds; 0 = never
  bool revoked = false;
  // A node key: trusted to sign chunk maps (for any namespace), never model signatures.
  bool node = false;
};

struct CaRoot {
  std::string ns;    // namespace whose certificate-mode signatures it anchors; "*" = any
  std::string name;
  std::string pem;   // the root certificate
};

// Overrides of the default license policy: node-wide, and per namespace (a namespace's entries
// win over the node-wide ones, which win over LicensePolicy::Default()).
struct PolicyOverrides {
  std::map<LicenseClass, Verdict> classes;
  std::map<std::string, Verdict> ids;  // canonical ids (Apache-2.0, LicenseRef-llama3.1, …)
  std::vector<std::string> exceptions;
};

struct TrustStore {
  std::vector<PublisherKey> keys;
  std::vector<CaRoot> ca_roots;
  PolicyOverrides policy;
  std::map<std::string, PolicyOverrides> namespace_policy;
  // The license policy for a namespace.
  LicensePolicy PolicyFor(const std::string& ns) const;
  std::set<std::string> signature_required;  // namespaces ("*" = all)

  static Result<TrustStore> Parse(std::string_view json_text);  // DataLoss when malformed
  std::string Serialize() const;
  bool RequiresSignature(const std::string& ns) const;
  // Adds a key (InvalidArgument for a bad PEM; AlreadyExists for the same key and namespace).
  Status AddKey(const std::string& ns, const std::string& name, const std::string& pem, int64_t now, int64_t expires);
  // Adds a trusted node key (chunk maps only). InvalidArgument for a bad PEM; AlreadyExists.
  Status AddNodeKey(const std::string& name, const std::string& pem, int64_t now, int64_t expires);
  // Adds a CA root certificate (InvalidArgument if it is not a PEM certificate).
  Status AddCaRoot(const std::string& ns, const std::string& name, const std::string& pem);
  // Revokes by name or hint; NotFound if none matched.
  Status Revoke(const std::string& name_or_hint);
};

struct TrustedSignature {
  std::string key_name;
  std::string key_hint;
  std::string ns;
};

// The key hint a bundle names (verificationMaterial.publicKey.hint), "" if none or malformed.
std::string BundleKeyHint(std::string_view bundle_json);

// Tries the keys `eligible` accepts (matching the bundle's hint, unrevoked, unexpired at `now`)
// with `verify` until one succeeds. PermissionDenied says why none did (`what` names the
// statement in the message).
Result<TrustedSignature> VerifyWithKeys(std::string_view bundle_json, const TrustStore& trust, int64_t now,
                                        const std::function<bool(const PublisherKey&)>& eligible,
                                        const std::function<Status(const PublicKey&)>& verify,
                                        const std::string& what);

// Verifies a bundle with the trusted keys of `ns` at time `now`: the key named by the bundle's
// hint must be trusted for the namespace, unrevoked and unexpired; a certificate-mode bundle must
// chain to one of the namespace's CA roots. PermissionDenied says which (revoked, expired,
// unknown key, certificate problem, bad signature).
Result<TrustedSignature> VerifyWithTrustStore(std::string_view bundle_json, const TrustStore& trust,
                                              const std::string& ns, int64_t now, struct Manifest* manifest_out);

}  // namespace hubnode::verify

// verify: OpenSSF model signing (OMS v1.0) — ECDSA keys, model manifests (files and shards
// serialization), and Sigstore bundle v0.3 / DSSE / in-toto signatures in key mode — with
// OpenSSL only; and licenses (verify/license.h): SPDX expressions, classification, policy,
// derivative rules, model cards and LICENSE text identification; certificate mode and the trust
// store. Chunk maps come next (issue 4).
//
// Thread safety: keys are immutable after construction and may be shared across threads;
// free functions are reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/hash.h"
#include "base/status.h"
#include "verify/card.h"
#include "verify/chunk_map.h"
#include "verify/license.h"
#include "verify/trust.h"

namespace hubnode::verify {

enum class Curve { kP256, kP384, kP521 };
std::string_view CurveName(Curve c);  // "P-256", ...
Result<Curve> ParseCurve(std::string_view name);  // "p256", "P-256", "prime256v1", ...

class PublicKey {
 public:
  // A PEM SubjectPublicKeyInfo of an ECDSA key on P-256, P-384 or P-521; InvalidArgument otherwise.
  static Result<PublicKey> FromPem(std::string_view pem);
  Curve curve() const { return curve_; }
  // The key re-encoded as PEM (what PEM_write_bio_PUBKEY writes).
  const std::string& pem() const { return pem_; }
  // The bundle `publicKey.hint`: hex SHA-256 of pem().
  std::string Hint() const;
  // Verifies a DER ECDSA signature over `message`, hashed with the curve's digest (SHA-256/384/512).
  Status Verify(std::string_view message, std::string_view der_signature) const;

 private:
  struct Rep;
  std::shared_ptr<const Rep> rep_;  // shared: an immutable OpenSSL key, cheap to copy
  Curve curve_ = Curve::kP256;
  std::string pem_;
};

class PrivateKey {
 public:
  static Result<PrivateKey> Generate(Curve curve);
  // A PEM private key (PKCS#8 or SEC1) of an ECDSA key on a supported curve.
  static Result<PrivateKey> FromPem(std::string_view pem);
  std::string Pem() const;  // PKCS#8
  const PublicKey& public_key() const { return public_; }
  // DER ECDSA signature of `message` with the curve's digest.
  Result<std::string> Sign(std::string_view message) const;

 private:
  // Takes ownership of an OpenSSL EVP_PKEY (void* keeps OpenSSL out of this header).
  static Result<PrivateKey> Wrap(void* evp_pkey);
  struct Rep;
  std::shared_ptr<const Rep> rep_;
  PublicKey public_;
};

// How a model is turned into resources (OMS §6).
struct Serialization {
  std::string method = "files";  // "files" or "shards"
  std::string hash_type = "sha256";
  uint64_t shard_size = 1'000'000'000;  // shards only
  bool allow_symlinks = false;
  std::vector<std::string> ignore_paths;  // recorded in the predicate; defaults are added
};

struct Resource {
  std::string name;       // path, or "path:start:end" for a shard
  std::string algorithm;  // "sha256" (or "sha256-sharded-N" as the reference tool writes)
  std::string digest;     // raw 32 bytes
};

struct Manifest {
  std::string model_name;  // subject name, informational
  Serialization serialization;
  std::vector<Resource> resources;  // sorted by name for a manifest we build
};

// The paths excluded from every manifest, plus the signature file.
std::vector<std::string> DefaultIgnorePaths(const std::string& signature_name = "model.sig");

// Hashes a model directory (regular files, recursively; `serialization.ignore_paths` excluded as
// exact top-level-relative paths) with `threads` workers. A single regular file is a model too:
// one resource named "." (shards: ".:start:end"), as the reference tool names it. InvalidArgument for symlinks (unless
// allowed), an empty model or a non-UTF-8/unsafe path.
Result<Manifest> HashDirectory(const std::string& dir, const Serialization& serialization, unsigned threads = 0);

// A files-method manifest from SHA-256s already known (a stored model: no re-hash).
Manifest ManifestFromDigests(std::string model_name, const std::vector<std::pair<std::string, Sha256Digest>>& files,
                             const Serialization& serialization);

// SHA-256 over the concatenated raw digests in the manifest's order (the statement subject).
Sha256Digest RootDigest(const Manifest& m);

// DSSE pre-authentication encoding.
std::string Pae(std::string_view payload_type, std::string_view payload);

// A Sigstore bundle (JSON text) signing `manifest` with `key` (key mode, `publicKey.hint`).
Result<std::string> SignBundle(const Manifest& manifest, const PrivateKey& key);

// A Sigstore bundle v0.3 (key mode) around any in-toto statement: DSSE over `payload` with
// `key`. Used for model signatures and chunk maps.
Result<std::string> SignStatement(std::string_view payload, const PrivateKey& key);
struct OpenedStatement {
  std::string payload;   // the statement JSON, exactly the signed bytes
  std::string key_hint;  // verificationMaterial.publicKey.hint, if present
};
// Checks a key-mode bundle's structure and signature with `key` and returns the signed payload
// (not yet parsed). InvalidArgument when malformed; PermissionDenied for another key or a bad
// signature.
Result<OpenedStatement> OpenStatement(std::string_view bundle_json, const PublicKey& key);

struct VerifiedBundle {
  Manifest manifest;  // as signed, in payload order
  std::string key_hint;
  std::string certificate_subject;  // certificate mode: the leaf's subject
};

// Certificate mode: a bundle carrying the signer's X.509 leaf and chain (DER, leaf first) in
// verificationMaterial.x509CertificateChain. `chain_pem` holds the leaf, then intermediates.
Result<std::string> SignBundleWithCertificate(const Manifest& manifest, const PrivateKey& key,
                                              std::string_view chain_pem);
// Verifies a certificate-mode bundle: the chain must lead to one of `roots_pem` (PEM
// certificates, concatenated), be valid now, and the leaf must allow digital signatures (key
// usage) or code signing (extended key usage); then the signature with the leaf's key, and the
// statement as VerifyBundle does. PermissionDenied names the certificate problem.
Result<VerifiedBundle> VerifyCertificateBundle(std::string_view bundle_json, std::string_view roots_pem);
// Whether a bundle carries a certificate chain (rather than a key hint).
bool BundleHasCertificate(std::string_view bundle_json);
// Checks a bundle's structure, its signature with `key`, the statement and predicate, and that the
// subject equals the root digest of the listed resources. PermissionDenied for a signature that
// does not verify; InvalidArgument for a malformed bundle (naming the field).
Result<VerifiedBundle> VerifyBundle(std::string_view bundle_json, const PublicKey& key);

// Compares the signed manifest with the model's: PermissionDenied naming the first file that is
// missing, extra or different.
Status CompareManifests(const Manifest& signed_manifest, const Manifest& actual);

// Standard base64 (encode); decode accepts the standard and URL-safe alphabets, padded or not.
std::string Base64Encode(std::string_view data);
Result<std::string> Base64Decode(std::string_view text);

}  // namespace hubnode::verify

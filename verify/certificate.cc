// Certificate mode of OpenSSF model signing: an X.509 leaf and chain to trusted roots.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "base/json_limits.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

using json = nlohmann::json;

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreDeleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxDeleter {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackDeleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

std::vector<X509Ptr> ReadPemCerts(std::string_view pem) {
  std::vector<X509Ptr> out;
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();
  return out;
}

std::string Der(X509* x) {
  int n = i2d_X509(x, nullptr);
  std::string out(static_cast<size_t>(std::max(n, 0)), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  i2d_X509(x, &p);
  return out;
}

std::string PubPem(X509* x) {
  EVP_PKEY* k = X509_get0_pubkey(x);
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  if (!k || PEM_write_bio_PUBKEY(bio.get(), k) != 1) return "";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Subject(X509* x) {
  char buf[512];
  X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
  return buf;
}

}  // namespace

bool BundleHasCertificate(std::string_view bundle_json) {
  json b = (JsonDepthWithin(bundle_json) ? json::parse(bundle_json.begin(), bundle_json.end(), nullptr, false) : json(json::value_t::discarded));
  return b.is_object() && b.contains("verificationMaterial") && b["verificationMaterial"].is_object() &&
         b["verificationMaterial"].contains("x509CertificateChain");
}

Result<std::string> SignBundleWithCertificate(const Manifest& manifest, const PrivateKey& key,
                                              std::string_view chain_pem) {
  auto certs = ReadPemCerts(chain_pem);
  if (certs.empty()) return InvalidArgumentError("no PEM certificate in the chain file");
  if (PubPem(certs[0].get()) != key.public_key().pem()) {
    return InvalidArgumentError("the first certificate is not for the signing key");
  }
  ASSIGN_OR_RETURN(std::string key_bundle, SignBundle(manifest, key));
  json b = json::parse(key_bundle);
  json list = json::array();
  for (auto& c : certs) list.push_back({{"rawBytes", Base64Encode(Der(c.get()))}});
  b["verificationMaterial"] = {{"x509CertificateChain", {{"certificates", list}}}, {"tlogEntries", json::array()}};
  return b.dump(2) + "\n";
}

Result<VerifiedBundle> VerifyCertificateBundle(std::string_view bundle_json, std::string_view roots_pem) {
  json b = (JsonDepthWithin(bundle_json) ? json::parse(bundle_json.begin(), bundle_json.end(), nullptr, false) : json(json::value_t::discarded));
  if (!b.is_object() || !b.contains("verificationMaterial") || !b["verificationMaterial"].is_object()) {
    return InvalidArgumentError("malformed bundle: no verificationMaterial");
  }
  const json& vm = b["verificationMaterial"];
  auto chain_it = vm.find("x509CertificateChain");
  if (chain_it == vm.end() || !chain_it->is_object() || !chain_it->contains("certificates") ||
      !(*chain_it)["certificates"].is_array() || (*chain_it)["certificates"].empty()) {
    return InvalidArgumentError("malformed bundle: x509CertificateChain.certificates is missing or empty");
  }
  std::vector<X509Ptr> chain;
  for (const auto& c : (*chain_it)["certificates"]) {
    if (!c.is_object() || !c.value("rawBytes", json()).is_string()) {
      return InvalidArgumentError("malformed bundle: a certificate lacks rawBytes");
    }
    ASSIGN_OR_RETURN(std::string der, Base64Decode(c["rawBytes"].get<std::string>()));
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
      X509_free(x);
      return InvalidArgumentError("malformed bundle: a certificate is not DER X.509");
    }
    chain.emplace_back(x);
  }
  auto roots = ReadPemCerts(roots_pem);
  if (roots.empty()) return PermissionDeniedError("no trusted CA roots");

  std::unique_ptr<X509_STORE, StoreDeleter> store(X509_STORE_new());
  for (auto& r : roots) X509_STORE_add_cert(store.get(), r.get());
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) {
    X509_up_ref(chain[i].get());
    sk_X509_push(untrusted.get(), chain[i].get());
  }
  std::unique_ptr<X509_STORE_CTX, StoreCtxDeleter> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get());
  // Validity is checked at the current time (the reference tool checks at the leaf's notBefore,
  // which accepts expired certificates; OMS says the leaf must be within its validity period).
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    return PermissionDeniedError(std::string("certificate chain rejected: ") + X509_verify_cert_error_string(err));
  }
  X509* leaf = chain[0].get();
  uint32_t ku = X509_get_key_usage(leaf);
  uint32_t xku = X509_get_extended_key_usage(leaf);
  // Without the extension OpenSSL reports every usage as allowed; only an explicit one counts.
  uint32_t flags = X509_get_extension_flags(leaf);
  bool signing = ((flags & EXFLAG_KUSAGE) && (ku & KU_DIGITAL_SIGNATURE)) ||
                 ((flags & EXFLAG_XKUSAGE) && (xku & XKU_CODE_SIGN));
  if (!signing) return PermissionDeniedError("the leaf certificate allows neither digitalSignature nor codeSigning");
  ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromPem(PubPem(leaf)));
  // The signature and statement checks of key mode, with the leaf's key (no hint in this mode).
  ASSIGN_OR_RETURN(VerifiedBundle v, VerifyBundle(bundle_json, key));
  v.certificate_subject = Subject(leaf);
  return v;
}

}  // namespace hubnode::verify

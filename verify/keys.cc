// ECDSA keys over OpenSSL 3 EVP.
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "verify/verify.h"

namespace hubnode::verify {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

const EVP_MD* DigestFor(Curve c) {
  switch (c) {
    case Curve::kP256: return EVP_sha256();
    case Curve::kP384: return EVP_sha384();
    case Curve::kP521: return EVP_sha512();
  }
  return EVP_sha256();
}

const char* GroupName(Curve c) {
  switch (c) {
    case Curve::kP256: return "prime256v1";
    case Curve::kP384: return "secp384r1";
    case Curve::kP521: return "secp521r1";
  }
  return "prime256v1";
}

Result<Curve> CurveOf(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    return InvalidArgumentError("only elliptic-curve (ECDSA) keys are supported");
  }
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
    return InvalidArgumentError("cannot read the key's curve");
  }
  return ParseCurve(group);
}

std::string PublicPem(EVP_PKEY* key) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

struct PublicKey::Rep {
  PkeyPtr key;
};
struct PrivateKey::Rep {
  PkeyPtr key;
};

std::string_view CurveName(Curve c) {
  switch (c) {
    case Curve::kP256: return "P-256";
    case Curve::kP384: return "P-384";
    case Curve::kP521: return "P-521";
  }
  return "?";
}

Result<Curve> ParseCurve(std::string_view n) {
  if (n == "p256" || n == "P-256" || n == "prime256v1" || n == "secp256r1") return Curve::kP256;
  if (n == "p384" || n == "P-384" || n == "secp384r1") return Curve::kP384;
  if (n == "p521" || n == "P-521" || n == "secp521r1") return Curve::kP521;
  return InvalidArgumentError("unsupported curve '" + std::string(n.substr(0, 40)) + "': use P-256, P-384 or P-521");
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidArgumentError("not a PEM public key");
  PublicKey out;
  ASSIGN_OR_RETURN(out.curve_, CurveOf(key.get()));
  out.pem_ = PublicPem(key.get());
  auto rep = std::make_shared<Rep>();
  rep->key = std::move(key);
  out.rep_ = std::move(rep);
  return out;
}

std::string PublicKey::Hint() const { return Sha256Of(pem_).hex(); }

Status PublicKey::Verify(std::string_view message, std::string_view sig) const {
  if (!rep_) return FailedPreconditionError("empty public key");
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(curve_), nullptr, rep_->key.get()) != 1) {
    return InternalError("cannot initialise signature verification");
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  if (rc != 1) return PermissionDeniedError("signature does not verify with this key");
  return OkStatus();
}

Result<PrivateKey> PrivateKey::Generate(Curve curve) {
  PkeyPtr key(EVP_EC_gen(GroupName(curve)));
  if (!key) return InternalError("key generation failed");
  return Wrap(key.release());
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidArgumentError("not a PEM private key (encrypted keys are not supported)");
  RETURN_IF_ERROR(CurveOf(key.get()).status());
  return Wrap(key.release());
}

Result<PrivateKey> PrivateKey::Wrap(void* evp_pkey) {
  PkeyPtr key(static_cast<EVP_PKEY*>(evp_pkey));
  PrivateKey out;
  ASSIGN_OR_RETURN(out.public_, PublicKey::FromPem(PublicPem(key.get())));
  auto rep = std::make_shared<Rep>();
  rep->key = std::move(key);
  out.rep_ = std::move(rep);
  return out;
}

std::string PrivateKey::Pem() const {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), rep_->key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> PrivateKey::Sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (EVP_DigestSignInit(ctx.get(), nullptr, DigestFor(public_.curve()), nullptr, rep_->key.get()) != 1) {
    return InternalError("cannot initialise signing");
  }
  size_t len = 0;
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) return InternalError("signing failed");
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, msg, message.size()) != 1) {
    return InternalError("signing failed");
  }
  sig.resize(len);
  return sig;
}

}  // namespace hubnode::verify

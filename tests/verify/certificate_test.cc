// Certificate mode: chains to trusted roots, validity now, key usage.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/testutil/testutil.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

using hubnode::testing::TempDir;
using hubnode::testing::WriteFile;

struct Cert {
  EVP_PKEY* key = nullptr;
  X509* x509 = nullptr;
  ~Cert() {
    X509_free(x509);
    EVP_PKEY_free(key);
  }
  std::string Pem() const {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x509);
    char* d = nullptr;
    long n = BIO_get_mem_data(b, &d);
    std::string s(d, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  }
  std::string KeyPem() const {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* d = nullptr;
    long n = BIO_get_mem_data(b, &d);
    std::string s(d, static_cast<size_t>(n));
    BIO_free(b);
    return s;
  }
};

void AddExt(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(x, e, -1);
  X509_EXTENSION_free(e);
}

// A P-256 certificate for `cn`, signed by `issuer` (self-signed when null), valid from
// now+not_before to now+not_after seconds.
std::unique_ptr<Cert> MakeCert(const char* cn, const Cert* issuer, bool ca, const char* key_usage, long not_before,
                               long not_after) {
  auto c = std::make_unique<Cert>();
  c->key = EVP_EC_gen("prime256v1");
  c->x509 = X509_new();
  X509_set_version(c->x509, 2);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(c->x509), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c->x509), not_before);
  X509_gmtime_adj(X509_getm_notAfter(c->x509), not_after);
  X509_set_pubkey(c->x509, c->key);
  X509_NAME* name = X509_get_subject_name(c->x509);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(c->x509, issuer ? X509_get_subject_name(issuer->x509) : name);
  X509* issuer_cert = issuer ? issuer->x509 : c->x509;
  AddExt(c->x509, issuer_cert, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  AddExt(c->x509, issuer_cert, NID_key_usage, key_usage);
  X509_sign(c->x509, issuer ? issuer->key : c->key, EVP_sha256());
  return c;
}

class CertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "m/config.json", "{}\n");
    WriteFile(dir_ / "m/weights.bin", std::string(1000, 'w'));
    Serialization s;
    s.ignore_paths = DefaultIgnorePaths();
    manifest_ = *HashDirectory(dir_ / "m", s);
    root_ = MakeCert("Test Root", nullptr, true, "critical,keyCertSign,cRLSign", -3600, 86400);
    inter_ = MakeCert("Test Intermediate", root_.get(), true, "critical,keyCertSign,cRLSign", -3600, 86400);
  }
  Result<VerifiedBundle> SignAndVerify(const Cert& leaf, const std::string& chain, const std::string& roots) {
    auto key = PrivateKey::FromPem(leaf.KeyPem());
    EXPECT_TRUE(key.ok());
    auto bundle = SignBundleWithCertificate(manifest_, *key, chain);
    if (!bundle.ok()) return bundle.status();
    EXPECT_TRUE(BundleHasCertificate(*bundle));
    return VerifyCertificateBundle(*bundle, roots);
  }
  TempDir dir_;
  Manifest manifest_;
  std::unique_ptr<Cert> root_, inter_;
};

TEST_F(CertificateTest, ChainToATrustedRoot) {
  auto leaf = MakeCert("Model Publisher", inter_.get(), false, "critical,digitalSignature", -60, 3600);
  auto v = SignAndVerify(*leaf, leaf->Pem() + inter_->Pem(), root_->Pem());
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_NE(v->certificate_subject.find("Model Publisher"), std::string::npos);
  EXPECT_OK(CompareManifests(v->manifest, manifest_));
}

TEST_F(CertificateTest, RejectsExpiredUntrustedAndNonSigningLeaves) {
  auto expired = MakeCert("Old Publisher", inter_.get(), false, "critical,digitalSignature", -7200, -3600);
  auto r = SignAndVerify(*expired, expired->Pem() + inter_->Pem(), root_->Pem());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expired"), std::string::npos) << r.status().message();

  auto leaf = MakeCert("Publisher", inter_.get(), false, "critical,digitalSignature", -60, 3600);
  auto other_root = MakeCert("Other Root", nullptr, true, "critical,keyCertSign", -3600, 86400);
  r = SignAndVerify(*leaf, leaf->Pem() + inter_->Pem(), other_root->Pem());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  // Without the intermediate the chain cannot be built.
  r = SignAndVerify(*leaf, leaf->Pem(), root_->Pem());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);

  auto no_sign = MakeCert("Encipher Only", inter_.get(), false, "critical,keyEncipherment", -60, 3600);
  r = SignAndVerify(*no_sign, no_sign->Pem() + inter_->Pem(), root_->Pem());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("digitalSignature"), std::string::npos) << r.status().message();

  // The chain's first certificate must be for the signing key.
  auto key = PrivateKey::Generate(Curve::kP256);
  EXPECT_EQ(SignBundleWithCertificate(manifest_, *key, leaf->Pem()).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CertificateTest, TrustStoreRootsPerNamespace) {
  auto leaf = MakeCert("Publisher", inter_.get(), false, "critical,digitalSignature", -60, 3600);
  auto key = PrivateKey::FromPem(leaf->KeyPem());
  auto bundle = SignBundleWithCertificate(manifest_, *key, leaf->Pem() + inter_->Pem());
  ASSERT_TRUE(bundle.ok());
  TrustStore t;
  ASSERT_OK(t.AddCaRoot("lab", "root", root_->Pem()));
  auto ok = VerifyWithTrustStore(*bundle, t, "lab", 0, nullptr);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(VerifyWithTrustStore(*bundle, t, "elsewhere", 0, nullptr).status().code(), StatusCode::kPermissionDenied);
  auto round = TrustStore::Parse(t.Serialize());
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(round->ca_roots.size(), 1u);
}

}  // namespace
}  // namespace hubnode::verify

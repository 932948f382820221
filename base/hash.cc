#include "base/hash.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace hubnode {

struct Hasher::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

namespace {
const EVP_MD* MdFor(Hasher::Algorithm a) {
  return a == Hasher::Algorithm::kSha256 ? EVP_sha256() : EVP_sha1();
}
}  // namespace

Hasher::Hasher(Algorithm algorithm) : ctx_(std::make_unique<Ctx>()), algorithm_(algorithm) {
  ctx_->md = EVP_MD_CTX_new();
  // Allocation failure of a hash context is not recoverable input error; treat it as fatal.
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, MdFor(algorithm_), nullptr) != 1) std::abort();
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::string_view data) {
  if (!data.empty()) EVP_DigestUpdate(ctx_->md, data.data(), data.size());
}

void Hasher::Finish(uint8_t* out) {
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  EVP_DigestInit_ex(ctx_->md, MdFor(algorithm_), nullptr);
}

Sha256Digest Sha256Of(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

ChunkId ChunkIdOf(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish<ChunkId>();
}

}  // namespace hubnode

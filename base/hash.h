// SHA-256 and SHA-1 (OpenSSL EVP, streaming) and the strong digest types built on them.
//
// Digest<N, Tag> is a fixed-size byte array whose Tag keeps different kinds of ids apart at compile
// time: a ChunkId (SHA-256 of a chunk's raw bytes) cannot be passed where a GitOid (SHA-1 of a git
// object) is expected.
//
// Thread safety: Digest is a value. A hasher object is not thread-safe; use one per thread.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/hex.h"
#include "base/status.h"

namespace hubnode {

template <size_t N, typename Tag>
class Digest {
 public:
  static constexpr size_t kSize = N;
  Digest() { bytes_.fill(0); }
  explicit Digest(const std::array<uint8_t, N>& bytes) : bytes_(bytes) {}

  // From exactly N raw bytes. InvalidArgument otherwise.
  static Result<Digest> FromBytes(std::string_view raw) {
    if (raw.size() != N) return InvalidArgumentError("digest must be " + std::to_string(N) + " bytes");
    Digest d;
    std::memcpy(d.bytes_.data(), raw.data(), N);
    return d;
  }
  // From 2N hex digits. InvalidArgument otherwise.
  static Result<Digest> FromHex(std::string_view hex) {
    Digest d;
    RETURN_IF_ERROR(HexDecodeInto(hex, d.bytes_));
    return d;
  }

  const std::array<uint8_t, N>& bytes() const { return bytes_; }
  std::array<uint8_t, N>& mutable_bytes() { return bytes_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes_.data()), N}; }
  std::string hex() const { return HexEncode(bytes_); }
  bool IsZero() const {
    for (uint8_t b : bytes_) {
      if (b) return false;
    }
    return true;
  }

  friend auto operator<=>(const Digest&, const Digest&) = default;
  friend bool operator==(const Digest&, const Digest&) = default;

 private:
  std::array<uint8_t, N> bytes_;
};

struct Sha256Tag {};
struct ChunkTag {};
struct GitTag {};

using Sha256Digest = Digest<32, Sha256Tag>;  // a whole file's SHA-256 (the Git LFS oid)
using ChunkId = Digest<32, ChunkTag>;        // SHA-256 of a chunk's raw (uncompressed) bytes
using GitOid = Digest<20, GitTag>;           // SHA-1 of a git object ("blob N\0...")

struct DigestHash {
  template <size_t N, typename Tag>
  size_t operator()(const Digest<N, Tag>& d) const {
    size_t h;
    std::memcpy(&h, d.bytes().data(), sizeof(h));
    return h;
  }
};

// A streaming hash over OpenSSL EVP. Algorithm fixed at construction.
class Hasher {
 public:
  enum class Algorithm { kSha256, kSha1 };
  explicit Hasher(Algorithm algorithm);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(std::string_view data);
  void Update(const void* data, size_t size) {
    Update(std::string_view(static_cast<const char*>(data), size));
  }
  // Writes the digest (32 or 20 bytes) and resets the hasher for reuse.
  void Finish(uint8_t* out);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
  Algorithm algorithm_;
};

class Sha256 {
 public:
  Sha256() : h_(Hasher::Algorithm::kSha256) {}
  void Update(std::string_view data) { h_.Update(data); }
  void Update(const void* data, size_t size) { h_.Update(data, size); }
  template <typename D = Sha256Digest>
  D Finish() {
    std::array<uint8_t, 32> out;
    h_.Finish(out.data());
    return D(out);
  }

 private:
  Hasher h_;
};

class Sha1 {
 public:
  Sha1() : h_(Hasher::Algorithm::kSha1) {}
  void Update(std::string_view data) { h_.Update(data); }
  GitOid Finish() {
    std::array<uint8_t, 20> out;
    h_.Finish(out.data());
    return GitOid(out);
  }

 private:
  Hasher h_;
};

Sha256Digest Sha256Of(std::string_view data);
ChunkId ChunkIdOf(std::string_view data);

}  // namespace hubnode

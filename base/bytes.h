// Fixed-width little-endian and varint encoding, and a bounds-checked reader for decoding
// records from untrusted bytes (every read past the end is DataLoss, never a crash).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode {

inline void PutFixed32(std::string* out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 4);
}
inline void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}
inline uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
// Big-endian, for keys that must sort numerically.
inline void PutBigEndian32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline uint32_t DecodeBigEndian32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

void PutVarint64(std::string* out, uint64_t v);
// Length-prefixed (varint) string.
void PutLengthPrefixed(std::string* out, std::string_view s);

// Reads a record front to back. Each method fails with DataLoss naming `what` when the input is
// too short or malformed; the reader is then unusable.
class ByteReader {
 public:
  ByteReader(std::string_view data, std::string_view what) : data_(data), what_(what) {}
  Result<uint8_t> U8();
  Result<uint32_t> Fixed32();
  Result<uint64_t> Fixed64();
  Result<uint64_t> Varint64();
  // A varint length, then that many bytes. Fails if the length exceeds what is left.
  Result<std::string_view> LengthPrefixed();
  Result<std::string_view> Bytes(size_t n);
  size_t remaining() const { return data_.size(); }
  bool empty() const { return data_.empty(); }

 private:
  Status Short() const;
  std::string_view data_;
  std::string_view what_;
};

}  // namespace hubnode

#include "base/bytes.h"

namespace hubnode {

void PutVarint64(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutLengthPrefixed(std::string* out, std::string_view s) {
  PutVarint64(out, s.size());
  out->append(s);
}

Status ByteReader::Short() const {
  return DataLossError("truncated or malformed " + std::string(what_) + " record");
}

Result<uint8_t> ByteReader::U8() {
  if (data_.empty()) return Short();
  uint8_t v = static_cast<uint8_t>(data_[0]);
  data_.remove_prefix(1);
  return v;
}

Result<uint32_t> ByteReader::Fixed32() {
  if (data_.size() < 4) return Short();
  uint32_t v = DecodeFixed32(data_.data());
  data_.remove_prefix(4);
  return v;
}

Result<uint64_t> ByteReader::Fixed64() {
  if (data_.size() < 8) return Short();
  uint64_t v = DecodeFixed64(data_.data());
  data_.remove_prefix(8);
  return v;
}

Result<uint64_t> ByteReader::Varint64() {
  uint64_t v = 0;
  for (int shift = 0; shift <= 63; shift += 7) {
    if (data_.empty()) return Short();
    uint8_t b = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    if (shift == 63 && b > 1) return Short();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  return Short();
}

Result<std::string_view> ByteReader::LengthPrefixed() {
  ASSIGN_OR_RETURN(uint64_t n, Varint64());
  return Bytes(n);
}

Result<std::string_view> ByteReader::Bytes(size_t n) {
  if (data_.size() < n) return Short();
  std::string_view v = data_.substr(0, n);
  data_.remove_prefix(n);
  return v;
}

}  // namespace hubnode

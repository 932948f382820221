#include "store/chunker.h"

#include <array>

#include "store/expert_index.h"

namespace hubnode::store {
namespace {

std::array<uint64_t, 256> MakeGearTable() {
  std::array<uint64_t, 256> t;
  uint64_t x = 0x6875626e6f6465ULL;  // "hubnode"
  for (auto& v : t) {
    // splitmix64
    x += 0x9E3779B97F4A7C15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    v = z ^ (z >> 31);
  }
  return t;
}
const std::array<uint64_t, 256> kGear = MakeGearTable();

ElementKind KindOf(std::string_view dtype) {
  if (dtype == "BF16" || dtype == "F16") return ElementKind::k2Byte;
  if (dtype == "F32") return ElementKind::k4Byte;
  return ElementKind::kBytes;
}

void Split(uint64_t begin, uint64_t end, uint64_t max_chunk, ElementKind kind, std::vector<Piece>* out) {
  for (uint64_t off = begin; off < end; off += max_chunk) {
    out->push_back(Piece{off, std::min(max_chunk, end - off), kind});
  }
}

}  // namespace

std::vector<Piece> PlanSafetensorsChunks(const SafetensorsHeader& header, uint64_t max_chunk) {
  std::vector<Piece> out;
  out.push_back(Piece{0, header.header_end, ElementKind::kBytes});
  for (const auto& t : header.tensors) {
    ElementKind kind = KindOf(t.dtype);
    uint64_t experts = PackedExpertCount(t);
    if (experts > 1) {
      uint64_t slice = (t.end - t.begin) / experts;
      for (uint64_t e = 0; e < experts; ++e) {
        Split(t.begin + e * slice, t.begin + (e + 1) * slice, max_chunk, kind, &out);
      }
    } else {
      Split(t.begin, t.end, max_chunk, kind, &out);
    }
  }
  return out;
}

size_t GearChunker::Next(std::string_view data) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i < data.size(); ++i) {
    hash_ = (hash_ << 1) + kGear[p[i]];
    ++len_;
    if (len_ >= kMax || (len_ >= kMin && (hash_ & kMask) == 0)) {
      hash_ = 0;
      len_ = 0;
      return i + 1;
    }
  }
  return kNoCut;
}

}  // namespace hubnode::store

// Where chunks are cut: tensor-aware for safetensors, content-defined (gear hash) for the rest.
// docs/store-format.md "Chunking".
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "store/codec.h"
#include "store/safetensors.h"

namespace hubnode::store {

struct Piece {
  uint64_t offset;
  uint64_t length;
  ElementKind kind;
};

// The chunks of a validated safetensors file: the header, then each tensor (cut per expert slice
// for packed expert tensors) in pieces of at most max_chunk bytes.
std::vector<Piece> PlanSafetensorsChunks(const SafetensorsHeader& header, uint64_t max_chunk);

// Content-defined chunking with a gear rolling hash: 8 KiB minimum, cut where the low 16 bits of
// the hash are zero (~64 KiB average), 128 KiB maximum. Not thread-safe; one per stream.
class GearChunker {
 public:
  static constexpr size_t kMin = 8 << 10;
  static constexpr size_t kMax = 128 << 10;
  static constexpr uint64_t kMask = 0xFFFF;
  static constexpr size_t kNoCut = static_cast<size_t>(-1);

  // Continues the current chunk over `data`. Returns how many bytes of `data` complete it (the
  // chunker then starts a new chunk), or kNoCut when all of `data` belongs to the current chunk.
  size_t Next(std::string_view data);

 private:
  uint64_t hash_ = 0;
  size_t len_ = 0;
};

}  // namespace hubnode::store

// Chunk records: codec byte, raw length, payload (docs/store-format.md "Chunk record").
//
// Thread safety: all functions are safe to call concurrently (zstd contexts are thread-local).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::store {

enum class Codec : uint8_t { kRaw = 0, kZstd = 1, kZstdGroup2 = 2, kZstdGroup4 = 3 };

// What the bytes of a chunk are, so the encoder can pick a codec.
enum class ElementKind : uint8_t { kBytes, k2Byte, k4Byte };

// Which codecs the writer may use. kAuto = grouped for float tensor data, zstd otherwise.
enum class CodecPolicy : uint8_t { kAuto, kZstdOnly, kRawOnly };

inline constexpr uint32_t kMaxChunkRawLen = 128u << 20;
inline constexpr size_t kChunkRecordHeader = 5;

struct EncodedChunk {
  std::string record;
  Codec codec;
};

// Encodes `raw` (REQUIRES: raw.size() <= kMaxChunkRawLen). Keeps a compressed form only when it
// is at least 5% smaller than raw.
EncodedChunk EncodeChunk(std::string_view raw, ElementKind kind, CodecPolicy policy, int zstd_level);

// Decodes a record into its raw bytes. DataLoss on any inconsistency (unknown codec, length
// mismatch, corrupt frame); never allocates more than the recorded raw length (itself bounded).
Result<std::string> DecodeChunk(std::string_view record);
// The same, reusing the record's buffer for a raw chunk.
Result<std::string> DecodeOwnedChunk(std::string&& record);

// The codec and raw length of a record, checked for plausibility. DataLoss if malformed.
struct ChunkHeader {
  Codec codec;
  uint32_t raw_len;
};
Result<ChunkHeader> PeekChunkHeader(std::string_view record);

std::string_view CodecName(Codec c);

}  // namespace hubnode::store

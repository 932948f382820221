// Strict safetensors header parsing (runtime.md §1.1, with the checks of safetensors'
// Metadata::validate). Any violation is InvalidArgument naming the tensor and the rule.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/status.h"

namespace hubnode::store {

inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;
// The most tensors one header may declare (the largest MoE checkpoints have ~100,000 in all, a
// few thousand per shard).
inline constexpr size_t kMaxSafetensorsTensors = 1'000'000;

struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0;  // absolute file offset
  uint64_t end = 0;    // absolute, one past the last byte
};

struct SafetensorsHeader {
  uint64_t header_end = 0;                  // 8 + header length = start of the data section
  std::vector<SafetensorsTensor> tensors;   // sorted by begin (then name)
  std::map<std::string, std::string> metadata;
};

// Bits per element of a dtype name, or 0 when unknown.
int DtypeBits(std::string_view dtype);

// Validates and parses `json` (the header text) of a file of `file_size` bytes.
Result<SafetensorsHeader> ParseSafetensorsHeader(std::string_view json, uint64_t file_size);

// Reads the length prefix and header of an open file and parses it.
Result<SafetensorsHeader> ReadSafetensorsHeader(const ReadFile& file);

}  // namespace hubnode::store

// The safetensors container as this generator writes it: header layout (offsets, space padding
// to 8 bytes, "__metadata__": {"format": "pt"}), a strict reader for the headers it wrote (used by
// the fine-tune mode), shard file names and model.safetensors.index.json.
//
// Thread safety: pure functions; ReadShardHeader only reads through the given file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "testmodel/testmodel.h"

namespace hubnode::testmodel {

struct TensorEntry {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data section (after the header)
  uint64_t end = 0;
  uint64_t numel() const;
};

// Sorts `tensors` by name (the real writer sorts by dtype alignment, then name; ours share one
// dtype), assigns their data offsets so they tile the data section, and returns the bytes that
// precede the data: the u64 little-endian header length and the space-padded JSON header.
std::string LayoutShard(std::vector<TensorEntry>& tensors);

struct ShardHeader {
  std::vector<TensorEntry> tensors;  // in data order
  uint64_t data_start = 0;           // 8 + header length
};

// Reads and validates a shard's header: JSON object of entries with a known dtype (BF16, F16,
// F32), non-negative shape, offsets that tile the data section from 0 to the end of the file with
// sizes matching shape x dtype. InvalidArgument naming the file on anything else.
Result<ShardHeader> ReadShardHeader(const ReadFile& file);

// "model-00001-of-00004.safetensors" for index 0 of 4.
std::string ShardFileName(int index, int count);

inline constexpr std::string_view kIndexFileName = "model.safetensors.index.json";

// {"metadata": {"total_size": N}, "weight_map": {name: file}} with sorted keys.
std::string IndexJson(uint64_t total_size, const std::map<std::string, std::string>& weight_map);

// The weight_map of an index file. InvalidArgument when the text is not such an index or names a
// file that is not a plain shard name.
Result<std::map<std::string, std::string>> ParseIndexJson(std::string_view text);

}  // namespace hubnode::testmodel

// Streams one safetensors shard to disk: the header bytes, then each tensor's data either drawn
// from its random stream or copied from another file. Work is cut into pieces of at most
// kBlockElements elements (one random stream) or 4 MiB, drawn in parallel on a thread pool a
// window at a time and written in order, so memory stays bounded (a few buffers per thread)
// and the bytes do not depend on the thread count.
//
// Thread safety: one call per pool at a time (it waits for the pool to drain).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "testmodel/safetensors.h"
#include "testmodel/weights.h"

namespace hubnode::testmodel {

// Which part of an F8_E4M3 weight a tensor is (FillFp8): the quantized values, or the F32 block
// scales (`weight_scale_inv`), both drawn from the weight's stream.
enum class Fp8Part { kNone, kWeight, kScales };

// Where one tensor's bytes come from.
struct TensorSource {
  // Draw: values from the stream with this seed (TensorSeed(...)) and init.
  uint64_t seed = 0;
  Init init = Init::kNormal;
  // Copy: when `from` is set, the tensor's bytes are copied from that file starting at
  // from_offset. Not owned; must outlive the call.
  const ReadFile* from = nullptr;
  uint64_t from_offset = 0;
  // Draw as an FP8 weight [rows, cols] or its scales (one piece: the scales need whole blocks).
  Fp8Part fp8 = Fp8Part::kNone;
  int64_t rows = 0, cols = 0;
};

// Creates `path` holding `prefix` followed by the data of `tensors` (in the order given, which
// must be their data order) with sources[i] describing tensors[i].
Status WriteShard(const std::string& path, std::string_view prefix,
                  const std::vector<TensorEntry>& tensors, const std::vector<TensorSource>& sources,
                  ThreadPool& pool);

}  // namespace hubnode::testmodel

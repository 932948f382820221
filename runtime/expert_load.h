// Reading one routed expert's weight in the dtype the expert cache holds experts in
// (EngineOptions::expert_dtype): as stored, or converted on load to bf16 / float8 / int8 / int4
// with block scales (runtime/quant.h).
//
// A float8 weight as DeepSeek-V3 ships it comes with `<name>_scale_inv` (f32, one per 128 × 128
// block): held as it is for kStored, dequantized before any conversion.
//
// Thread safety: pure functions over their arguments; the source must allow concurrent reads.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "runtime/backend.h"
#include "runtime/quant.h"

namespace hubnode::runtime {

// The block DeepSeek-V3's float8 weights are scaled by (quantization_config.weight_block_size).
inline constexpr int64_t kStoredFp8Block = 128;

struct ExpertTensorPlan {
  const TensorDesc* tensor = nullptr;
  const TensorDesc* scale_inv = nullptr;  // stored float8 only
  DType dtype = DType::kBF16;             // as held
  QuantFormat format;                     // block-scaled dtypes
  uint64_t bytes = 0;                     // in backend memory (data, then scales)
};

// InvalidArgument naming the tensor when it cannot be held as asked (a stored float8 weight
// without a matching `_scale_inv`, a shape a quantized format cannot take, an unsupported dtype).
Result<ExpertTensorPlan> PlanExpertTensor(const std::unordered_map<std::string, TensorDesc>& tensors,
                                          const std::string& name, ExpertDType target);

// Reads the planned tensor through `source` into `dst` (plan.bytes of `backend` memory, or of host
// memory when `dst_on_host`) and returns its view. `staging` is reused scratch memory of the
// calling thread.
Result<WeightView> LoadExpertTensor(TensorSource& source, Backend& backend, const ExpertTensorPlan& plan,
                                    uint8_t* dst, std::vector<uint8_t>& staging, bool dst_on_host = false);

}  // namespace hubnode::runtime

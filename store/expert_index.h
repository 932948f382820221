// Which tensors belong to which expert of which layer, from tensor names (runtime.md §1.3-1.8):
// Mixtral `layers.L.block_sparse_moe.experts.E.w{1,2,3}`, Qwen2/3-MoE, OLMoE and DeepSeek
// `layers.L.mlp.experts.E.{gate,up,down}_proj`, shared experts `mlp.shared_expert(s).*`, and packed
// `[E, ...]` tensors (`mlp.experts.gate_up_proj`, gpt-oss `*_blocks/_scales/_bias`) cut per expert.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "store/safetensors.h"
#include "store/store.h"

namespace hubnode::store {

inline constexpr uint32_t kSharedExpert = 0xFFFFFFFF;

struct ExpertMatch {
  uint32_t layer;
  uint32_t expert;  // kSharedExpert for shared experts
};

// The (layer, expert) of a per-expert or shared-expert tensor name; nullopt otherwise.
std::optional<ExpertMatch> MatchExpertTensor(std::string_view name);

// For a packed expert tensor (`layers.L.<moe>.experts.<not a number>...` with a first dimension
// that divides the byte span), the number of experts; 0 for any other tensor.
uint64_t PackedExpertCount(const SafetensorsTensor& t);

// The layer of a packed expert tensor's name, if it has the packed form.
std::optional<uint32_t> MatchPackedExpertLayer(std::string_view name);

// Adds the expert parts among one safetensors file's tensors to `index`.
void AddExpertParts(const std::string& path, const std::vector<TensorInfo>& tensors, ExpertIndex* index);

}  // namespace hubnode::store

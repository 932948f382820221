// The resolved shape of a model to generate (presets plus overrides, validated), its tensor list
// in the real checkpoints' names and layouts, and its config.json / generation_config.json.
//
// Thread safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "testmodel/testmodel.h"

namespace hubnode::testmodel {

struct ModelSpec {
  Family family = Family::kOlmoe;
  DType dtype = DType::kBF16;
  int hidden = 0;
  int layers = 0;
  int experts = 0;           // 0 for dense families
  int top_k = 0;             // 0 for dense families
  int intermediate = 0;      // dense MLP width (and Qwen2-MoE's shared expert)
  int moe_intermediate = 0;  // routed expert width
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int shards = 0;
  int merges = 0;                    // BPE merges the tokenizer learns
  std::vector<int> mlp_only_layers;  // sorted, unique
  std::string size;                  // the preset name
  // DeepSeek-V2/V3 (MLA, shared experts, leading dense layers); derived from the preset.
  int q_lora_rank = 0;  // 0: plain q_proj (written as null)
  int kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  int n_shared_experts = 0, first_k_dense_replace = 0, n_group = 1, topk_group = 1;

  // True when layer `layer` has routed experts (Qwen2-MoE's rule: not in mlp_only_layers,
  // decoder_sparse_step 1).
  bool IsMoeLayer(int layer) const;
};

// Applies the preset and the overrides of `options` and checks them. InvalidArgument with the
// offending field named.
Result<ModelSpec> ResolveSpec(const Options& options);

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::kBF16;  // as stored (an fp8 model mixes F8_E4M3, BF16 and F32)
  std::string scale_of;        // set for `X.weight_scale_inv`: "X.weight", the F8_E4M3 weight
  uint64_t numel() const;
};

// Every tensor of the checkpoint in model order (embedding, layer 0..n-1, final norm, lm_head;
// within a layer: norms, attention, MLP), shapes as stored ([out, in] for nn.Linear).
std::vector<TensorSpec> ListTensors(const ModelSpec& spec, int vocab_size);

// Token ids config.json and generation_config.json refer to; -1 for none.
struct TokenIds {
  int bos = -1;
  int eos = -1;
  int pad = -1;
  std::vector<int> generation_eos;  // generation_config's eos_token_id list
};

// config.json text, sorted keys and two-space indent like transformers' save_pretrained.
std::string ConfigJson(const ModelSpec& spec, int vocab_size, const TokenIds& ids);
std::string GenerationConfigJson(const ModelSpec& spec, const TokenIds& ids);

// The architectures[0] class name, e.g. "OlmoeForCausalLM".
std::string_view ArchitectureName(Family family);
// max_position_embeddings of the family (also the tokenizer's model_max_length).
int MaxPositionEmbeddings(Family family);

}  // namespace hubnode::testmodel

// config.json (and generation_config.json) of a supported architecture, parsed into a typed
// struct once; nothing deeper in the runtime sees JSON.
//
// Thread safety: pure functions over values.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::runtime {

enum class Arch { kMixtral, kQwen2Moe, kQwen3Moe, kOlmoe, kLlama, kQwen2, kQwen3, kDeepseekV2, kDeepseekV3 };

// How q and k are normalised before RoPE: not at all, per head over head_dim (Qwen3), or over
// the whole projection before the reshape to heads (OLMoE).
enum class QkNorm { kNone, kPerHead, kFull };

// How a MoE layer scores its experts and picks the top-k (docs/deepseek.md for DeepSeek's rules).
enum class Scoring { kSoftmax, kSigmoid };
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

// Multi-head latent attention (DeepSeek-V2/V3): q through an optional low-rank q_a/q_b pair, keys
// and values from one compressed latent of kv_lora_rank values plus a rope key shared by all heads.
struct MlaConfig {
  int q_lora_rank = 0;  // 0: a plain q_proj
  int kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
  bool rope_interleave = true;  // rope pairs are (x[2i], x[2i+1]) in the checkpoint's layout
  double softmax_scale = 0;     // qk_head_dim^-0.5, times yarn mscale(factor, mscale_all_dim)^2
  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
};

enum class RopeType { kDefault, kLinear, kDynamic, kLlama3, kYarn };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position = 0;
  // yarn
  double beta_fast = 32.0, beta_slow = 1.0;
  double attention_factor = 1.0;  // resolved from attention_factor / mscale / factor
  bool truncate = true;
};

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string model_type;
  int hidden = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  int intermediate = 0;         // dense MLP width
  int moe_intermediate = 0;     // routed expert width
  int shared_intermediate = 0;  // Qwen2-MoE's shared expert width
  int experts = 0, top_k = 0;   // 0 for dense models
  bool norm_topk_prob = false;
  bool qkv_bias = false;
  QkNorm qk_norm = QkNorm::kNone;
  double rms_eps = 1e-6;
  RopeConfig rope;
  int max_position = 0;
  bool tie_embeddings = false;
  int sliding_window = 0;  // 0 = none
  std::vector<int> mlp_only_layers;
  int decoder_sparse_step = 1;
  // DeepSeek: MLA (kv_lora_rank > 0 iff mla), routing and layer pattern.
  bool mla = false;
  MlaConfig mla_dims;
  Scoring scoring = Scoring::kSoftmax;
  TopkMethod topk_method = TopkMethod::kGreedy;
  int n_group = 1, topk_group = 1;
  double routed_scaling_factor = 1.0;
  int first_k_dense_replace = 0, moe_layer_freq = 1;
  bool fp8 = false;  // quantization_config: fp8 e4m3 with 128 x 128 block scales
  int bos_id = -1;
  std::vector<int> eos_ids;  // config's and generation_config's, merged

  bool IsMoeLayer(int layer) const;
  // The on-disk tensor names of an expert's gate, up and down projections.
  std::string ExpertTensor(int layer, int expert, int which) const;  // which: 0 gate, 1 up, 2 down
  std::string RouterTensor(int layer) const;
  std::string MoePrefix(int layer) const;  // "model.layers.N.mlp." or ".block_sparse_moe."
  bool IsDeepseek() const { return arch == Arch::kDeepseekV2 || arch == Arch::kDeepseekV3; }
};

// InvalidArgument naming the field for a malformed, missing or unsupported value (an unknown
// model_type, a hidden_act other than silu, a quantization_config, an unknown rope type ...).
Result<ModelConfig> ParseModelConfig(std::string_view config_json,
                                     std::string_view generation_config_json);

// The RoPE inverse frequencies (head_dim / 2 of them) for sequences up to `seq_len` positions
// (only the dynamic type depends on it), following transformers' modeling_rope_utils.
std::vector<double> RopeInvFreq(const ModelConfig& config, int seq_len);

}  // namespace hubnode::runtime

#include "testmodel/spec.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace hubnode::testmodel {
namespace {

using nlohmann::json;

struct Preset {
  std::string_view name;
  int hidden, layers, experts, top_k, intermediate, moe_intermediate, heads, kv_heads, shards;
  int merges;
};

// Sizes (bf16, OLMoE): tiny ~0.4 MB, small ~15 MB, medium ~165 MB, bench ~1.05 GB (OLMoE's
// 64 experts top-8 and MHA at half its width).
constexpr Preset kPresets[] = {
    {"tiny", 64, 2, 4, 2, 128, 64, 4, 2, 2, 200},
    {"small", 256, 4, 8, 2, 1024, 256, 8, 4, 2, 300},
    {"medium", 512, 8, 16, 4, 2048, 384, 8, 4, 3, 400},
    {"bench", 1024, 16, 64, 8, 4096, 144, 16, 16, 4, 500},
};

// Upper bounds that keep every derived size far from overflow; a real request is far below.
constexpr int kMaxDim = 1 << 18;
constexpr int kMaxLayers = 4096;
constexpr int kMaxExperts = 4096;
constexpr int kMaxShards = 99999;  // the %05d file name

bool ExpertWidthIsIntermediate(Family f) { return f == Family::kMixtral || f == Family::kOlmoe; }
bool HasHeadDimField(Family f) { return f == Family::kQwen3 || f == Family::kQwen3Moe; }
bool HasMlpOnlyLayers(Family f) { return f == Family::kQwen2Moe || f == Family::kQwen3Moe; }
bool HasQkvBias(Family f) { return f == Family::kQwen2 || f == Family::kQwen2Moe; }
bool IsDeepseek(Family f) { return f == Family::kDeepseekV2 || f == Family::kDeepseekV3; }

Status CheckRange(std::string_view field, int value, int lo, int hi) {
  if (value < lo || value > hi) {
    return InvalidArgumentError(std::string(field) + " must be in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], got " + std::to_string(value));
  }
  return OkStatus();
}

std::string TorchDType(DType d) {
  switch (d) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
    case DType::kF8E4M3:
      return "bfloat16";  // as DeepSeek-V3 writes it beside its quantization_config
  }
  return "bfloat16";
}

double RopeTheta(Family f) {
  switch (f) {
    case Family::kOlmoe:
      return 10000.0;
    case Family::kLlama:
      return 500000.0;
    default:
      return 1000000.0;
  }
}

double RmsNormEps(Family f) {
  switch (f) {
    case Family::kMixtral:
    case Family::kOlmoe:
    case Family::kLlama:
      return 1e-05;
    default:
      return 1e-06;
  }
}

// A DeepSeek layer's attention (MLA) and MLP (dense first, then routed + shared experts).
template <typename Add, typename Mlp>
void AddDeepseekLayer(const ModelSpec& s, int layer, const std::string& p, Add& add, Mlp& mlp) {
  const int64_t h = s.hidden, heads = s.heads, qk = s.qk_nope_head_dim + s.qk_rope_head_dim;
  const std::string a = p + "self_attn.";
  if (s.q_lora_rank > 0) {
    add(a + "q_a_proj.weight", {s.q_lora_rank, h});
    add(a + "q_a_layernorm.weight", {s.q_lora_rank});
    add(a + "q_b_proj.weight", {heads * qk, s.q_lora_rank});
  } else {
    add(a + "q_proj.weight", {heads * qk, h});
  }
  add(a + "kv_a_proj_with_mqa.weight", {s.kv_lora_rank + s.qk_rope_head_dim, h});
  add(a + "kv_a_layernorm.weight", {s.kv_lora_rank});
  add(a + "kv_b_proj.weight", {heads * (s.qk_nope_head_dim + s.v_head_dim), s.kv_lora_rank});
  add(a + "o_proj.weight", {h, heads * s.v_head_dim});
  if (!s.IsMoeLayer(layer)) {
    mlp(p + "mlp.", s.intermediate);
    return;
  }
  add(p + "mlp.gate.weight", {s.experts, h});
  if (s.family == Family::kDeepseekV3) add(p + "mlp.gate.e_score_correction_bias", {s.experts});
  for (int e = 0; e < s.experts; ++e) mlp(p + "mlp.experts." + std::to_string(e) + ".", s.moe_intermediate);
  mlp(p + "mlp.shared_experts.", int64_t{s.moe_intermediate} * s.n_shared_experts);
}

}  // namespace

bool ModelSpec::IsMoeLayer(int layer) const {
  if (IsDeepseek(family)) return layer >= first_k_dense_replace;  // moe_layer_freq 1
  return IsMoe(family) &&
         !std::binary_search(mlp_only_layers.begin(), mlp_only_layers.end(), layer);
}

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string_view ArchitectureName(Family family) {
  switch (family) {
    case Family::kMixtral:
      return "MixtralForCausalLM";
    case Family::kQwen2Moe:
      return "Qwen2MoeForCausalLM";
    case Family::kQwen3Moe:
      return "Qwen3MoeForCausalLM";
    case Family::kOlmoe:
      return "OlmoeForCausalLM";
    case Family::kLlama:
      return "LlamaForCausalLM";
    case Family::kQwen2:
      return "Qwen2ForCausalLM";
    case Family::kQwen3:
      return "Qwen3ForCausalLM";
    case Family::kDeepseekV2:
      return "DeepseekV2ForCausalLM";
    case Family::kDeepseekV3:
      return "DeepseekV3ForCausalLM";
  }
  return "";
}

int MaxPositionEmbeddings(Family family) {
  switch (family) {
    case Family::kMixtral:
      return 32768;
    case Family::kQwen2Moe:
      return 8192;
    case Family::kQwen3Moe:
    case Family::kQwen3:
      return 40960;
    case Family::kOlmoe:
      return 4096;
    case Family::kLlama:
      return 131072;
    case Family::kQwen2:
      return 32768;
    case Family::kDeepseekV2:
    case Family::kDeepseekV3:
      return 163840;
  }
  return 4096;
}

Result<ModelSpec> ResolveSpec(const Options& o) {
  const Preset* preset = nullptr;
  for (const Preset& p : kPresets) {
    if (p.name == o.size) preset = &p;
  }
  if (preset == nullptr) {
    return InvalidArgumentError("unknown size preset \"" + o.size +
                                "\" (want tiny, small, medium or bench)");
  }
  const Family f = o.family;
  ModelSpec s;
  s.family = f;
  s.dtype = o.dtype;
  s.size = std::string(preset->name);
  s.merges = o.merges.value_or(preset->merges);
  RETURN_IF_ERROR(CheckRange("merges", s.merges, 1, 65000));
  s.hidden = o.hidden.value_or(preset->hidden);
  s.layers = o.layers.value_or(preset->layers);
  s.heads = o.heads.value_or(preset->heads);
  s.kv_heads = o.kv_heads.value_or(preset->kv_heads);
  s.shards = o.shards.value_or(preset->shards);
  RETURN_IF_ERROR(CheckRange("hidden", s.hidden, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("layers", s.layers, 1, kMaxLayers));
  RETURN_IF_ERROR(CheckRange("heads", s.heads, 1, kMaxDim));
  RETURN_IF_ERROR(CheckRange("kv_heads", s.kv_heads, 1, s.heads));
  RETURN_IF_ERROR(CheckRange("shards", s.shards, 1, kMaxShards));
  if (s.heads % s.kv_heads != 0) {
    return InvalidArgumentError("heads (" + std::to_string(s.heads) +
                                ") must be a multiple of kv_heads (" + std::to_string(s.kv_heads) +
                                ")");
  }
  if (o.head_dim.has_value()) {
    if (!HasHeadDimField(f)) {
      return InvalidArgumentError("head_dim can only be set for qwen3 and qwen3_moe, not " +
                                  std::string(FamilyName(f)));
    }
    s.head_dim = *o.head_dim;
    RETURN_IF_ERROR(CheckRange("head_dim", s.head_dim, 2, kMaxDim / s.heads));
  } else {
    if (s.hidden % s.heads != 0) {
      return InvalidArgumentError("hidden (" + std::to_string(s.hidden) +
                                  ") must be divisible by heads (" + std::to_string(s.heads) + ")");
    }
    s.head_dim = s.hidden / s.heads;
  }
  if (s.head_dim % 2 != 0) {
    return InvalidArgumentError("head_dim must be even for rotary embeddings, got " +
                                std::to_string(s.head_dim));
  }

  if (IsMoe(f)) {
    s.experts = o.experts.value_or(preset->experts);
    s.top_k = o.top_k.value_or(preset->top_k);
    RETURN_IF_ERROR(CheckRange("experts", s.experts, 1, kMaxExperts));
    if (s.top_k < 1 || s.top_k > s.experts) {
      return InvalidArgumentError("top_k must be in [1, experts=" + std::to_string(s.experts) +
                                  "], got " + std::to_string(s.top_k));
    }
    if (ExpertWidthIsIntermediate(f)) {
      if (o.intermediate && o.moe_intermediate && *o.intermediate != *o.moe_intermediate) {
        return InvalidArgumentError(std::string(FamilyName(f)) +
                                    " has one MLP width: intermediate and moe_intermediate differ");
      }
      s.moe_intermediate =
          o.moe_intermediate.value_or(o.intermediate.value_or(preset->moe_intermediate));
      s.intermediate = s.moe_intermediate;
    } else {
      s.moe_intermediate = o.moe_intermediate.value_or(preset->moe_intermediate);
      s.intermediate = o.intermediate.value_or(preset->intermediate);
    }
    RETURN_IF_ERROR(CheckRange("moe_intermediate", s.moe_intermediate, 1, kMaxDim));
  } else {
    s.intermediate = o.intermediate.value_or(preset->intermediate);
  }
  RETURN_IF_ERROR(CheckRange("intermediate", s.intermediate, 1, kMaxDim));

  if (!o.mlp_only_layers.empty()) {
    if (!HasMlpOnlyLayers(f)) {
      return InvalidArgumentError("mlp_only_layers applies to qwen2_moe and qwen3_moe only");
    }
    for (int layer : o.mlp_only_layers) {
      RETURN_IF_ERROR(CheckRange("mlp_only_layers entry", layer, 0, s.layers - 1));
    }
    s.mlp_only_layers = o.mlp_only_layers;
    std::sort(s.mlp_only_layers.begin(), s.mlp_only_layers.end());
    s.mlp_only_layers.erase(std::unique(s.mlp_only_layers.begin(), s.mlp_only_layers.end()),
                            s.mlp_only_layers.end());
  }
  if (o.dtype == DType::kF8E4M3 && !IsDeepseek(f)) {
    return InvalidArgumentError("fp8 (DeepSeek-V3's release layout) applies to deepseek_v2 and deepseek_v3 only");
  }
  if (IsDeepseek(f)) {
    // MLA derived from the width: nope = v = hidden / heads, rope half that (at least 2, even),
    // kv_lora_rank hidden / 2; V3 also a q-LoRA of hidden / 2 (V2-Lite has none). One dense
    // layer first (added to the preset's count), groups of experts for group-limited routing.
    if (!o.layers) s.layers += 1;
    if (!o.experts && s.experts < 8) s.experts = 8;  // room for groups of experts
    // More experts per token than groups kept, or group-limited routing could not differ from
    // greedy (the best k experts always lie in the best k groups by their best expert).
    if (!o.top_k && s.top_k < 3) s.top_k = 3;
    if (!o.kv_heads) s.kv_heads = s.heads;  // as the released configs write it (MLA ignores it)
    s.qk_nope_head_dim = s.v_head_dim = s.head_dim;
    s.qk_rope_head_dim = std::max(2, s.head_dim / 2 / 2 * 2);
    s.kv_lora_rank = std::max(2, s.hidden / 2);
    s.q_lora_rank = f == Family::kDeepseekV3 ? std::max(2, s.hidden / 2) : 0;
    s.n_shared_experts = f == Family::kDeepseekV3 ? 1 : 2;
    s.first_k_dense_replace = s.layers > 1 ? 1 : 0;
    s.n_group = s.experts % 4 == 0 && s.experts >= 8 ? 4 : 1;
    s.topk_group = s.n_group > 1 ? 2 : 1;
    if (s.topk_group * (s.experts / s.n_group) < s.top_k) s.n_group = s.topk_group = 1;
  }
  if (o.threads < 0) return InvalidArgumentError("threads must be >= 0");
  return s;
}

std::vector<TensorSpec> ListTensors(const ModelSpec& s, int vocab_size) {
  const int64_t h = s.hidden;
  const int64_t q_width = int64_t{s.heads} * s.head_dim;
  const int64_t kv_width = int64_t{s.kv_heads} * s.head_dim;
  std::vector<TensorSpec> out;
  auto add = [&out](std::string name, std::vector<int64_t> shape) {
    out.push_back({std::move(name), std::move(shape)});
  };
  // An nn.Linear(in, out) weight is stored [out, in].
  auto mlp = [&](const std::string& p, int64_t width) {
    add(p + "gate_proj.weight", {width, h});
    add(p + "up_proj.weight", {width, h});
    add(p + "down_proj.weight", {h, width});
  };

  add("model.embed_tokens.weight", {vocab_size, h});
  for (int layer = 0; layer < s.layers; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    add(p + "input_layernorm.weight", {h});
    add(p + "post_attention_layernorm.weight", {h});
    if (IsDeepseek(s.family)) {
      AddDeepseekLayer(s, layer, p, add, mlp);
      continue;
    }
    add(p + "self_attn.q_proj.weight", {q_width, h});
    add(p + "self_attn.k_proj.weight", {kv_width, h});
    add(p + "self_attn.v_proj.weight", {kv_width, h});
    add(p + "self_attn.o_proj.weight", {h, q_width});
    if (HasQkvBias(s.family)) {
      add(p + "self_attn.q_proj.bias", {q_width});
      add(p + "self_attn.k_proj.bias", {kv_width});
      add(p + "self_attn.v_proj.bias", {kv_width});
    }
    if (s.family == Family::kQwen3 || s.family == Family::kQwen3Moe) {
      add(p + "self_attn.q_norm.weight", {s.head_dim});  // per head
      add(p + "self_attn.k_norm.weight", {s.head_dim});
    } else if (s.family == Family::kOlmoe) {
      add(p + "self_attn.q_norm.weight", {q_width});  // over the whole projection
      add(p + "self_attn.k_norm.weight", {kv_width});
    }
    if (!s.IsMoeLayer(layer)) {
      mlp(p + "mlp.", s.intermediate);
    } else if (s.family == Family::kMixtral) {
      add(p + "block_sparse_moe.gate.weight", {s.experts, h});
      for (int e = 0; e < s.experts; ++e) {
        const std::string ep = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        add(ep + "w1.weight", {s.moe_intermediate, h});  // gate
        add(ep + "w2.weight", {h, s.moe_intermediate});  // down
        add(ep + "w3.weight", {s.moe_intermediate, h});  // up
      }
    } else {
      add(p + "mlp.gate.weight", {s.experts, h});
      for (int e = 0; e < s.experts; ++e) {
        mlp(p + "mlp.experts." + std::to_string(e) + ".", s.moe_intermediate);
      }
      if (s.family == Family::kQwen2Moe) {
        mlp(p + "mlp.shared_expert.", s.intermediate);
        add(p + "mlp.shared_expert_gate.weight", {1, h});
      }
    }
  }
  add("model.norm.weight", {h});
  add("lm_head.weight", {vocab_size, h});
  // Stored dtypes: the model's, except DeepSeek-V3's router bias (F32) and, in an fp8 model, the
  // layers' Linear weights (F8_E4M3, each followed by its F32 weight_scale_inv).
  std::vector<TensorSpec> typed;
  for (TensorSpec& t : out) {
    const bool bias = t.name.ends_with("e_score_correction_bias");
    const bool linear = t.shape.size() == 2 && t.name.starts_with("model.layers.") && !t.name.ends_with("mlp.gate.weight");
    t.dtype = bias ? DType::kF32 : s.dtype == DType::kF8E4M3 ? (linear ? DType::kF8E4M3 : DType::kBF16) : s.dtype;
    typed.push_back(t);
    if (t.dtype == DType::kF8E4M3) {
      typed.push_back({t.name + "_scale_inv", {(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128}, DType::kF32, t.name});
    }
  }
  return typed;
}

namespace {

// DeepSeek's fields, with the values of the released configs where a test model can use them
// (V2: softmax, group-limited greedy, no normalisation, scale 16, YaRN mscale 0.707; V3: sigmoid,
// noaux_tc with e_score_correction_bias, normalised, scale 2.5, YaRN mscale 1).
void DeepseekConfig(const ModelSpec& s, json& j) {
  const bool v3 = s.family == Family::kDeepseekV3;
  j.erase("num_experts");
  j["n_routed_experts"] = s.experts;
  j["n_shared_experts"] = s.n_shared_experts;
  j["moe_intermediate_size"] = s.moe_intermediate;
  j["first_k_dense_replace"] = s.first_k_dense_replace;
  j["moe_layer_freq"] = 1;
  j["q_lora_rank"] = s.q_lora_rank > 0 ? json(s.q_lora_rank) : json(nullptr);
  j["kv_lora_rank"] = s.kv_lora_rank;
  j["qk_nope_head_dim"] = s.qk_nope_head_dim;
  j["qk_rope_head_dim"] = s.qk_rope_head_dim;
  j["v_head_dim"] = s.v_head_dim;
  j["n_group"] = s.n_group;
  j["topk_group"] = s.topk_group;
  j["topk_method"] = v3 ? "noaux_tc" : (s.n_group > 1 ? "group_limited_greedy" : "greedy");
  j["scoring_func"] = v3 ? "sigmoid" : "softmax";
  j["norm_topk_prob"] = v3;
  j["routed_scaling_factor"] = v3 ? 2.5 : 16.0;
  j["aux_loss_alpha"] = 0.001;
  j["seq_aux"] = true;
  j["ep_size"] = 1;
  j["rope_theta"] = 10000.0;
  const double mscale = v3 ? 1.0 : 0.707;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 40.0}, {"original_max_position_embeddings", 4096},
                       {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", mscale}, {"mscale_all_dim", mscale}};
  if (v3) j["rope_interleave"] = true;
  if (s.dtype == DType::kF8E4M3) {
    j["quantization_config"] = {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
                                {"weight_block_size", {128, 128}}};
  }
}

}  // namespace

std::string ConfigJson(const ModelSpec& s, int vocab_size, const TokenIds& ids) {
  const Family f = s.family;
  json j;
  j["architectures"] = json::array({std::string(ArchitectureName(f))});
  j["model_type"] = std::string(FamilyName(f));
  j["attention_dropout"] = 0.0;
  j["hidden_act"] = "silu";
  j["hidden_size"] = s.hidden;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = s.intermediate;
  j["max_position_embeddings"] = MaxPositionEmbeddings(f);
  j["num_attention_heads"] = s.heads;
  j["num_hidden_layers"] = s.layers;
  j["num_key_value_heads"] = s.kv_heads;
  j["rms_norm_eps"] = RmsNormEps(f);
  j["rope_theta"] = RopeTheta(f);
  j["tie_word_embeddings"] = false;
  j["torch_dtype"] = TorchDType(s.dtype);
  j["transformers_version"] = "4.51.0";
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  j["bos_token_id"] = ids.bos >= 0 ? json(ids.bos) : json(nullptr);
  j["eos_token_id"] = ids.eos;
  if (f != Family::kMixtral && f != Family::kQwen2Moe) j["rope_scaling"] = nullptr;  // DeepSeek: YaRN below
  // Qwen2's biases are fixed by its modeling code, not configured; attention_bias is written
  // anyway so a reader can tell from config.json alone that q/k/v carry biases.
  if (f != Family::kMixtral) j["attention_bias"] = HasQkvBias(f);
  if (IsMoe(f)) {
    j[f == Family::kMixtral ? "num_local_experts" : "num_experts"] = s.experts;
    j["num_experts_per_tok"] = s.top_k;
    j["output_router_logits"] = false;
  }
  switch (f) {
    case Family::kMixtral:
      j["router_aux_loss_coef"] = 0.02;
      j["sliding_window"] = nullptr;
      break;
    case Family::kOlmoe:
      j["clip_qkv"] = nullptr;
      j["norm_topk_prob"] = false;
      j["router_aux_loss_coef"] = 0.01;
      if (ids.pad >= 0) j["pad_token_id"] = ids.pad;
      break;
    case Family::kQwen2Moe:
    case Family::kQwen3Moe:
      j["decoder_sparse_step"] = 1;
      j["mlp_only_layers"] = s.mlp_only_layers;
      j["moe_intermediate_size"] = s.moe_intermediate;
      j["norm_topk_prob"] = f == Family::kQwen3Moe;
      j["router_aux_loss_coef"] = 0.001;
      if (f == Family::kQwen2Moe) j["shared_expert_intermediate_size"] = s.intermediate;
      [[fallthrough]];
    case Family::kQwen2:
    case Family::kQwen3:
      j["max_window_layers"] = s.layers;
      j["sliding_window"] = nullptr;
      j["use_sliding_window"] = false;
      break;
    case Family::kLlama:
      j["mlp_bias"] = false;
      j["pretraining_tp"] = 1;
      break;
    case Family::kDeepseekV2:
    case Family::kDeepseekV3:
      break;  // DeepseekConfig
  }
  if (HasHeadDimField(f) || f == Family::kLlama) j["head_dim"] = s.head_dim;
  if (IsDeepseek(f)) DeepseekConfig(s, j);
  return j.dump(2) + "\n";
}

std::string GenerationConfigJson(const ModelSpec& s, const TokenIds& ids) {
  json j;
  if (ids.bos >= 0) j["bos_token_id"] = ids.bos;
  if (ids.generation_eos.size() == 1) {
    j["eos_token_id"] = ids.generation_eos[0];
  } else {
    j["eos_token_id"] = ids.generation_eos;
  }
  if (ids.pad >= 0) j["pad_token_id"] = ids.pad;
  switch (s.family) {
    case Family::kQwen2:
    case Family::kQwen3:
    case Family::kQwen2Moe:
    case Family::kQwen3Moe:
      j["do_sample"] = true;
      j["temperature"] = 0.7;
      j["top_k"] = 20;
      j["top_p"] = 0.8;
      break;
    case Family::kLlama:
      j["do_sample"] = true;
      j["temperature"] = 0.6;
      j["top_p"] = 0.9;
      break;
    default:
      break;
  }
  j["transformers_version"] = "4.51.0";
  return j.dump(2) + "\n";
}

}  // namespace hubnode::testmodel

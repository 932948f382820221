#include "runtime/config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/json_limits.h"

namespace hubnode::runtime {
namespace {

using nlohmann::json;

Status Bad(std::string_view field, std::string_view why) {
  return InvalidArgumentError("config.json: " + std::string(field) + ": " + std::string(why));
}

// Whether a value computed in double survives the runtime's conversion to f32.
bool FitsF32(double v) { return std::isfinite(v) && std::abs(v) <= std::numeric_limits<float>::max(); }

// Reads an integer field; `fallback` when absent or null (if has_fallback), else an error.
Result<int> Int(const json& j, const char* key, std::optional<int> fallback = std::nullopt,
                int min = 0, int max = 1 << 24) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    return Bad(key, "missing");
  }
  if (!it->is_number_integer()) return Bad(key, "not an integer");
  const int64_t v = it->get<int64_t>();
  if (v < min || v > max) return Bad(key, "out of range (" + std::to_string(v) + ")");
  return static_cast<int>(v);
}

Result<double> Num(const json& j, const char* key, std::optional<double> fallback = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    return Bad(key, "missing");
  }
  if (!it->is_number()) return Bad(key, "not a number");
  const double v = it->get<double>();
  if (!std::isfinite(v)) return Bad(key, "not finite");
  return v;
}

bool Bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

Status AddIds(const json& j, const char* key, std::vector<int>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return OkStatus();
  auto add = [&](const json& v) -> Status {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 24)) {
      return Bad(key, "not a token id");
    }
    const int id = static_cast<int>(v.get<int64_t>());
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
    return OkStatus();
  };
  if (it->is_array()) {
    for (const json& v : *it) RETURN_IF_ERROR(add(v));
    return OkStatus();
  }
  return add(*it);
}

Status ParseRope(const json& j, ModelConfig& c) {
  ASSIGN_OR_RETURN(c.rope.theta, Num(j, "rope_theta", 10000.0));
  if (c.rope.theta <= 1.0) return Bad("rope_theta", "must be > 1");
  auto it = j.find("rope_scaling");
  if (it == j.end() || it->is_null()) return OkStatus();
  if (!it->is_object()) return Bad("rope_scaling", "not an object");
  const json& r = *it;
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto t = r.find(key);
    if (t != r.end() && t->is_string()) {
      type = t->get<std::string>();
      break;
    }
  }
  if (type == "default") return OkStatus();
  ASSIGN_OR_RETURN(c.rope.factor, Num(r, "factor"));
  if (c.rope.factor < 1.0 && type != "linear") return Bad("rope_scaling.factor", "must be >= 1");
  if (c.rope.factor <= 0) return Bad("rope_scaling.factor", "must be > 0");
  if (type == "linear") {
    c.rope.type = RopeType::kLinear;
  } else if (type == "dynamic") {
    c.rope.type = RopeType::kDynamic;
  } else if (type == "llama3") {
    c.rope.type = RopeType::kLlama3;
    ASSIGN_OR_RETURN(c.rope.low_freq_factor, Num(r, "low_freq_factor"));
    ASSIGN_OR_RETURN(c.rope.high_freq_factor, Num(r, "high_freq_factor"));
    ASSIGN_OR_RETURN(c.rope.original_max_position, Int(r, "original_max_position_embeddings", std::nullopt, 1));
    if (c.rope.high_freq_factor <= c.rope.low_freq_factor) {
      return Bad("rope_scaling.high_freq_factor", "must exceed low_freq_factor");
    }
  } else if (type == "yarn") {
    c.rope.type = RopeType::kYarn;
    // transformers v5 (_compute_yarn_parameters): the explicit factor wins. 4.4x-4.5x replaced it
    // with max_position_embeddings / original_max_position_embeddings, which silently disabled
    // scaling for configs that keep max_position_embeddings at the pretrained length (Qwen's
    // documented YaRN setting); see docs/decisions.md.
    const double factor = c.rope.factor;
    ASSIGN_OR_RETURN(c.rope.original_max_position,
                     Int(r, "original_max_position_embeddings", c.max_position, 1, 1 << 24));
    ASSIGN_OR_RETURN(c.rope.beta_fast, Num(r, "beta_fast", 32.0));
    ASSIGN_OR_RETURN(c.rope.beta_slow, Num(r, "beta_slow", 1.0));
    c.rope.truncate = Bool(r, "truncate", true);
    auto get_mscale = [](double scale, double mscale) {
      return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
    };
    if (r.contains("attention_factor") && !r["attention_factor"].is_null()) {
      ASSIGN_OR_RETURN(c.rope.attention_factor, Num(r, "attention_factor"));
    } else {
      ASSIGN_OR_RETURN(double mscale, Num(r, "mscale", 0.0));
      ASSIGN_OR_RETURN(double mscale_all_dim, Num(r, "mscale_all_dim", 0.0));
      c.rope.attention_factor = (mscale != 0 && mscale_all_dim != 0)
                                    ? get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)
                                    : get_mscale(factor, 1.0);
    }
    if (!FitsF32(c.rope.attention_factor)) {
      return Bad("rope_scaling.attention_factor", "(given, or from mscale / mscale_all_dim) not finite in f32");
    }
  } else {
    return Bad("rope_scaling.rope_type", "unsupported \"" + type + "\"");
  }
  return OkStatus();
}

// DeepSeek's fp8 release: {"quant_method":"fp8","fmt":"e4m3","weight_block_size":[128,128],
// "activation_scheme":"dynamic"}; anything else is refused.
Status ParseQuantization(const json& j, ModelConfig& c) {
  auto it = j.find("quantization_config");
  if (it == j.end() || it->is_null()) return OkStatus();
  const json& q = *it;
  if (!q.is_object()) return Bad("quantization_config", "not an object");
  auto str = [&](const char* key) {
    auto f = q.find(key);
    return f != q.end() && f->is_string() ? f->get<std::string>() : std::string();
  };
  if (str("quant_method") != "fp8") {
    return Bad("quantization_config.quant_method", "only DeepSeek's fp8 (e4m3, 128 x 128 blocks) is supported");
  }
  if (q.contains("fmt") && str("fmt") != "e4m3") return Bad("quantization_config.fmt", "only e4m3 is supported");
  if (q.contains("activation_scheme") && str("activation_scheme") != "dynamic") {
    return Bad("quantization_config.activation_scheme", "only dynamic is supported");
  }
  auto bs = q.find("weight_block_size");
  if (bs == q.end() || *bs != json::array({128, 128})) {
    return Bad("quantization_config.weight_block_size", "only [128, 128] is supported");
  }
  c.fp8 = true;
  return OkStatus();
}

double YarnMscale(double scale, double mscale) {
  return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

// DeepSeek-V2/V3 (docs/deepseek.md has each rule and its source).
Status ParseDeepseek(const json& j, ModelConfig& c) {
  const bool v3 = c.arch == Arch::kDeepseekV3;
  MlaConfig& m = c.mla_dims;
  c.mla = true;
  ASSIGN_OR_RETURN(m.q_lora_rank, Int(j, "q_lora_rank", 0, 0, 1 << 20));
  ASSIGN_OR_RETURN(m.kv_lora_rank, Int(j, "kv_lora_rank", std::nullopt, 1, 1 << 20));
  ASSIGN_OR_RETURN(m.qk_nope_head_dim, Int(j, "qk_nope_head_dim", std::nullopt, 1, 1 << 16));
  ASSIGN_OR_RETURN(m.qk_rope_head_dim, Int(j, "qk_rope_head_dim", std::nullopt, 2, 1 << 16));
  ASSIGN_OR_RETURN(m.v_head_dim, Int(j, "v_head_dim", std::nullopt, 1, 1 << 16));
  if (m.qk_rope_head_dim % 2 != 0) return Bad("qk_rope_head_dim", "must be even");
  if (Bool(j, "attention_bias", false)) return Bad("attention_bias", "not supported for MLA");
  // V2 rotates (x[2i], x[2i+1]) pairs always; V3 when rope_interleave (default true).
  m.rope_interleave = v3 ? Bool(j, "rope_interleave", true) : true;
  // The per-token query and attention-output widths, bounded as heads x head_dim is elsewhere.
  if (int64_t{c.heads} * m.qk_head_dim() > (1 << 24) || int64_t{c.heads} * m.v_head_dim > (1 << 24)) {
    return Bad("num_attention_heads", "times qk_nope_head_dim + qk_rope_head_dim or v_head_dim exceeds 16777216");
  }
  c.head_dim = m.qk_rope_head_dim;  // RoPE covers the rope part only
  c.kv_heads = c.heads;
  m.softmax_scale = 1.0 / std::sqrt(static_cast<double>(m.qk_head_dim()));
  if (auto rs = j.find("rope_scaling"); rs != j.end() && rs->is_object()) {
    ASSIGN_OR_RETURN(double mscale_all_dim, Num(*rs, "mscale_all_dim", 0.0));
    if (mscale_all_dim != 0) {
      ASSIGN_OR_RETURN(double factor, Num(*rs, "factor"));
      const double ms = YarnMscale(factor, mscale_all_dim);
      m.softmax_scale *= ms * ms;
    }
    if (c.rope.type == RopeType::kYarn && !rs->contains("attention_factor")) {
      // DeepSeek's YaRN multiplies cos and sin by mscale(factor, mscale) / mscale(factor,
      // mscale_all_dim) with defaults 1 and 0 (transformers agrees when both are given).
      ASSIGN_OR_RETURN(double mscale, Num(*rs, "mscale", 1.0));
      c.rope.attention_factor = YarnMscale(c.rope.factor, mscale) / YarnMscale(c.rope.factor, mscale_all_dim);
    }
    if (!FitsF32(m.softmax_scale) || m.softmax_scale <= 0) {
      return Bad("rope_scaling.mscale_all_dim", "makes the softmax scale zero or not finite in f32");
    }
    if (!FitsF32(c.rope.attention_factor)) {
      return Bad("rope_scaling.mscale", "makes the attention factor (mscale / mscale_all_dim) not finite in f32");
    }
  }
  auto routed = j.find("n_routed_experts");
  if (routed == j.end() || routed->is_null()) {
    c.experts = 0;
    return OkStatus();
  }
  ASSIGN_OR_RETURN(c.experts, Int(j, "n_routed_experts", std::nullopt, 1, 4096));
  ASSIGN_OR_RETURN(c.moe_intermediate, Int(j, "moe_intermediate_size", std::nullopt, 1));
  ASSIGN_OR_RETURN(int shared, Int(j, "n_shared_experts", 0, 0, 4096));
  if (int64_t{shared} * c.moe_intermediate > (1 << 24)) {
    return Bad("n_shared_experts", "times moe_intermediate_size exceeds 16777216");
  }
  c.shared_intermediate = shared * c.moe_intermediate;
  ASSIGN_OR_RETURN(c.first_k_dense_replace, Int(j, "first_k_dense_replace", 0, 0, 1 << 20));
  ASSIGN_OR_RETURN(c.moe_layer_freq, Int(j, "moe_layer_freq", 1, 1, 4096));
  ASSIGN_OR_RETURN(c.routed_scaling_factor, Num(j, "routed_scaling_factor", 1.0));
  if (!FitsF32(c.routed_scaling_factor)) return Bad("routed_scaling_factor", "not finite in f32");
  c.norm_topk_prob = Bool(j, "norm_topk_prob", v3);
  auto text = [&](const char* key, const char* fallback) {
    auto f = j.find(key);
    return f != j.end() && f->is_string() ? f->get<std::string>() : std::string(fallback);
  };
  const std::string scoring = text("scoring_func", v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax") {
    c.scoring = Scoring::kSoftmax;
  } else if (scoring == "sigmoid") {
    c.scoring = Scoring::kSigmoid;
  } else {
    return Bad("scoring_func", "unsupported \"" + scoring + "\" (softmax or sigmoid)");
  }
  const std::string method = text("topk_method", v3 ? "noaux_tc" : "greedy");
  if (method == "greedy" || method == "gready") {  // some V2 revisions spell it "gready"
    c.topk_method = TopkMethod::kGreedy;
  } else if (method == "group_limited_greedy") {
    c.topk_method = TopkMethod::kGroupLimitedGreedy;
  } else if (method == "noaux_tc") {
    c.topk_method = TopkMethod::kNoauxTc;
  } else {
    return Bad("topk_method", "unsupported \"" + method + "\" (greedy, group_limited_greedy, noaux_tc)");
  }
  ASSIGN_OR_RETURN(c.n_group, Int(j, "n_group", 1, 1, 4096));
  ASSIGN_OR_RETURN(c.topk_group, Int(j, "topk_group", 1, 1, 4096));
  if (c.topk_method != TopkMethod::kGreedy) {
    if (c.experts % c.n_group != 0) return Bad("n_group", "must divide n_routed_experts");
    if (c.topk_group > c.n_group) return Bad("topk_group", "exceeds n_group");
    if (c.topk_method == TopkMethod::kNoauxTc && c.experts / c.n_group < 2) {
      return Bad("n_group", "noaux_tc scores a group by its top 2: groups need 2 experts");
    }
  }
  return OkStatus();
}

}  // namespace

bool ModelConfig::IsMoeLayer(int layer) const {
  if (experts == 0) return false;
  if (IsDeepseek()) return layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) {
    return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

std::string ModelConfig::MoePrefix(int layer) const {
  return "model.layers." + std::to_string(layer) +
         (arch == Arch::kMixtral ? ".block_sparse_moe." : ".mlp.");
}

std::string ModelConfig::RouterTensor(int layer) const { return MoePrefix(layer) + "gate.weight"; }

std::string ModelConfig::ExpertTensor(int layer, int expert, int which) const {
  static constexpr const char* kMixtral[] = {"w1", "w3", "w2"};
  static constexpr const char* kOthers[] = {"gate_proj", "up_proj", "down_proj"};
  return MoePrefix(layer) + "experts." + std::to_string(expert) + "." +
         (arch == Arch::kMixtral ? kMixtral[which] : kOthers[which]) + ".weight";
}

Result<ModelConfig> ParseModelConfig(std::string_view config_json,
                                     std::string_view generation_config_json) {
  if (config_json.size() > (1 << 20)) return Bad("(file)", "larger than 1 MiB");
  json j = (JsonDepthWithin(config_json) ? json::parse(config_json, nullptr, false) : json(json::value_t::discarded));
  if (j.is_discarded() || !j.is_object()) return Bad("(file)", "not a JSON object");
  ModelConfig c;
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) return Bad("model_type", "missing");
  c.model_type = mt->get<std::string>();
  static const std::pair<const char*, Arch> kArchs[] = {
      {"mixtral", Arch::kMixtral}, {"qwen2_moe", Arch::kQwen2Moe}, {"qwen3_moe", Arch::kQwen3Moe},
      {"olmoe", Arch::kOlmoe},     {"llama", Arch::kLlama},        {"qwen2", Arch::kQwen2},
      {"qwen3", Arch::kQwen3},     {"deepseek_v2", Arch::kDeepseekV2}, {"deepseek_v3", Arch::kDeepseekV3}};
  bool known = false;
  for (const auto& [name, arch] : kArchs) {
    if (c.model_type == name) {
      c.arch = arch;
      known = true;
    }
  }
  if (!known) {
    return Bad("model_type", "unsupported architecture \"" + c.model_type +
                                 "\" (supported: mixtral, qwen2_moe, qwen3_moe, olmoe, llama, qwen2, qwen3, deepseek_v2, deepseek_v3)");
  }
  if (auto act = j.find("hidden_act"); act != j.end() && !(act->is_string() && *act == "silu")) {
    return Bad("hidden_act", "only silu is supported");
  }
  RETURN_IF_ERROR(ParseQuantization(j, c));
  ASSIGN_OR_RETURN(c.hidden, Int(j, "hidden_size", std::nullopt, 1));
  ASSIGN_OR_RETURN(c.layers, Int(j, "num_hidden_layers", std::nullopt, 1, 4096));
  ASSIGN_OR_RETURN(c.heads, Int(j, "num_attention_heads", std::nullopt, 1, 4096));
  ASSIGN_OR_RETURN(c.kv_heads, Int(j, "num_key_value_heads", c.heads, 1, 4096));
  if (c.heads % c.kv_heads != 0) return Bad("num_key_value_heads", "must divide num_attention_heads");
  ASSIGN_OR_RETURN(c.head_dim, Int(j, "head_dim", c.hidden / c.heads, 2, 4096));
  if (c.head_dim < 2) return Bad("head_dim", "must be at least 2 (hidden_size / num_attention_heads when absent)");
  if (c.head_dim % 2 != 0) return Bad("head_dim", "must be even");
  ASSIGN_OR_RETURN(c.vocab, Int(j, "vocab_size", std::nullopt, 1, 1 << 22));
  ASSIGN_OR_RETURN(c.intermediate, Int(j, "intermediate_size", std::nullopt, 1));
  ASSIGN_OR_RETURN(c.rms_eps, Num(j, "rms_norm_eps", 1e-6));
  if (!FitsF32(c.rms_eps)) return Bad("rms_norm_eps", "not finite in f32");
  ASSIGN_OR_RETURN(c.max_position, Int(j, "max_position_embeddings", 4096, 1, 1 << 24));
  c.tie_embeddings = Bool(j, "tie_word_embeddings", false);
  RETURN_IF_ERROR(ParseRope(j, c));
  // Mixtral applies sliding_window when set; the Qwen families only with use_sliding_window and
  // then per layer (max_window_layers), which is not supported.
  if (Bool(j, "use_sliding_window", false)) return Bad("use_sliding_window", "not supported");
  if (auto sw = j.find("sliding_window"); sw != j.end() && !sw->is_null() && c.arch == Arch::kMixtral) {
    ASSIGN_OR_RETURN(c.sliding_window, Int(j, "sliding_window", std::nullopt, 1, 1 << 24));
  }
  switch (c.arch) {
    case Arch::kMixtral: {
      ASSIGN_OR_RETURN(c.experts, Int(j, "num_local_experts", std::nullopt, 1, 4096));
      c.moe_intermediate = c.intermediate;
      c.norm_topk_prob = true;  // Mixtral always renormalises
      break;
    }
    case Arch::kOlmoe: {
      ASSIGN_OR_RETURN(c.experts, Int(j, "num_experts", std::nullopt, 1, 4096));
      c.moe_intermediate = c.intermediate;
      c.norm_topk_prob = Bool(j, "norm_topk_prob", false);
      c.qk_norm = QkNorm::kFull;
      if (auto clip = j.find("clip_qkv"); clip != j.end() && !clip->is_null()) {
        return Bad("clip_qkv", "not supported");
      }
      break;
    }
    case Arch::kQwen2Moe:
    case Arch::kQwen3Moe: {
      ASSIGN_OR_RETURN(c.experts, Int(j, "num_experts", std::nullopt, 0, 4096));
      ASSIGN_OR_RETURN(c.moe_intermediate, Int(j, "moe_intermediate_size", std::nullopt, 1));
      if (c.arch == Arch::kQwen2Moe) {
        ASSIGN_OR_RETURN(c.shared_intermediate, Int(j, "shared_expert_intermediate_size", 0, 0));
      }
      c.norm_topk_prob = Bool(j, "norm_topk_prob", false);
      ASSIGN_OR_RETURN(c.decoder_sparse_step, Int(j, "decoder_sparse_step", 1, 1, 4096));
      if (auto m = j.find("mlp_only_layers"); m != j.end() && !m->is_null()) {
        if (!m->is_array()) return Bad("mlp_only_layers", "not a list");
        for (const json& v : *m) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.layers) {
            return Bad("mlp_only_layers", "not a layer index");
          }
          c.mlp_only_layers.push_back(static_cast<int>(v.get<int64_t>()));
        }
      }
      break;
    }
    case Arch::kDeepseekV2:
    case Arch::kDeepseekV3:
      RETURN_IF_ERROR(ParseDeepseek(j, c));
      break;
    default:
      break;
  }
  if (c.experts > 0) {
    ASSIGN_OR_RETURN(c.top_k, Int(j, "num_experts_per_tok", std::nullopt, 1, c.experts));
  }
  if (c.IsDeepseek() && c.experts > 0 && c.topk_method != TopkMethod::kGreedy &&
      c.topk_group * (c.experts / c.n_group) < c.top_k) {
    return Bad("topk_group", "its groups hold fewer than num_experts_per_tok experts");
  }
  c.qkv_bias = !c.IsDeepseek() && (c.arch == Arch::kQwen2 || c.arch == Arch::kQwen2Moe || Bool(j, "attention_bias", false));
  if (c.arch == Arch::kQwen3 || c.arch == Arch::kQwen3Moe) {
    c.qk_norm = QkNorm::kPerHead;
    c.qkv_bias = Bool(j, "attention_bias", false);
  }
  if (auto b = j.find("bos_token_id"); b != j.end() && b->is_number_integer()) {
    c.bos_id = static_cast<int>(b->get<int64_t>());
  }
  for (double f : RopeInvFreq(c, c.max_position)) {  // e.g. YaRN's beta_fast 0 gives NaN
    if (!FitsF32(f)) return Bad("rope_scaling", "gives RoPE frequencies that are not finite in f32");
  }
  RETURN_IF_ERROR(AddIds(j, "eos_token_id", c.eos_ids));
  if (!generation_config_json.empty()) {
    json g = (JsonDepthWithin(generation_config_json) ? json::parse(generation_config_json, nullptr, false) : json(json::value_t::discarded));
    if (g.is_discarded() || !g.is_object()) {
      return InvalidArgumentError("generation_config.json: not a JSON object");
    }
    RETURN_IF_ERROR(AddIds(g, "eos_token_id", c.eos_ids));
  }
  return c;
}

bool IsSupportedConfig(std::string_view config_json) { return ParseModelConfig(config_json, "").ok(); }

std::vector<double> RopeInvFreq(const ModelConfig& c, int seq_len) {
  const int dim = c.head_dim;
  const RopeConfig& r = c.rope;
  double base = r.theta;
  if (r.type == RopeType::kDynamic && seq_len > c.max_position) {
    base = r.theta * std::pow(r.factor * seq_len / c.max_position - (r.factor - 1),
                              static_cast<double>(dim) / (dim - 2));
  }
  std::vector<double> inv(dim / 2);
  for (int i = 0; i < dim / 2; ++i) inv[i] = 1.0 / std::pow(base, 2.0 * i / dim);
  switch (r.type) {
    case RopeType::kLinear:
      for (double& f : inv) f /= r.factor;
      break;
    case RopeType::kLlama3: {
      const double old_ctx = r.original_max_position;
      const double low_wavelen = old_ctx / r.low_freq_factor;
      const double high_wavelen = old_ctx / r.high_freq_factor;
      for (double& f : inv) {
        const double wavelen = 2 * M_PI / f;
        if (wavelen > low_wavelen) {
          f /= r.factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
          f = (1 - smooth) * f / r.factor + smooth * f;
        }
      }
      break;
    }
    case RopeType::kYarn: {
      auto correction_dim = [&](double rotations) {
        return dim * std::log(r.original_max_position / (rotations * 2 * M_PI)) / (2 * std::log(base));
      };
      double low = correction_dim(r.beta_fast), high = correction_dim(r.beta_slow);
      if (r.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;
      for (int i = 0; i < dim / 2; ++i) {
        const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
        const double extrapolation = 1 - ramp;  // inv_freq_extrapolation_factor
        const double interp = inv[i] / r.factor;
        inv[i] = interp * (1 - extrapolation) + inv[i] * extrapolation;
      }
      break;
    }
    default:
      break;
  }
  return inv;
}

}  // namespace hubnode::runtime

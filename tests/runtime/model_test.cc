// Config parsing, RoPE frequencies, routing, sampling and stop strings.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/config.h"
#include "runtime/model.h"
#include "tests/runtime/memory_source.h"
#include "runtime/sampler.h"
#include "runtime/weights.h"

namespace hubnode::runtime {
namespace {

using nlohmann::json;

json BaseConfig() {
  return {{"model_type", "olmoe"}, {"hidden_size", 64}, {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"num_key_value_heads", 2}, {"vocab_size", 100}, {"intermediate_size", 32}, {"num_experts", 4},
          {"num_experts_per_tok", 2}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
          {"max_position_embeddings", 2048}, {"hidden_act", "silu"}, {"eos_token_id", 7}};
}

TEST(Config, ParsesFamiliesRules) {
  auto c = ParseModelConfig(BaseConfig().dump(), R"({"eos_token_id": [7, 9]})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kOlmoe);
  EXPECT_EQ(c->qk_norm, QkNorm::kFull);
  EXPECT_FALSE(c->norm_topk_prob);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->moe_intermediate, 32);
  EXPECT_EQ(c->eos_ids, (std::vector<int>{7, 9}));
  EXPECT_EQ(c->ExpertTensor(1, 3, 2), "model.layers.1.mlp.experts.3.down_proj.weight");

  json m = BaseConfig();
  m["model_type"] = "mixtral";
  m.erase("num_experts");
  m["num_local_experts"] = 4;
  c = ParseModelConfig(m.dump(), "");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->norm_topk_prob);  // Mixtral always renormalises
  EXPECT_EQ(c->ExpertTensor(0, 1, 0), "model.layers.0.block_sparse_moe.experts.1.w1.weight");

  json q = BaseConfig();
  q["model_type"] = "qwen2_moe";
  q["moe_intermediate_size"] = 16;
  q["shared_expert_intermediate_size"] = 48;
  q["mlp_only_layers"] = {1};
  c = ParseModelConfig(q.dump(), "");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->IsMoeLayer(0));
  EXPECT_FALSE(c->IsMoeLayer(1));
}

TEST(Config, RefusesUnsupportedAndMalformed) {
  auto bad = [](const std::function<void(json&)>& edit, const std::string& names) {
    json j = BaseConfig();
    edit(j);
    auto c = ParseModelConfig(j.dump(), "");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find(names), std::string::npos) << c.status().message();
  };
  bad([](json& j) { j["model_type"] = "deepseek_v4"; }, "model_type");
  bad([](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act");
  bad([](json& j) { j["quantization_config"] = json::object(); }, "quantization_config");
  bad([](json& j) { j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}}; }, "rope_type");
  bad([](json& j) { j["num_key_value_heads"] = 3; }, "num_key_value_heads");
  bad([](json& j) { j["hidden_size"] = "64"; }, "hidden_size");
  bad([](json& j) { j["num_experts_per_tok"] = 9; }, "num_experts_per_tok");
  bad([](json& j) { j.erase("vocab_size"); }, "vocab_size");
  bad([](json& j) { j["clip_qkv"] = 8.0; }, "clip_qkv");
  // No head_dim and hidden_size < num_attention_heads: head_dim 0 slipped past its minimum of 2
  // (the fallback was not range-checked) and q_proj was then expected as a vector.
  bad([](json& j) { j["hidden_size"] = 2; }, "head_dim");
  // Converted to f32 by the model: a double beyond f32's range made that conversion undefined.
  bad([](json& j) { j["rms_norm_eps"] = 1e300; }, "rms_norm_eps");
  // YaRN values that are finite in JSON but not in what the runtime computes from them: an
  // attention factor beyond f32 (cos and sin scaled by inf), beta_fast 0 (NaN frequencies).
  bad([](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"attention_factor", 1e300}}; },
      "attention_factor");
  bad([](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"beta_fast", 0}}; }, "rope_scaling");
  bad([](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"beta_slow", -1}}; }, "rope_scaling");
  EXPECT_FALSE(ParseModelConfig("{not json", "").ok());
  EXPECT_FALSE(ParseModelConfig("[]", "").ok());
  EXPECT_FALSE(ParseModelConfig(BaseConfig().dump(), "nope").ok());
}

TEST(Rope, ScalingVariants) {
  json j = BaseConfig();
  auto base = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(base.ok());
  const std::vector<double> d = RopeInvFreq(*base, 10);
  EXPECT_DOUBLE_EQ(d[0], 1.0);
  EXPECT_NEAR(d[1], std::pow(10000.0, -2.0 / 16), 1e-15);

  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  auto lin = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(lin.ok());
  EXPECT_DOUBLE_EQ(RopeInvFreq(*lin, 10)[3], d[3] / 4);

  j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  auto dyn = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(dyn.ok());
  EXPECT_EQ(RopeInvFreq(*dyn, 2048), d);           // within the trained length: unchanged
  EXPECT_LT(RopeInvFreq(*dyn, 8192)[1], d[1]);    // beyond: a larger base

  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
  auto l3 = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(l3.ok());
  const std::vector<double> f = RopeInvFreq(*l3, 10);
  EXPECT_DOUBLE_EQ(f[0], d[0]);          // high frequency: kept
  EXPECT_DOUBLE_EQ(f[7], d[7] / 8);      // low frequency: divided by the factor

  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 512}};
  auto y = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(y.ok());
  EXPECT_NEAR(y->rope.attention_factor, 0.1 * std::log(4.0) + 1, 1e-12);
  const std::vector<double> yf = RopeInvFreq(*y, 10);
  EXPECT_DOUBLE_EQ(yf[0], d[0]);
  EXPECT_NEAR(yf[7], d[7] / 4, 1e-12);
}

TEST(Route, SoftmaxTopKAndRenormalisation) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  auto r = Route(logits, 2, false);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].first, 1);  // a tie goes to the lower index
  EXPECT_EQ(r[1].first, 3);
  double z = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(r[0].second, std::exp(3.0) / z, 1e-6);
  auto n = Route(logits, 2, true);
  EXPECT_NEAR(n[0].second + n[1].second, 1.0, 1e-6);
}

// DeepSeek-V3's config.json (deepseek-ai/DeepSeek-V3), its fp8 quantization_config included.
json DeepseekV3Config() {
  return {{"model_type", "deepseek_v3"}, {"hidden_size", 7168}, {"num_hidden_layers", 61},
          {"num_attention_heads", 128}, {"num_key_value_heads", 128}, {"vocab_size", 129280},
          {"intermediate_size", 18432}, {"moe_intermediate_size", 2048}, {"n_routed_experts", 256},
          {"n_shared_experts", 1}, {"num_experts_per_tok", 8}, {"first_k_dense_replace", 3},
          {"moe_layer_freq", 1}, {"n_group", 8}, {"topk_group", 4}, {"topk_method", "noaux_tc"},
          {"scoring_func", "sigmoid"}, {"norm_topk_prob", true}, {"routed_scaling_factor", 2.5},
          {"q_lora_rank", 1536}, {"kv_lora_rank", 512}, {"qk_nope_head_dim", 128}, {"qk_rope_head_dim", 64},
          {"v_head_dim", 128}, {"hidden_act", "silu"}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000},
          {"max_position_embeddings", 163840},
          {"rope_scaling", {{"beta_fast", 32}, {"beta_slow", 1}, {"factor", 40}, {"mscale", 1.0},
                            {"mscale_all_dim", 1.0}, {"original_max_position_embeddings", 4096}, {"type", "yarn"}}},
          {"quantization_config", {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"},
                                   {"weight_block_size", {128, 128}}}}};
}

TEST(Config, Deepseek) {
  auto c = ParseModelConfig(DeepseekV3Config().dump(), "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kDeepseekV3);
  EXPECT_TRUE(c->fp8);
  EXPECT_TRUE(c->mla);
  EXPECT_EQ(c->head_dim, 64);  // RoPE covers the rope part
  EXPECT_EQ(c->shared_intermediate, 2048);
  EXPECT_EQ(c->scoring, Scoring::kSigmoid);
  EXPECT_EQ(c->topk_method, TopkMethod::kNoauxTc);
  EXPECT_FALSE(c->IsMoeLayer(2));
  EXPECT_TRUE(c->IsMoeLayer(3));
  // softmax_scale = 192^-0.5 · (0.1 · 1 · ln 40 + 1)^2; cos/sin scaled by mscale / mscale_all_dim = 1.
  const double m = 0.1 * std::log(40.0) + 1.0;
  EXPECT_NEAR(c->mla_dims.softmax_scale, m * m / std::sqrt(192.0), 1e-12);
  EXPECT_NEAR(c->rope.attention_factor, 1.0, 1e-12);
  EXPECT_EQ(c->ExpertTensor(3, 255, 1), "model.layers.3.mlp.experts.255.up_proj.weight");

  json v2 = DeepseekV3Config();  // DeepSeek-V2's routing and YaRN (deepseek-ai/DeepSeek-V2)
  v2["model_type"] = "deepseek_v2";
  v2.erase("quantization_config");
  v2.erase("scoring_func");
  v2.erase("norm_topk_prob");
  v2["topk_method"] = "gready";  // as some revisions spell it
  v2["q_lora_rank"] = nullptr;
  v2["moe_layer_freq"] = 2;
  v2["rope_scaling"]["mscale"] = 0.707;
  v2["rope_scaling"].erase("mscale_all_dim");
  c = ParseModelConfig(v2.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->scoring, Scoring::kSoftmax);
  EXPECT_EQ(c->topk_method, TopkMethod::kGreedy);
  EXPECT_FALSE(c->norm_topk_prob);
  EXPECT_EQ(c->mla_dims.q_lora_rank, 0);
  EXPECT_FALSE(c->IsMoeLayer(3));  // moe_layer_freq 2
  EXPECT_TRUE(c->IsMoeLayer(4));
  EXPECT_NEAR(c->mla_dims.softmax_scale, 1 / std::sqrt(192.0), 1e-12);                // no mscale_all_dim
  EXPECT_NEAR(c->rope.attention_factor, 0.1 * 0.707 * std::log(40.0) + 1.0, 1e-12);  // mscale / 1

  auto bad = [](const std::function<void(json&)>& edit, const std::string& names) {
    json j = DeepseekV3Config();
    edit(j);
    auto r = ParseModelConfig(j.dump(), "");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(names), std::string::npos) << r.status().message();
  };
  bad([](json& j) { j["quantization_config"]["quant_method"] = "gptq"; }, "quant_method");
  bad([](json& j) { j["quantization_config"]["weight_block_size"] = {64, 64}; }, "weight_block_size");
  bad([](json& j) { j["quantization_config"]["fmt"] = "e5m2"; }, "fmt");
  bad([](json& j) { j["topk_method"] = "sinkhorn"; }, "topk_method");
  bad([](json& j) { j["scoring_func"] = "relu"; }, "scoring_func");
  bad([](json& j) { j["n_group"] = 7; }, "n_group");
  bad([](json& j) { j["topk_group"] = 9; }, "topk_group");
  bad([](json& j) { j["topk_group"] = 1; j["num_experts_per_tok"] = 33; }, "topk_group");
  bad([](json& j) { j.erase("kv_lora_rank"); }, "kv_lora_rank");
  bad([](json& j) { j["qk_rope_head_dim"] = 63; }, "qk_rope_head_dim");
  bad([](json& j) { j["qk_nope_head_dim"] = 0; }, "qk_nope_head_dim");
  bad([](json& j) { j["attention_bias"] = true; }, "attention_bias");
  // Hostile sizes: 4096 shared experts of 2^24 wrapped an int to 0 (shared experts silently gone);
  // 4096 heads of 2^17 query values had the loader build a 4 GiB row permutation per layer before
  // any tensor was looked at; a huge mscale_all_dim made the softmax scale infinite.
  bad([](json& j) { j["n_shared_experts"] = 4096; j["moe_intermediate_size"] = 1 << 24; }, "n_shared_experts");
  bad([](json& j) { j["num_attention_heads"] = 4096; j["num_key_value_heads"] = 4096; j["hidden_size"] = 8192;
                    j["qk_nope_head_dim"] = 65536; j["qk_rope_head_dim"] = 65536; }, "num_attention_heads");
  bad([](json& j) { j["num_attention_heads"] = 4096; j["num_key_value_heads"] = 4096; j["hidden_size"] = 8192;
                    j["v_head_dim"] = 65536; }, "num_attention_heads");
  bad([](json& j) { j["rope_scaling"]["mscale_all_dim"] = 1e308; }, "mscale_all_dim");
  bad([](json& j) { j["rope_scaling"]["mscale_all_dim"] = 1e150; }, "mscale_all_dim");  // finite, not in f32
  bad([](json& j) { j["routed_scaling_factor"] = 1e300; }, "routed_scaling_factor");  // routing weights in f32
  bad([](json& j) { j["rope_scaling"]["mscale"] = 1e300; j["rope_scaling"]["mscale_all_dim"] = 1e-300; }, "mscale");
}

TEST(Route, DeepseekGroupsBiasAndScaling) {
  json j = DeepseekV3Config();
  j["n_routed_experts"] = 8;
  j["n_group"] = 4;
  j["topk_group"] = 2;
  j["num_experts_per_tok"] = 3;
  auto c = ParseModelConfig(j.dump(), "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto sig = [](double p) { return static_cast<float>(std::log(p / (1 - p))); };  // sigmoid⁻¹
  // Scores per expert (groups {0,1} {2,3} {4,5} {6,7}).
  const std::vector<double> p = {0.9, 0.1, 0.6, 0.6, 0.8, 0.7, 0.2, 0.2};
  std::vector<float> logits;
  for (double v : p) logits.push_back(sig(v));
  // noaux_tc: group scores (best two) 1.0, 1.2, 1.5, 0.4 → groups 2 and 1; experts 4, 5, 2 (2 before 3).
  auto r = RouteDeepseek(*c, logits, std::vector<float>(8, 0.0f));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, 4);
  EXPECT_EQ(r[1].first, 5);
  EXPECT_EQ(r[2].first, 2);
  EXPECT_NEAR(r[0].second, 0.8 / 2.1 * 2.5, 1e-5);  // normalised, times routed_scaling_factor
  // The bias picks but never weighs: +0.9 on expert 6 lifts group 3 to 1.1 + 0.2 = 1.3, past
  // group 1's 1.2, and expert 6's choice 1.1 to first place; its weight stays its score 0.2.
  std::vector<float> bias(8, 0.0f);
  bias[6] = 0.9f;
  r = RouteDeepseek(*c, logits, bias);
  EXPECT_EQ(r[0].first, 6);
  EXPECT_EQ(r[1].first, 4);
  EXPECT_EQ(r[2].first, 5);
  EXPECT_NEAR(r[0].second, 0.2 / (0.2 + 0.8 + 0.7) * 2.5, 1e-5);  // the unbiased score
  // Greedy ignores the groups: 0, 4, 5.
  c->topk_method = TopkMethod::kGreedy;
  r = RouteDeepseek(*c, logits, {});
  EXPECT_EQ(r[0].first, 0);
  EXPECT_EQ(r[1].first, 4);
  EXPECT_EQ(r[2].first, 5);
  // V2: softmax scores, group score = the best expert (groups 0 and 2 here), and the scaling
  // factor only without normalisation.
  c->arch = Arch::kDeepseekV2;
  c->scoring = Scoring::kSoftmax;
  c->topk_method = TopkMethod::kGroupLimitedGreedy;
  c->norm_topk_prob = false;
  c->routed_scaling_factor = 16;
  std::vector<float> raw = {2.0f, 0.0f, 1.5f, 1.5f, 1.0f, 1.9f, 0.0f, 0.0f};
  double z = 0;
  for (float v : raw) z += std::exp(v);
  r = RouteDeepseek(*c, raw, {});
  EXPECT_EQ(r[0].first, 0);
  EXPECT_EQ(r[1].first, 5);
  EXPECT_EQ(r[2].first, 4);  // group 1's 1.5s are out
  EXPECT_NEAR(r[0].second, std::exp(2.0) / z * 16, 1e-4);
  c->norm_topk_prob = true;
  r = RouteDeepseek(*c, raw, {});
  EXPECT_NEAR(r[0].second, std::exp(2.0) / (std::exp(2.0) + std::exp(1.9) + std::exp(1.0)), 1e-5);
}

// KV bytes per token of DeepSeek-V3 (bench/RESULTS.md): the compressed cache as allocated, against
// the same model's keys and values decompressed per head.
TEST(KvCache, MlaBytesPerToken) {
  auto c = ParseModelConfig(DeepseekV3Config().dump(), "");
  ASSERT_TRUE(c.ok());
  auto backend = MakeCpuBackend(1);
  constexpr int kTokens = 64;
  auto cache = KvCache::Create(*backend, *c, kTokens);
  ASSERT_TRUE(cache.ok());
  const double compressed = static_cast<double>((*cache)->bytes()) / kTokens;
  const double full = KvCache::UncompressedFloatsPerToken(*c) * sizeof(float);
  EXPECT_EQ(compressed, 61.0 * (512 + 64) * 4);
  EXPECT_EQ(full, 61.0 * 128 * (192 + 128) * 4);
  std::printf("DeepSeek-V3 KV cache per token: MLA %.0f bytes, decompressed %.0f bytes (%.1fx)\n",
              compressed, full, full / compressed);
}

// A checkpoint in memory: F8_E4M3 weights (code 0x38 = 1.0) with F32 scales, and the rest f32.
class Fp8Source final : public testing::MemorySource {
 public:
  void Add(const std::string& name, std::vector<int64_t> shape, DType dtype, float fill = 1.0f) {
    TensorDesc d{name, dtype, shape};
    std::vector<uint8_t> bytes(d.bytes());
    if (dtype == DType::kF8E4M3) std::fill(bytes.begin(), bytes.end(), uint8_t{0x38});
    if (dtype == DType::kF32) {
      for (size_t i = 0; i < bytes.size() / 4; ++i) std::memcpy(bytes.data() + 4 * i, &fill, 4);
    }
    Put(name, dtype, std::move(shape), std::move(bytes));
  }
  // An F8_E4M3 Linear weight and its weight_scale_inv (one scale per 128 x 128 block).
  void AddFp8(const std::string& name, int64_t rows, int64_t cols, float scale = 0.5f) {
    Add(name, {rows, cols}, DType::kF8E4M3);
    Add(name + "_scale_inv", {(rows + 127) / 128, (cols + 127) / 128}, DType::kF32, scale);
  }
  void SetF32(const std::string& name, const std::vector<float>& values) {
    auto& bytes = Bytes(name);
    ASSERT_EQ(bytes.size(), values.size() * 4);
    std::memcpy(bytes.data(), values.data(), bytes.size());
  }
};

// One dense DeepSeek-V3 layer in FP8, without q-LoRA; qk_nope_head_dim `nope`, v_head_dim `v`,
// kv_lora_rank `kvl`.
std::pair<ModelConfig, Fp8Source> Fp8Deepseek(int nope, int v = 4, int kvl = 4) {
  json j = DeepseekV3Config();
  j["hidden_size"] = 8;
  j["num_hidden_layers"] = 1;
  j["num_attention_heads"] = 2;
  j["num_key_value_heads"] = 2;
  j["vocab_size"] = 16;
  j["intermediate_size"] = 8;
  j["q_lora_rank"] = nullptr;
  j["kv_lora_rank"] = kvl;
  j["qk_nope_head_dim"] = nope;
  j["qk_rope_head_dim"] = 8;
  j["v_head_dim"] = v;
  j["first_k_dense_replace"] = 1;
  auto c = ParseModelConfig(j.dump(), "");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  Fp8Source s;
  const std::string p = "model.layers.0.";
  s.Add("model.embed_tokens.weight", {16, 8}, DType::kBF16);
  s.Add("lm_head.weight", {16, 8}, DType::kBF16);
  s.Add("model.norm.weight", {8}, DType::kBF16);
  s.Add(p + "input_layernorm.weight", {8}, DType::kBF16);
  s.Add(p + "post_attention_layernorm.weight", {8}, DType::kBF16);
  s.Add(p + "self_attn.kv_a_layernorm.weight", {kvl}, DType::kBF16);
  s.AddFp8(p + "self_attn.q_proj.weight", 2 * (nope + 8), 8);
  s.AddFp8(p + "self_attn.kv_a_proj_with_mqa.weight", kvl + 8, 8);
  s.AddFp8(p + "self_attn.kv_b_proj.weight", 2 * (nope + v), kvl, 0.25f);
  s.AddFp8(p + "self_attn.o_proj.weight", 8, 2 * v);
  for (const char* m : {"gate_proj", "up_proj"}) s.AddFp8(p + "mlp." + m + ".weight", 8, 8);
  s.AddFp8(p + "mlp.down_proj.weight", 8, 8);
  return {*c, std::move(s)};
}

TEST(ModelWeights, DeepseekFp8) {
  auto backend = MakeCpuBackend(1);
  const std::string p = "model.layers.0.self_attn.";
  {
    auto [c, s] = Fp8Deepseek(4);
    auto w = ModelWeights::Load(s, *backend, c, *s.ListTensors());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    const LayerWeights& L = (*w)->layers[0];
    EXPECT_EQ(L.q.dtype, DType::kF8E4M3);
    ASSERT_NE(L.q.scales, nullptr);
    EXPECT_EQ(L.q.block_rows, 128);
    EXPECT_EQ(L.q.scales[0], 0.5f);
    // kv_b dequantized (1.0 · 0.25) and held absorbed in f32.
    EXPECT_EQ(L.uk_t.dtype, DType::kF32);
    EXPECT_EQ(L.uk_t.rows, 2 * 4);
    EXPECT_EQ(L.uk_t.cols, 4);
    EXPECT_EQ(static_cast<const float*>(L.uk_t.data)[0], 0.25f);
    EXPECT_EQ(L.uv.rows, 2 * 4);
  }
  {
    // Every head's key and value parts whole 128 x 128 blocks (as V3's): kv_b stays FP8, the key
    // parts' blocks transposed with their scales.
    auto [c, s] = Fp8Deepseek(128, 128, 128);
    s.SetF32(p + "kv_b_proj.weight_scale_inv", {0.1f, 0.2f, 0.3f, 0.4f});  // k0 v0 k1 v1
    auto w = ModelWeights::Load(s, *backend, c, *s.ListTensors());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    const LayerWeights& L = (*w)->layers[0];
    ASSERT_EQ(L.uk_t.dtype, DType::kF8E4M3);
    ASSERT_EQ(L.uv.dtype, DType::kF8E4M3);
    EXPECT_EQ(L.uk_t.rows, 2 * 128);
    EXPECT_EQ(L.uk_t.cols, 128);
    EXPECT_EQ(L.uk_t.scales[0], 0.1f);
    EXPECT_EQ(L.uk_t.scales[1], 0.3f);
    EXPECT_EQ(L.uv.scales[0], 0.2f);
    EXPECT_EQ(L.uv.scales[1], 0.4f);
  }
  auto fails = [&](const std::function<void(Fp8Source&)>& edit, StatusCode code, const std::string& names, int nope = 4) {
    auto [c, s] = Fp8Deepseek(nope);
    edit(s);
    auto w = ModelWeights::Load(s, *backend, c, *s.ListTensors());
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), code) << w.status().ToString();
    EXPECT_NE(w.status().message().find(names), std::string::npos) << w.status().message();
  };
  fails([&](Fp8Source& s) { s.Remove(p + "o_proj.weight_scale_inv"); }, StatusCode::kInvalidArgument,
        "o_proj.weight_scale_inv");
  fails([&](Fp8Source& s) { s.Add(p + "o_proj.weight_scale_inv", {2, 1}, DType::kF32); },
        StatusCode::kInvalidArgument, "o_proj.weight_scale_inv");
  fails([&](Fp8Source& s) { s.Add(p + "o_proj.weight_scale_inv", {1, 1}, DType::kBF16); },
        StatusCode::kInvalidArgument, "not F32");
  fails([&](Fp8Source& s) { s.Add(p + "o_proj.weight_scale_inv", {1, 1}, DType::kF32, NAN); },
        StatusCode::kInvalidArgument, "non-finite");
  fails([&](Fp8Source& s) { s.Add(p + "kv_b_proj.weight_scale_inv", {1, 1}, DType::kF32, INFINITY); },
        StatusCode::kInvalidArgument, "non-finite");
  // nope 124: head 0's rope rows 124..131 straddle two 128-row scale blocks.
  fails([](Fp8Source&) {}, StatusCode::kUnimplemented, "128-row scale block", 124);
}

// A MoE layer's router bias (noaux_tc's e_score_correction_bias) of the wrong length, or holding
// NaN or an infinity, is refused by name: a NaN in the choice scores leaves which experts are
// picked to the sort's whims.
TEST(ModelWeights, DeepseekRouterBias) {
  auto backend = MakeCpuBackend(1);
  const std::string bias = "model.layers.0.mlp.gate.e_score_correction_bias";
  auto load = [&](const std::function<void(Fp8Source&)>& edit) {
    auto [c, s] = Fp8Deepseek(4);
    c.first_k_dense_replace = 0;  // layer 0 routes 2 of 4 experts (noaux_tc, 2 groups)
    c.experts = 4;
    c.top_k = 2;
    c.n_group = 2;
    c.topk_group = 1;
    c.moe_intermediate = 8;
    c.shared_intermediate = 0;
    EXPECT_TRUE(c.IsMoeLayer(0));
    EXPECT_EQ(c.topk_method, TopkMethod::kNoauxTc);
    s.Add("model.layers.0.mlp.gate.weight", {4, 8}, DType::kBF16);
    s.Add(bias, {4}, DType::kF32, 0.5f);
    edit(s);
    return ModelWeights::Load(s, *backend, c, *s.ListTensors());
  };
  {
    auto w = load([](Fp8Source&) {});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_EQ((*w)->layers[0].router_bias, std::vector<float>(4, 0.5f));
  }
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    auto w = load([&](Fp8Source& s) { s.SetF32(bias, {0.5f, bad, 0.5f, 0.5f}); });
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(w.status().message().find(bias), std::string::npos) << w.status().message();
    EXPECT_NE(w.status().message().find("non-finite"), std::string::npos) << w.status().message();
  }
  auto w = load([&](Fp8Source& s) { s.Add(bias, {3}, DType::kF32); });
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find(bias), std::string::npos) << w.status().message();
}

TEST(Sampler, GreedySeededTopKTopP) {
  std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f, 0.0f};
  SamplingParams greedy;
  greedy.temperature = 0;
  EXPECT_EQ(Sampler(greedy).Sample(logits), 1);
  SamplingParams p;
  p.temperature = 1;
  p.seed = 7;
  Sampler a(p), b(p);
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 400; ++i) {
    const int32_t t = a.Sample(logits);
    EXPECT_EQ(t, b.Sample(logits));  // same seed, same tokens
    ++seen[t];
  }
  EXPECT_GT(seen[2], 50);  // sampling, not argmax
  p.top_k = 1;
  EXPECT_EQ(Sampler(p).Sample(logits), 1);
  p.top_k = 2;
  Sampler k2(p);
  for (int i = 0; i < 100; ++i) {
    const int32_t t = k2.Sample(logits);
    EXPECT_TRUE(t == 1 || t == 2);
  }
  p.top_k = 0;
  p.top_p = 0.01f;
  EXPECT_EQ(Sampler(p).Sample(logits), 1);
  EXPECT_NEAR(Sampler::Logprob(logits, 1), 2.0 - std::log(std::exp(0.1) + std::exp(2.0) + std::exp(1.9) + std::exp(-1.0) + 1.0), 1e-5);
  auto top = Sampler::TopLogprobs(logits, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].first, 1);
  EXPECT_EQ(top[1].first, 2);
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_FALSE(ValidateSamplingParams(p).ok());
  p = {};
  p.top_p = 0;
  EXPECT_FALSE(ValidateSamplingParams(p).ok());
  p = {};
  p.max_tokens = 0;
  EXPECT_FALSE(ValidateSamplingParams(p).ok());
  p = {};
  p.top_logprobs = 21;
  EXPECT_FALSE(ValidateSamplingParams(p).ok());
  p = {};
  p.stop = {""};
  EXPECT_FALSE(ValidateSamplingParams(p).ok());
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
}

TEST(StopFilter, HoldsBackPrefixesAndCuts) {
  StopFilter f({"###", "END"});
  EXPECT_EQ(f.Push("hello #"), "hello ");
  EXPECT_EQ(f.Push("# wo"), "## wo");
  EXPECT_EQ(f.Push("rld E"), "rld ");
  EXPECT_EQ(f.Push("NDING"), "");
  EXPECT_TRUE(f.stopped());
  StopFilter g({"ab"});
  EXPECT_EQ(g.Push("xa"), "x");
  EXPECT_EQ(g.Flush(), "a");
  EXPECT_FALSE(g.stopped());
}

}  // namespace
}  // namespace hubnode::runtime

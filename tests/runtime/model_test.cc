// Config parsing, RoPE frequencies, routing, sampling and stop strings.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "runtime/config.h"
#include "runtime/model.h"
#include "runtime/sampler.h"

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
  bad([](json& j) { j["model_type"] = "deepseek_v3"; }, "model_type");
  bad([](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act");
  bad([](json& j) { j["quantization_config"] = json::object(); }, "quantization_config");
  bad([](json& j) { j["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}}; }, "rope_type");
  bad([](json& j) { j["num_key_value_heads"] = 3; }, "num_key_value_heads");
  bad([](json& j) { j["hidden_size"] = "64"; }, "hidden_size");
  bad([](json& j) { j["num_experts_per_tok"] = 9; }, "num_experts_per_tok");
  bad([](json& j) { j.erase("vocab_size"); }, "vocab_size");
  bad([](json& j) { j["clip_qkv"] = 8.0; }, "clip_qkv");
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

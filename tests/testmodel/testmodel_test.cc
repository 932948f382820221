// Tests of Generate(): determinism, the safetensors and index files of every family, config and
// model card contents, weight statistics and option validation.
#include "testmodel/testmodel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/testmodel/safetensors_check.h"

namespace hubnode::testmodel {
namespace {

using nlohmann::json;
using testing::CheckedShard;
using testing::CheckSafetensors;
using testing::DecodeTensor;
using testing::FileNames;
using testing::ReadAll;
using testing::TempDir;

json ReadJson(const std::string& path) { return json::parse(ReadAll(path)); }

// All tensors of a generated directory, checked shard by shard and against the index.
struct Loaded {
  std::map<std::string, testing::CheckedTensor> tensors;
  std::map<std::string, std::string> file_of;
  std::map<std::string, std::string> shard_bytes;
};

Loaded LoadAndCheck(const std::string& dir) {
  Loaded out;
  const json index = ReadJson(dir + "/model.safetensors.index.json");
  std::set<std::string> shard_files;
  for (const auto& [name, file] : index["weight_map"].items()) shard_files.insert(file);
  uint64_t total = 0;
  for (const std::string& file : shard_files) {
    out.shard_bytes[file] = ReadAll(dir + "/" + file);
    CheckedShard shard;
    EXPECT_TRUE(CheckSafetensors(out.shard_bytes[file], &shard)) << file;
    for (const auto& [name, t] : shard.tensors) {
      EXPECT_EQ(index["weight_map"].value(name, ""), file) << name;
      EXPECT_FALSE(out.tensors.count(name)) << "duplicate " << name;
      out.tensors[name] = t;
      out.file_of[name] = file;
      total += t.end - t.begin;
    }
  }
  EXPECT_EQ(out.tensors.size(), index["weight_map"].size());
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  // Every model-*.safetensors in the directory is in the index.
  for (const std::string& name : FileNames(dir)) {
    if (name.ends_with(".safetensors")) {
      EXPECT_TRUE(shard_files.count(name)) << name;
    }
  }
  return out;
}

std::vector<float> Values(const Loaded& m, const std::string& name) {
  return DecodeTensor(m.shard_bytes.at(m.file_of.at(name)), m.tensors.at(name));
}

TEST(GenerateTest, SameSeedGivesIdenticalFilesWhateverTheThreadCount) {
  TempDir tmp;
  Options o;
  o.seed = 7;
  o.threads = 1;
  ASSERT_TRUE(Generate(o, tmp.Sub("a")).ok());
  o.threads = 3;
  auto b = Generate(o, tmp.Sub("b"));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  const std::vector<std::string> names = FileNames(tmp.Sub("a"));
  EXPECT_EQ(names, FileNames(tmp.Sub("b")));
  EXPECT_EQ(names, b->files);
  EXPECT_GE(names.size(), 9u);
  for (const std::string& name : names) {
    EXPECT_EQ(ReadAll(tmp.Sub("a/" + name)), ReadAll(tmp.Sub("b/" + name))) << name;
  }
}

TEST(GenerateTest, DifferentSeedChangesEveryTensorAndNothingElse) {
  TempDir tmp;
  Options o;
  o.seed = 1;
  ASSERT_TRUE(Generate(o, tmp.Sub("a")).ok());
  o.seed = 2;
  ASSERT_TRUE(Generate(o, tmp.Sub("b")).ok());
  const Loaded a = LoadAndCheck(tmp.Sub("a"));
  const Loaded b = LoadAndCheck(tmp.Sub("b"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    const auto& u = b.tensors.at(name);
    ASSERT_EQ(t.begin, u.begin) << name;  // same layout
    EXPECT_NE(a.shard_bytes.at(a.file_of.at(name)).substr(t.begin, t.end - t.begin),
              b.shard_bytes.at(b.file_of.at(name)).substr(u.begin, u.end - u.begin))
        << name;
  }
  for (const char* file : {"config.json", "tokenizer.json", "tokenizer_config.json",
                           "generation_config.json", "model.safetensors.index.json"}) {
    EXPECT_EQ(ReadAll(tmp.Sub(std::string("a/") + file)),
              ReadAll(tmp.Sub(std::string("b/") + file)))
        << file;
  }
}

struct FamilyCase {
  Family family;
  size_t tensor_count;                                   // for 2 layers, 4 experts
  std::map<std::string, std::vector<int64_t>> expected;  // name -> shape
  std::vector<std::string> absent;
};

// hidden 64, 4 heads (head_dim 16), 2 kv heads, 4 experts of width 32, dense width 96, vocab V.
std::vector<FamilyCase> FamilyCases() {
  const std::string l0 = "model.layers.0.";
  const std::string l1 = "model.layers.1.";
  return {
      {Family::kMixtral,
       41,
       {{l0 + "block_sparse_moe.experts.3.w2.weight", {64, 32}},
        {l1 + "block_sparse_moe.experts.0.w1.weight", {32, 64}},
        {l1 + "block_sparse_moe.experts.2.w3.weight", {32, 64}},
        {l0 + "block_sparse_moe.gate.weight", {4, 64}},
        {l0 + "self_attn.k_proj.weight", {32, 64}}},
       {l0 + "mlp.gate.weight", l0 + "self_attn.q_proj.bias"}},
      {Family::kQwen2Moe,
       55,
       {{l0 + "mlp.shared_expert_gate.weight", {1, 64}},
        {l0 + "mlp.shared_expert.down_proj.weight", {64, 96}},
        {l1 + "mlp.experts.3.up_proj.weight", {32, 64}},
        {l0 + "mlp.gate.weight", {4, 64}},
        {l0 + "self_attn.q_proj.bias", {64}},
        {l0 + "self_attn.v_proj.bias", {32}}},
       {l0 + "self_attn.q_norm.weight"}},
      {Family::kQwen3Moe,
       45,
       {{l0 + "self_attn.q_norm.weight", {16}},
        {l0 + "self_attn.k_norm.weight", {16}},
        {l1 + "mlp.experts.3.down_proj.weight", {64, 32}}},
       {l0 + "mlp.shared_expert_gate.weight", l0 + "self_attn.q_proj.bias"}},
      {Family::kOlmoe,
       45,
       {{l0 + "self_attn.q_norm.weight", {64}},
        {l0 + "self_attn.k_norm.weight", {32}},
        {l1 + "mlp.experts.3.gate_proj.weight", {32, 64}}},
       {l0 + "mlp.shared_expert_gate.weight"}},
      {Family::kLlama,
       21,
       {{l0 + "mlp.gate_proj.weight", {96, 64}}, {l1 + "self_attn.o_proj.weight", {64, 64}}},
       {l0 + "mlp.gate.weight", l0 + "self_attn.q_norm.weight"}},
      {Family::kQwen2,
       27,
       {{l0 + "self_attn.k_proj.bias", {32}}, {l1 + "mlp.up_proj.weight", {96, 64}}},
       {l0 + "mlp.gate.weight"}},
      {Family::kQwen3,
       25,
       {{l0 + "self_attn.q_norm.weight", {16}}, {l1 + "mlp.down_proj.weight", {64, 96}}},
       {l0 + "self_attn.q_proj.bias"}},
  };
}

TEST(GenerateTest, EveryFamilyHasTheRealTensorLayoutAndConfig) {
  for (const FamilyCase& c : FamilyCases()) {
    SCOPED_TRACE(std::string(FamilyName(c.family)));
    TempDir tmp;
    Options o;
    o.family = c.family;
    o.experts = 4;
    o.top_k = 2;
    o.moe_intermediate = 32;
    if (c.family != Family::kMixtral && c.family != Family::kOlmoe) o.intermediate = 96;
    auto summary = Generate(o, tmp.path());
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    const Loaded m = LoadAndCheck(tmp.path());
    EXPECT_EQ(m.tensors.size(), c.tensor_count);
    for (const auto& [name, shape] : c.expected) {
      ASSERT_TRUE(m.tensors.count(name)) << name;
      EXPECT_EQ(m.tensors.at(name).shape, shape) << name;
      EXPECT_EQ(m.tensors.at(name).dtype, "BF16");
    }
    for (const std::string& name : c.absent) EXPECT_FALSE(m.tensors.count(name)) << name;

    const json config = ReadJson(tmp.Sub("config.json"));
    EXPECT_EQ(config["model_type"], FamilyName(c.family));
    EXPECT_EQ(config["hidden_size"], 64);
    EXPECT_EQ(config["num_hidden_layers"], 2);
    EXPECT_EQ(config["num_attention_heads"], 4);
    EXPECT_EQ(config["num_key_value_heads"], 2);
    EXPECT_EQ(config["torch_dtype"], "bfloat16");
    EXPECT_EQ(config["tie_word_embeddings"], false);
    const int vocab = config["vocab_size"];
    EXPECT_EQ(vocab % 64, 0);
    EXPECT_EQ(vocab, summary->vocab_size);
    EXPECT_EQ(m.tensors.at("model.embed_tokens.weight").shape, (std::vector<int64_t>{vocab, 64}));
    EXPECT_EQ(m.tensors.at("lm_head.weight").shape, (std::vector<int64_t>{vocab, 64}));
    EXPECT_EQ(m.tensors.at("model.norm.weight").shape, (std::vector<int64_t>{64}));
    uint64_t params = 0;
    for (const auto& [name, t] : m.tensors) params += (t.end - t.begin) / 2;
    EXPECT_EQ(summary->parameters, params);
    if (IsMoe(c.family)) {
      EXPECT_EQ(config[c.family == Family::kMixtral ? "num_local_experts" : "num_experts"], 4);
      EXPECT_EQ(config["num_experts_per_tok"], 2);
    } else {
      EXPECT_FALSE(config.contains("num_experts"));
    }
    switch (c.family) {
      case Family::kQwen2Moe:
        EXPECT_EQ(config["shared_expert_intermediate_size"], 96);
        EXPECT_EQ(config["moe_intermediate_size"], 32);
        EXPECT_EQ(config["decoder_sparse_step"], 1);
        EXPECT_EQ(config["norm_topk_prob"], false);
        break;
      case Family::kQwen3Moe:
        EXPECT_EQ(config["head_dim"], 16);
        EXPECT_EQ(config["norm_topk_prob"], true);
        EXPECT_EQ(config["mlp_only_layers"], json::array());
        break;
      case Family::kMixtral:
      case Family::kOlmoe:
        EXPECT_EQ(config["intermediate_size"], 32);
        break;
      default:
        EXPECT_EQ(config["intermediate_size"], 96);
        break;
    }
    const json gen = ReadJson(tmp.Sub("generation_config.json"));
    EXPECT_TRUE(gen.contains("eos_token_id"));
  }
}

TEST(GenerateTest, ShardsAreBalancedAndKeepLayersTogether) {
  TempDir tmp;
  Options o;
  o.layers = 8;
  o.shards = 4;
  auto s = Generate(o, tmp.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->shards, 4);
  const Loaded m = LoadAndCheck(tmp.path());
  ASSERT_EQ(m.shard_bytes.size(), 4u);
  int k = 1;
  const double mean = static_cast<double>(s->tensor_bytes) / 4;
  for (const auto& [file, bytes] : m.shard_bytes) {
    char expect[64];
    std::snprintf(expect, sizeof(expect), "model-%05d-of-00004.safetensors", k++);
    EXPECT_EQ(file, expect);
    EXPECT_GT(bytes.size(), 0.6 * mean) << file;
    EXPECT_LT(bytes.size(), 1.4 * mean) << file;
  }
  std::map<std::string, std::set<std::string>> shards_of_layer;
  for (const auto& [name, file] : m.file_of) {
    if (name.starts_with("model.layers.")) {
      shards_of_layer[name.substr(0, name.find('.', 13))].insert(file);
    }
  }
  EXPECT_EQ(shards_of_layer.size(), 8u);
  for (const auto& [layer, files] : shards_of_layer) EXPECT_LE(files.size(), 2u) << layer;
  EXPECT_EQ(m.file_of.at("model.embed_tokens.weight"), "model-00001-of-00004.safetensors");
  EXPECT_EQ(m.file_of.at("lm_head.weight"), "model-00004-of-00004.safetensors");
}

TEST(GenerateTest, OneShardStillWritesAnIndex) {
  TempDir tmp;
  Options o;
  o.shards = 1;
  ASSERT_TRUE(Generate(o, tmp.path()).ok());
  const Loaded m = LoadAndCheck(tmp.path());
  ASSERT_EQ(m.shard_bytes.size(), 1u);
  EXPECT_EQ(m.shard_bytes.begin()->first, "model-00001-of-00001.safetensors");
}

// The small preset (~15 MB) once: its size, and bf16 values with the promised distribution.
TEST(GenerateTest, SmallPresetWeightsAreNormalWithStd002) {
  TempDir tmp;
  Options o;
  o.size = "small";
  auto s = Generate(o, tmp.path());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_GT(s->total_bytes, 10u << 20);
  EXPECT_LT(s->total_bytes, 30u << 20);
  const Loaded m = LoadAndCheck(tmp.path());
  const std::vector<float> v = Values(m, "model.embed_tokens.weight");
  ASSERT_GT(v.size(), 100000u);
  double sum = 0, sum2 = 0;
  size_t within_1sd = 0;
  for (float x : v) {
    sum += x;
    sum2 += double{x} * x;
    if (std::abs(x) < 0.02f) ++within_1sd;
  }
  const double mean = sum / v.size();
  const double sd = std::sqrt(sum2 / v.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.0005);
  EXPECT_NEAR(sd, 0.02, 0.0004);
  EXPECT_NEAR(static_cast<double>(within_1sd) / v.size(), 0.6827, 0.01);

  const std::vector<float> n = Values(m, "model.layers.0.input_layernorm.weight");
  double nsum = 0;
  for (float x : n) nsum += x;
  EXPECT_NEAR(nsum / n.size(), 1.0, 0.01);
}

TEST(GenerateTest, Fp16AndFp32) {
  for (DType d : {DType::kF16, DType::kF32}) {
    TempDir tmp;
    Options o;
    o.dtype = d;
    ASSERT_TRUE(Generate(o, tmp.path()).ok());
    const Loaded m = LoadAndCheck(tmp.path());
    EXPECT_EQ(m.tensors.at("lm_head.weight").dtype, d == DType::kF16 ? "F16" : "F32");
    const std::vector<float> v = Values(m, "lm_head.weight");
    double sum2 = 0;
    for (float x : v) sum2 += double{x} * x;
    EXPECT_NEAR(std::sqrt(sum2 / v.size()), 0.02, 0.0005);
    EXPECT_EQ(ReadJson(tmp.Sub("config.json"))["torch_dtype"],
              d == DType::kF16 ? "float16" : "float32");
  }
}

TEST(GenerateTest, QwenMoeMlpOnlyLayersAndQwen3HeadDim) {
  TempDir tmp;
  Options o;
  o.family = Family::kQwen2Moe;
  o.mlp_only_layers = {1};
  ASSERT_TRUE(Generate(o, tmp.Sub("moe")).ok());
  const Loaded m = LoadAndCheck(tmp.Sub("moe"));
  EXPECT_TRUE(m.tensors.count("model.layers.0.mlp.experts.0.gate_proj.weight"));
  EXPECT_TRUE(m.tensors.count("model.layers.1.mlp.gate_proj.weight"));
  EXPECT_FALSE(m.tensors.count("model.layers.1.mlp.experts.0.gate_proj.weight"));
  EXPECT_FALSE(m.tensors.count("model.layers.1.mlp.shared_expert_gate.weight"));
  EXPECT_EQ(ReadJson(tmp.Sub("moe/config.json"))["mlp_only_layers"], json::array({1}));

  o = Options();
  o.family = Family::kQwen3;
  o.head_dim = 32;
  ASSERT_TRUE(Generate(o, tmp.Sub("q3")).ok());
  const Loaded q = LoadAndCheck(tmp.Sub("q3"));
  EXPECT_EQ(q.tensors.at("model.layers.0.self_attn.q_proj.weight").shape,
            (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(q.tensors.at("model.layers.0.self_attn.o_proj.weight").shape,
            (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(q.tensors.at("model.layers.0.self_attn.q_norm.weight").shape,
            (std::vector<int64_t>{32}));
  EXPECT_EQ(ReadJson(tmp.Sub("q3/config.json"))["head_dim"], 32);
}

TEST(GenerateTest, ModelCardAndLicense) {
  TempDir tmp;
  Options o;
  o.family = Family::kMixtral;
  o.tags = {"demo", "moe", "demo"};
  auto s = Generate(o, tmp.Sub("apache"));
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->license_file_written);
  EXPECT_EQ(ReadAll(tmp.Sub("apache/LICENSE")), ReadAll("/usr/share/common-licenses/Apache-2.0"));
  const std::string card = ReadAll(tmp.Sub("apache/README.md"));
  EXPECT_TRUE(card.starts_with(
      "---\nlicense: apache-2.0\ntags:\n- hubnode-testmodel\n- mixtral\n- moe\n- demo\n"
      "library_name: transformers\n"))
      << card;
  EXPECT_EQ(card.find("base_model"), std::string::npos);
  EXPECT_NE(card.find("MixtralForCausalLM"), std::string::npos);

  o.license = "gpl-3.0";
  ASSERT_TRUE(Generate(o, tmp.Sub("gpl")).ok());
  EXPECT_EQ(ReadAll(tmp.Sub("gpl/LICENSE")), ReadAll("/usr/share/common-licenses/GPL-3"));

  o.license = "mit";
  s = Generate(o, tmp.Sub("mit"));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->license_file_written);
  EXPECT_FALSE(std::filesystem::exists(tmp.Sub("mit/LICENSE")));
  EXPECT_TRUE(ReadAll(tmp.Sub("mit/README.md")).starts_with("---\nlicense: mit\n"));
}

TEST(GenerateTest, RejectsInvalidOptionsBeforeWritingAnything) {
  std::vector<std::pair<std::string, Options>> cases;
  auto add = [&cases](std::string what, auto mutate) {
    Options o;
    mutate(o);
    cases.emplace_back(std::move(what), o);
  };
  add("zero layers", [](Options& o) { o.layers = 0; });
  add("top_k > experts", [](Options& o) {
    o.experts = 2;
    o.top_k = 3;
  });
  add("zero experts", [](Options& o) { o.experts = 0; });
  add("hidden % heads", [](Options& o) { o.hidden = 65; });
  add("heads % kv_heads", [](Options& o) {
    o.heads = 4;
    o.kv_heads = 3;
  });
  add("kv_heads > heads", [](Options& o) { o.kv_heads = 8; });
  add("odd head_dim", [](Options& o) {
    o.hidden = 12;
    o.heads = 4;
    o.kv_heads = 2;
  });
  add("unknown size", [](Options& o) { o.size = "huge"; });
  add("zero shards", [](Options& o) { o.shards = 0; });
  add("more shards than tensors", [](Options& o) { o.shards = 1000; });
  add("head_dim on llama", [](Options& o) {
    o.family = Family::kLlama;
    o.head_dim = 32;
  });
  add("mlp_only_layers on olmoe", [](Options& o) { o.mlp_only_layers = {0}; });
  add("mlp_only_layers out of range", [](Options& o) {
    o.family = Family::kQwen3Moe;
    o.mlp_only_layers = {2};
  });
  add("two expert widths", [](Options& o) {
    o.intermediate = 64;
    o.moe_intermediate = 32;
  });
  add("negative intermediate", [](Options& o) {
    o.family = Family::kLlama;
    o.intermediate = -1;
  });
  add("license id", [](Options& o) { o.license = "Apache 2"; });
  add("tag", [](Options& o) { o.tags = {"a:b"}; });
  add("threads", [](Options& o) { o.threads = -1; });
  add("too large", [](Options& o) {
    o.hidden = 65536;
    o.heads = 64;
    o.kv_heads = 64;
    o.layers = 4096;
  });
  for (const auto& [what, o] : cases) {
    TempDir tmp;
    auto s = Generate(o, tmp.Sub("out"));
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << what;
    EXPECT_FALSE(std::filesystem::exists(tmp.Sub("out"))) << what;
  }
}

TEST(GenerateTest, RefusesANonEmptyDirectoryButUsesAnEmptyOne) {
  TempDir tmp;
  Options o;
  ASSERT_TRUE(Generate(o, tmp.path()).ok());  // exists, empty
  EXPECT_EQ(Generate(o, tmp.path()).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Generate(o, tmp.Sub("config.json")).status().code(), StatusCode::kAlreadyExists);
}

TEST(GenerateTest, ParseAndNameRoundTrip) {
  for (Family f : {Family::kMixtral, Family::kQwen2Moe, Family::kQwen3Moe, Family::kOlmoe,
                   Family::kLlama, Family::kQwen2, Family::kQwen3}) {
    auto parsed = ParseFamily(FamilyName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(ParseFamily("gpt2").status().code(), StatusCode::kInvalidArgument);
  for (DType d : {DType::kBF16, DType::kF16, DType::kF32}) EXPECT_EQ(*ParseDType(DTypeName(d)), d);
  EXPECT_EQ(*ParseDType("BF16"), DType::kBF16);
  EXPECT_EQ(ParseDType("int8").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hubnode::testmodel

#include "store/expert_index.h"

#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

TEST(ExpertIndexTest, MatchesEachFamilysNames) {
  auto m = MatchExpertTensor("model.layers.3.block_sparse_moe.experts.7.w2.weight");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layer, 3u);
  EXPECT_EQ(m->expert, 7u);
  m = MatchExpertTensor("model.layers.12.mlp.experts.63.down_proj.weight");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layer, 12u);
  EXPECT_EQ(m->expert, 63u);
  m = MatchExpertTensor("model.layers.1.mlp.experts.0.gate_proj.weight_scale_inv");  // DeepSeek FP8
  ASSERT_TRUE(m);
  m = MatchExpertTensor("model.layers.0.mlp.shared_expert.up_proj.weight");  // Qwen2-MoE
  ASSERT_TRUE(m);
  EXPECT_EQ(m->expert, kSharedExpert);
  m = MatchExpertTensor("model.layers.5.mlp.shared_experts.down_proj.weight");  // DeepSeek
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layer, 5u);

  EXPECT_FALSE(MatchExpertTensor("model.layers.0.mlp.gate.weight"));
  EXPECT_FALSE(MatchExpertTensor("model.layers.0.mlp.shared_expert_gate.weight"));
  EXPECT_FALSE(MatchExpertTensor("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(MatchExpertTensor("model.embed_tokens.weight"));
  EXPECT_FALSE(MatchExpertTensor("model.xlayers.0.mlp.experts.1.w1.weight"));
  EXPECT_FALSE(MatchExpertTensor("model.layers.0.mlp.experts.1"));
}

TEST(ExpertIndexTest, PackedTensors) {
  SafetensorsTensor t{"model.layers.2.mlp.experts.gate_up_proj_blocks", "U8", {32, 8, 4, 16}, 1000, 1000 + 32 * 8 * 4 * 16};
  EXPECT_EQ(PackedExpertCount(t), 32u);
  EXPECT_EQ(*MatchPackedExpertLayer(t.name), 2u);
  t.name = "model.layers.2.mlp.experts.3.down_proj.weight";
  EXPECT_EQ(PackedExpertCount(t), 0u);
  t.name = "model.layers.2.mlp.router.weight";
  EXPECT_EQ(PackedExpertCount(t), 0u);
}

}  // namespace
}  // namespace hubnode::store

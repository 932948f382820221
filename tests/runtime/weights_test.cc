// The expert cache through an in-memory TensorSource: misses load, hits count, the budget holds,
// prefetches fill only free budget, and a failing source leaves nothing behind.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/weights.h"
#include "tests/runtime/memory_source.h"

namespace hubnode::runtime {
namespace {

// Tensors filled with a byte pattern that depends on the name.
class MemorySource final : public testing::MemorySource {
 public:
  void Add(const std::string& name, std::vector<int64_t> shape) {
    TensorDesc d{name, DType::kBF16, shape};
    std::vector<uint8_t> bytes(d.bytes());
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + name.size());
    Put(name, DType::kBF16, std::move(shape), std::move(bytes));
  }
};

class ExpertCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nlohmann::json j = {{"model_type", "olmoe"}, {"hidden_size", 8}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 2}, {"vocab_size", 10}, {"intermediate_size", 4},
                        {"num_experts", 4}, {"num_experts_per_tok", 2}};
    config_ = *ParseModelConfig(j.dump(), "");
    for (int l = 0; l < 2; ++l)
      for (int e = 0; e < 4; ++e) {
        source_.Add(config_.ExpertTensor(l, e, 0), {4, 8});
        source_.Add(config_.ExpertTensor(l, e, 1), {4, 8});
        source_.Add(config_.ExpertTensor(l, e, 2), {8, 4});
      }
    backend_ = MakeCpuBackend(1);
    tensors_ = *source_.ListTensors();
  }
  static constexpr uint64_t kExpertBytes = 3 * 32 * 2;

  MemorySource source_;
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  std::vector<TensorDesc> tensors_;
};

TEST_F(ExpertCacheTest, MissesLoadHitsCountBudgetHolds) {
  ExpertCache cache(source_, *backend_, config_, tensors_, 2 * kExpertBytes);
  ASSERT_EQ(*cache.Validate(), 8 * kExpertBytes);
  const int first[] = {0, 1};
  auto got = cache.Acquire(0, first);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::memcmp((*got)[1]->up.data, source_.Bytes(config_.ExpertTensor(0, 1, 1)).data(), 64), 0);
  EXPECT_EQ((*got)[0]->down.rows, 8);
  const int again[] = {0};
  ASSERT_TRUE(cache.Acquire(0, again).ok());
  const int third[] = {2};
  ASSERT_TRUE(cache.Acquire(0, third).ok());
  const ExpertCacheStats s = cache.stats();
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_LE(s.resident_bytes, 2 * kExpertBytes);
  EXPECT_EQ(s.bytes_loaded, 3 * kExpertBytes);
}

TEST_F(ExpertCacheTest, EvictsTheExpertUsedLeastOftenNotTheLeastRecent) {
  // Expert 0 serves three steps, expert 1 one, then 2 arrives: LRU would evict 0 (least recent),
  // the cache evicts 1 (least often used), so 0 is still a hit.
  ExpertCache cache(source_, *backend_, config_, tensors_, 2 * kExpertBytes);
  ASSERT_TRUE(cache.Validate().ok());
  const int zero[] = {0}, one[] = {1}, two[] = {2};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cache.Acquire(0, zero).ok());
  ASSERT_TRUE(cache.Acquire(0, one).ok());
  ASSERT_TRUE(cache.Acquire(0, two).ok());
  const uint64_t misses = cache.stats().misses;
  ASSERT_TRUE(cache.Acquire(0, zero).ok());
  EXPECT_EQ(cache.stats().misses, misses);
  ASSERT_TRUE(cache.Acquire(0, one).ok());
  EXPECT_EQ(cache.stats().misses, misses + 1);
}

TEST_F(ExpertCacheTest, PrefetchFillsFreeBudgetOnly) {
  ExpertCache cache(source_, *backend_, config_, tensors_, 2 * kExpertBytes);
  ASSERT_TRUE(cache.Validate().ok());
  const int one[] = {3};
  cache.Prefetch(1, one);
  for (int i = 0; i < 500 && cache.stats().prefetches == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_EQ(cache.stats().prefetches, 1u);
  ASSERT_TRUE(cache.Acquire(1, one).ok());
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().prefetch_hits, 1u);
  const int fill[] = {0};
  ASSERT_TRUE(cache.Acquire(1, fill).ok());  // now full
  const int more[] = {1, 2};
  const int reads = source_.reads();
  cache.Prefetch(0, more);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(source_.reads(), reads);  // nothing loaded, nothing evicted
  EXPECT_EQ(cache.stats().evictions, 0u);
  // Every expert asked for is counted once: held already, loaded ahead, or dropped (full).
  const int held[] = {0, 3};
  cache.Prefetch(1, held);
  const ExpertCacheStats s = cache.stats();
  EXPECT_EQ(s.prefetch_requests, 5u);
  EXPECT_EQ(s.prefetch_present, 2u);
  EXPECT_EQ(s.prefetches_dropped, 2u);
  EXPECT_EQ(s.prefetch_requests, s.prefetch_present + s.prefetches + s.prefetches_dropped);
}

TEST_F(ExpertCacheTest, FailedLoadIsAnErrorAndCachesNothing) {
  ExpertCache cache(source_, *backend_, config_, tensors_, 0);
  source_.Fail(config_.ExpertTensor(1, 2, 2));
  const int e[] = {2};
  auto got = cache.Acquire(1, e);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(cache.stats().resident_bytes, 0u);
}

TEST_F(ExpertCacheTest, SeveralMissesLoadTogetherAndOneFailureFailsTheStep) {
  // A layer's misses load on the caller's and the loader's thread at once: every expert arrives
  // intact; one bad tensor fails the step, the others are still cached, and nothing stays in flight.
  ExpertCache cache(source_, *backend_, config_, tensors_, 0);
  ASSERT_TRUE(cache.Validate().ok());
  const int all[] = {0, 1, 2, 3};
  auto got = cache.Acquire(0, all);
  ASSERT_TRUE(got.ok());
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(std::memcmp((*got)[e]->down.data, source_.Bytes(config_.ExpertTensor(0, e, 2)).data(), 64), 0) << e;
  }
  EXPECT_EQ(cache.stats().misses, 4u);
  source_.Fail(config_.ExpertTensor(1, 1, 0));
  const int some[] = {0, 1, 2};
  auto bad = cache.Acquire(1, some);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  const int good[] = {0, 2};
  const uint64_t misses = cache.stats().misses;
  ASSERT_TRUE(cache.Acquire(1, good).ok());  // loaded by the failed step, cached: hits
  EXPECT_EQ(cache.stats().misses, misses);
}

TEST_F(ExpertCacheTest, UnlimitedBudgetNeverEvictsAndMissingTensorIsRefused) {
  ExpertCache cache(source_, *backend_, config_, tensors_, 0);
  for (int l = 0; l < 2; ++l)
    for (int e = 0; e < 4; ++e) {
      const int one[] = {e};
      ASSERT_TRUE(cache.Acquire(l, one).ok());
    }
  EXPECT_EQ(cache.stats().evictions, 0u);
  EXPECT_EQ(cache.stats().resident_bytes, 8 * kExpertBytes);
  std::vector<TensorDesc> partial = tensors_;
  partial.pop_back();
  ExpertCache broken(source_, *backend_, config_, partial, 0);
  EXPECT_EQ(broken.Validate().status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hubnode::runtime

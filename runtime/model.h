// The decoder forward pass of the supported architectures on a Backend: embedding, layers of
// attention (GQA, RoPE, optional QK-norm and biases) and MLP or MoE (router, routed experts from
// the ExpertCache, optional gated shared expert), final norm and lm_head.
//
// Thread safety: Forward() runs one batch at a time (the engine's scheduler thread).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "runtime/backend.h"
#include "runtime/config.h"
#include "runtime/weights.h"

namespace hubnode::runtime {

// The keys and values of one sequence, for every layer, in backend memory.
class KvCache {
 public:
  static Result<std::unique_ptr<KvCache>> Create(Backend& backend, const ModelConfig& config, int capacity);
  // f32 values held per token (all layers): MLA's compressed latent + rope key, else K and V.
  static int64_t FloatsPerToken(const ModelConfig& config);
  // What the same model would hold per token with full keys and values per head (MLA
  // decompressed: heads · (qk_head_dim + v_head_dim) per layer); FloatsPerToken otherwise.
  static int64_t UncompressedFloatsPerToken(const ModelConfig& config);
  size_t bytes() const { return buffer_->size(); }
  int capacity() const { return capacity_; }
  float* k(int layer) { return k_ + static_cast<int64_t>(layer) * layer_floats_; }
  float* v(int layer) { return v_ + static_cast<int64_t>(layer) * layer_floats_; }

 private:
  std::unique_ptr<Buffer> buffer_;
  float* k_ = nullptr;
  float* v_ = nullptr;
  int capacity_ = 0;
  int64_t layer_floats_ = 0;
};

// One sequence's part of a batch: `tokens` at positions start .. start + tokens.size() - 1.
struct SeqInput {
  KvCache* cache = nullptr;
  std::span<const int32_t> tokens;
  int32_t start = 0;
  bool all_logits = false;  // logits for every token, not just the last
};

// How well the next layer's experts were predicted (EngineStats has the meaning of each).
struct PredictionStats {
  uint64_t predicted = 0, routed = 0, correct = 0;
};

class Model {
 public:
  // `on_routing` (may be empty) sees every MoE layer's routing (runtime.h EngineOptions).
  Model(const ModelConfig& config, Backend& backend, ModelWeights& weights, ExpertCache* experts,
        bool prefetch, std::function<void(const RoutingEvent&)> on_routing = {});
  // Logits rows (vocab floats each) for each sequence in order: every token's when all_logits,
  // else its last token's. OutOfRange when a sequence would exceed its cache; an expert that
  // cannot be loaded is returned as its error.
  Result<std::vector<float>> Forward(std::span<const SeqInput> batch);

  // Thread-safe (relaxed counters): read while a pass runs.
  PredictionStats prediction_stats() const;

 private:
  float* Scratch(int slot, int64_t floats);
  // `predict`: also predict (and prefetch) layer + 1's experts (Predict), from the same download.
  Status Moe(int layer, int64_t n, float* hn, float* x, std::span<const int32_t> positions, bool predict);
  Status Mla(int layer, int64_t n, const float* hn, float* x, std::span<const SeqInput> batch,
             std::span<const int32_t> positions);
  // Predicts `next_layer`'s experts from its router's logits over this layer's normalised hidden
  // state (host memory, n × experts); prefetches them when prefetching is on.
  void Predict(int next_layer, int64_t n, const float* logits);

  const ModelConfig& c_;
  Backend& b_;
  ModelWeights& w_;
  ExpertCache* experts_;
  bool prefetch_;
  std::function<void(const RoutingEvent&)> on_routing_;
  std::vector<float> inv_freq_;
  std::vector<std::unique_ptr<Buffer>> scratch_;
  // The current pass's prediction for each layer (made at the layer before): the batch's distinct
  // experts, and (for on_routing_) each token's top-k. `predicted_for_[l]` says it was made.
  std::vector<char> predicted_for_;
  std::vector<std::vector<int>> predicted_set_;
  std::vector<std::vector<int32_t>> predicted_tokens_;
  std::atomic<uint64_t> predicted_{0}, predicted_routed_{0}, predicted_correct_{0};
};

// Top-k routing of one token: the family's rule (softmax over all experts in f32, top-k with
// ties to the lower index, renormalised iff `renormalize`). Returns (expert, weight) pairs.
std::vector<std::pair<int, float>> Route(std::span<const float> logits, int top_k, bool renormalize);

// DeepSeek's routing of one token (docs/deepseek.md): softmax or sigmoid scores; greedy,
// group-limited (group score = best expert) or noaux_tc (group score = best two after adding
// `bias`, the e_score_correction_bias, which picks experts but never weighs them); weights the
// unbiased scores, normalised iff top_k > 1 and norm_topk_prob, times routed_scaling_factor (V2:
// only when not normalised). Ties go to the lower index.
std::vector<std::pair<int, float>> RouteDeepseek(const ModelConfig& config, std::span<const float> logits,
                                                 std::span<const float> bias);
// The config's family's routing (Route, or RouteDeepseek).
std::vector<std::pair<int, float>> RouteToken(const ModelConfig& config, std::span<const float> logits,
                                              std::span<const float> bias);

}  // namespace hubnode::runtime

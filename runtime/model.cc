#include "runtime/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace hubnode::runtime {

Result<std::unique_ptr<KvCache>> KvCache::Create(Backend& backend, const ModelConfig& c, int capacity) {
  auto kv = std::unique_ptr<KvCache>(new KvCache());
  kv->capacity_ = capacity;
  kv->layer_floats_ = static_cast<int64_t>(capacity) * c.kv_heads * c.head_dim;
  const int64_t floats = 2 * kv->layer_floats_ * c.layers;
  ASSIGN_OR_RETURN(kv->buffer_, backend.Alloc(floats * sizeof(float)));
  kv->k_ = static_cast<float*>(kv->buffer_->data());
  kv->v_ = kv->k_ + kv->layer_floats_ * c.layers;
  return kv;
}

std::vector<std::pair<int, float>> Route(std::span<const float> logits, int top_k, bool renormalize) {
  const int e = static_cast<int>(logits.size());
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  std::vector<float> p(e);
  float sum = 0;
  for (int i = 0; i < e; ++i) sum += p[i] = std::exp(logits[i] - max_logit);
  for (float& v : p) v /= sum;
  std::vector<int> order(e);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + top_k, order.end(),
                    [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  std::vector<std::pair<int, float>> out;
  float chosen = 0;
  for (int i = 0; i < top_k; ++i) chosen += p[order[i]];
  for (int i = 0; i < top_k; ++i) out.emplace_back(order[i], renormalize ? p[order[i]] / chosen : p[order[i]]);
  return out;
}

Model::Model(const ModelConfig& config, Backend& backend, ModelWeights& weights, ExpertCache* experts,
             bool prefetch, std::function<void(const RoutingEvent&)> on_routing)
    : c_(config), b_(backend), w_(weights), experts_(experts), prefetch_(prefetch), on_routing_(std::move(on_routing)),
      predicted_for_(c_.layers, 0), predicted_set_(c_.layers), predicted_tokens_(c_.layers) {
  const std::vector<double> inv = RopeInvFreq(c_, c_.max_position);
  inv_freq_.assign(inv.begin(), inv.end());
}

PredictionStats Model::prediction_stats() const {
  return {predicted_.load(std::memory_order_relaxed), predicted_routed_.load(std::memory_order_relaxed),
          predicted_correct_.load(std::memory_order_relaxed)};
}

float* Model::Scratch(int slot, int64_t floats) {
  if (scratch_.size() <= static_cast<size_t>(slot)) scratch_.resize(slot + 1);
  auto& buf = scratch_[slot];
  if (!buf || buf->size() < static_cast<size_t>(floats) * sizeof(float)) {
    auto fresh = b_.Alloc(std::max<int64_t>(floats, 1) * sizeof(float));
    if (!fresh.ok()) return nullptr;
    buf = std::move(*fresh);
  }
  return static_cast<float*>(buf->data());
}

namespace {
enum Slot { kX, kHn, kQ, kK, kV, kAttn, kGate, kUp, kRouter, kGather, kExpGate, kExpUp, kExpDown,
            kShared, kLogits, kPrefetch, kSlots };
}  // namespace

Result<std::vector<float>> Model::Forward(std::span<const SeqInput> batch) {
  int64_t n = 0, out_rows = 0;
  for (const SeqInput& s : batch) {
    if (s.tokens.empty()) return InvalidArgumentError("empty sequence in batch");
    if (s.start + static_cast<int64_t>(s.tokens.size()) > s.cache->capacity()) {
      return OutOfRangeError("sequence exceeds its context of " + std::to_string(s.cache->capacity()));
    }
    for (int32_t t : s.tokens) {
      if (t < 0 || t >= c_.vocab) return InvalidArgumentError("token id " + std::to_string(t) + " out of range");
    }
    n += s.tokens.size();
    out_rows += s.all_logits ? s.tokens.size() : 1;
  }
  const int64_t H = c_.hidden, qd = int64_t{c_.heads} * c_.head_dim, kvd = int64_t{c_.kv_heads} * c_.head_dim;
  float* x = Scratch(kX, n * H);
  float* hn = Scratch(kHn, n * H);
  float* q = Scratch(kQ, n * qd);
  float* k = Scratch(kK, n * kvd);
  float* v = Scratch(kV, n * kvd);
  float* attn = Scratch(kAttn, n * qd);
  if (!x || !hn || !q || !k || !v || !attn) return ResourceExhaustedError("cannot allocate activations");

  std::vector<int32_t> ids, positions, rows_out;
  std::vector<std::vector<float>> seq_inv_freq;
  for (const SeqInput& s : batch) {
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.all_logits || i + 1 == s.tokens.size()) rows_out.push_back(static_cast<int32_t>(ids.size()));
      ids.push_back(s.tokens[i]);
      positions.push_back(s.start + static_cast<int32_t>(i));
    }
    if (c_.rope.type == RopeType::kDynamic) {  // frequencies follow the sequence's length
      const std::vector<double> inv = RopeInvFreq(c_, s.start + static_cast<int>(s.tokens.size()));
      seq_inv_freq.emplace_back(inv.begin(), inv.end());
    }
  }
  b_.Embed({w_.embed, ids.data(), n, x});
  std::fill(predicted_for_.begin(), predicted_for_.end(), 0);  // nothing carried over from a failed pass
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
  const float rope_scale = c_.rope.type == RopeType::kYarn ? static_cast<float>(c_.rope.attention_factor) : 1.0f;
  for (int l = 0; l < c_.layers; ++l) {
    const LayerWeights& L = w_.layers[l];
    const float eps = static_cast<float>(c_.rms_eps);
    b_.RmsNorm({x, hn, n, H, L.attn_norm, eps});
    const MatMulArgs qkv[] = {
        {hn, n, H, L.q, L.q_bias.data ? static_cast<const float*>(L.q_bias.data) : nullptr, q, qd, false},
        {hn, n, H, L.k, L.k_bias.data ? static_cast<const float*>(L.k_bias.data) : nullptr, k, kvd, false},
        {hn, n, H, L.v, L.v_bias.data ? static_cast<const float*>(L.v_bias.data) : nullptr, v, kvd, false}};
    b_.MatMul(qkv);
    if (c_.qk_norm == QkNorm::kFull) {
      b_.RmsNorm({q, q, n, qd, L.q_norm, eps});
      b_.RmsNorm({k, k, n, kvd, L.k_norm, eps});
    } else if (c_.qk_norm == QkNorm::kPerHead) {
      b_.RmsNorm({q, q, n * c_.heads, c_.head_dim, L.q_norm, eps});
      b_.RmsNorm({k, k, n * c_.kv_heads, c_.head_dim, L.k_norm, eps});
    }
    int64_t row = 0;
    for (size_t s = 0; s < batch.size(); ++s) {
      const SeqInput& seq = batch[s];
      const int64_t m = seq.tokens.size();
      const float* inv = seq_inv_freq.empty() ? inv_freq_.data() : seq_inv_freq[s].data();
      b_.Rope({q + row * qd, m, c_.heads, c_.head_dim, qd, positions.data() + row, inv, rope_scale});
      b_.Rope({k + row * kvd, m, c_.kv_heads, c_.head_dim, kvd, positions.data() + row, inv, rope_scale});
      // Store this step's keys and values at their positions, then attend.
      AddScaledArgs store{seq.cache->k(l) + int64_t{seq.start} * kvd, k + row * kvd, nullptr, nullptr, m, kvd, kvd, kvd, true};
      b_.AddScaled(store);
      store.y = seq.cache->v(l) + int64_t{seq.start} * kvd;
      store.x = v + row * kvd;
      b_.AddScaled(store);
      b_.Attention({q + row * qd, qd, seq.cache->k(l), seq.cache->v(l), attn + row * qd, qd, m,
                    c_.heads, c_.kv_heads, c_.head_dim, positions.data() + row, c_.sliding_window, attn_scale});
      row += m;
    }
    const MatMulArgs o{attn, n, qd, L.o, nullptr, x, H, true};
    b_.MatMul({&o, 1});
    b_.RmsNorm({x, hn, n, H, L.ffn_norm, eps});
    if (L.moe) {
      if ((prefetch_ || on_routing_) && experts_ && l + 1 < c_.layers && w_.layers[l + 1].moe) Predict(l + 1, n, hn);
      RETURN_IF_ERROR(Moe(l, n, hn, x, positions));
    } else {
      const int64_t I = L.gate.rows;
      float* g = Scratch(kGate, n * I);
      float* u = Scratch(kUp, n * I);
      if (!g || !u) return ResourceExhaustedError("cannot allocate activations");
      const MatMulArgs gu[] = {{hn, n, H, L.gate, nullptr, g, I, false}, {hn, n, H, L.up, nullptr, u, I, false}};
      b_.MatMul(gu);
      b_.SiluMul({g, u, n, I, I, I});
      const MatMulArgs down{g, n, I, L.down, nullptr, x, H, true};
      b_.MatMul({&down, 1});
    }
  }
  float* gathered = Scratch(kGather, out_rows * H);
  float* logits = Scratch(kLogits, out_rows * c_.vocab);
  if (!gathered || !logits) return ResourceExhaustedError("cannot allocate logits");
  b_.Embed({WeightView{x, DType::kF32, n, H}, rows_out.data(), out_rows, gathered});
  b_.RmsNorm({gathered, gathered, out_rows, H, w_.final_norm, static_cast<float>(c_.rms_eps)});
  const MatMulArgs head{gathered, out_rows, H, w_.lm_head, nullptr, logits, c_.vocab, false};
  b_.MatMul({&head, 1});
  std::vector<float> out(out_rows * c_.vocab);
  b_.Download(out.data(), logits, out.size() * sizeof(float));
  return out;
}

void Model::Predict(int next, int64_t n, const float* hn) {
  // The next layer's router applied to this layer's normalised hidden state predicts its
  // experts well (the residual stream changes little between layers).
  float* r = Scratch(kPrefetch, n * c_.experts);
  if (!r) return;
  const MatMulArgs route{hn, n, c_.hidden, w_.layers[next].router, nullptr, r, c_.experts, false};
  b_.MatMul({&route, 1});
  std::vector<float> host(n * c_.experts);
  b_.Download(host.data(), r, host.size() * sizeof(float));
  std::vector<int>& want = predicted_set_[next];
  std::vector<int32_t>& per_token = predicted_tokens_[next];
  want.clear();
  per_token.clear();
  for (int64_t i = 0; i < n; ++i) {
    for (const auto& [e, w] : Route({host.data() + i * c_.experts, size_t(c_.experts)}, c_.top_k, false)) {
      if (std::find(want.begin(), want.end(), e) == want.end()) want.push_back(e);
      if (on_routing_) per_token.push_back(e);
    }
  }
  predicted_for_[next] = 1;
  if (prefetch_) experts_->Prefetch(next, want);
}

Status Model::Moe(int l, int64_t n, float* hn, float* x, std::span<const int32_t> positions) {
  const LayerWeights& L = w_.layers[l];
  const int64_t H = c_.hidden, E = c_.experts;
  float* r = Scratch(kRouter, n * E);
  if (!r) return ResourceExhaustedError("cannot allocate activations");
  const MatMulArgs route{hn, n, H, L.router, nullptr, r, E, false};
  b_.MatMul({&route, 1});
  std::vector<float> logits(n * E);
  b_.Download(logits.data(), r, logits.size() * sizeof(float));
  // Group the (token, weight) assignments by expert.
  std::vector<std::vector<std::pair<int32_t, float>>> by_expert(E);
  std::vector<int32_t> routed;  // each token's experts, for on_routing_
  for (int64_t i = 0; i < n; ++i) {
    for (const auto& [e, w] : Route({logits.data() + i * E, size_t(E)}, c_.top_k, c_.norm_topk_prob)) {
      by_expert[e].emplace_back(static_cast<int32_t>(i), w);
      if (on_routing_) routed.push_back(e);
    }
  }
  std::vector<int> used;
  std::vector<int32_t> tokens;
  std::vector<float> weights;
  std::vector<int64_t> offsets;
  for (int e = 0; e < E; ++e) {
    if (by_expert[e].empty()) continue;
    used.push_back(e);
    offsets.push_back(tokens.size());
    for (const auto& [t, w] : by_expert[e]) {
      tokens.push_back(t);
      weights.push_back(w);
    }
  }
  offsets.push_back(tokens.size());
  if (predicted_for_[l]) {  // how well the layer before predicted this one (`used` is sorted)
    const std::vector<int>& want = predicted_set_[l];
    uint64_t correct = 0;
    for (int e : want) correct += std::binary_search(used.begin(), used.end(), e);
    predicted_.fetch_add(want.size(), std::memory_order_relaxed);
    predicted_routed_.fetch_add(used.size(), std::memory_order_relaxed);
    predicted_correct_.fetch_add(correct, std::memory_order_relaxed);
    predicted_for_[l] = 0;
  }
  if (on_routing_) {
    const bool next = l + 1 < c_.layers && predicted_for_[l + 1];
    on_routing_(RoutingEvent{l, c_.top_k, positions.first(n), routed,
                             next ? std::span<const int32_t>(predicted_tokens_[l + 1]) : std::span<const int32_t>()});
  }
  ASSIGN_OR_RETURN(auto experts, experts_->Acquire(l, used));
  const int64_t m = tokens.size(), I = c_.moe_intermediate;
  float* xe = Scratch(kGather, m * H);
  float* g = Scratch(kExpGate, m * I);
  float* u = Scratch(kExpUp, m * I);
  float* d = Scratch(kExpDown, m * H);
  if (!xe || !g || !u || !d) return ResourceExhaustedError("cannot allocate activations");
  b_.Embed({WeightView{hn, DType::kF32, n, H}, tokens.data(), m, xe});
  std::vector<MatMulArgs> products;
  for (size_t j = 0; j < used.size(); ++j) {
    const int64_t o = offsets[j], rows = offsets[j + 1] - offsets[j];
    products.push_back({xe + o * H, rows, H, experts[j]->gate, nullptr, g + o * I, I, false});
    products.push_back({xe + o * H, rows, H, experts[j]->up, nullptr, u + o * I, I, false});
  }
  b_.MatMul(products);
  b_.SiluMul({g, u, m, I, I, I});
  products.clear();
  for (size_t j = 0; j < used.size(); ++j) {
    const int64_t o = offsets[j], rows = offsets[j + 1] - offsets[j];
    products.push_back({g + o * I, rows, I, experts[j]->down, nullptr, d + o * H, H, false});
  }
  b_.MatMul(products);
  b_.AddScaled({x, d, weights.data(), tokens.data(), m, H, H, H, false});
  if (L.shared_gate.data) {  // Qwen2-MoE: + sigmoid(shared_expert_gate(h)) · shared_expert(h)
    const int64_t S = L.shared_gate.rows;
    float* sg = Scratch(kGate, n * S);
    float* su = Scratch(kUp, n * S);
    float* so = Scratch(kShared, n * H + n);
    if (!sg || !su || !so) return ResourceExhaustedError("cannot allocate activations");
    float* gate_logit = so + n * H;
    const MatMulArgs first[] = {{hn, n, H, L.shared_gate, nullptr, sg, S, false},
                                {hn, n, H, L.shared_up, nullptr, su, S, false},
                                {hn, n, H, L.shared_expert_gate, nullptr, gate_logit, 1, false}};
    b_.MatMul(first);
    b_.SiluMul({sg, su, n, S, S, S});
    const MatMulArgs down{sg, n, S, L.shared_down, nullptr, so, H, false};
    b_.MatMul({&down, 1});
    std::vector<float> scale(n);
    b_.Download(scale.data(), gate_logit, n * sizeof(float));
    for (float& s : scale) s = 1.0f / (1.0f + std::exp(-s));
    b_.AddScaled({x, so, scale.data(), nullptr, n, H, H, H, false});
  }
  return OkStatus();
}

}  // namespace hubnode::runtime

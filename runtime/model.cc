#include "runtime/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace hubnode::runtime {

int64_t KvCache::FloatsPerToken(const ModelConfig& c) {
  // MLA keeps the compressed latent (kv_lora_rank values, normalised) and the shared rope key
  // (qk_rope_head_dim values, rotated) of each token: one row, read as both key and value.
  if (c.mla) return int64_t{c.layers} * (c.mla_dims.kv_lora_rank + c.mla_dims.qk_rope_head_dim);
  return int64_t{c.layers} * 2 * c.kv_heads * c.head_dim;
}

int64_t KvCache::UncompressedFloatsPerToken(const ModelConfig& c) {
  if (!c.mla) return FloatsPerToken(c);
  return int64_t{c.layers} * c.heads * (c.mla_dims.qk_head_dim() + c.mla_dims.v_head_dim);
}

Result<std::unique_ptr<KvCache>> KvCache::Create(Backend& backend, const ModelConfig& c, int capacity) {
  auto kv = std::unique_ptr<KvCache>(new KvCache());
  kv->capacity_ = capacity;
  const int64_t floats = FloatsPerToken(c) * capacity;
  kv->layer_floats_ = floats / (c.mla ? c.layers : 2 * c.layers);
  ASSIGN_OR_RETURN(kv->buffer_, backend.Alloc(std::max<int64_t>(floats, 1) * sizeof(float)));
  kv->k_ = static_cast<float*>(kv->buffer_->data());
  kv->v_ = c.mla ? kv->k_ : kv->k_ + kv->layer_floats_ * c.layers;
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

std::vector<std::pair<int, float>> RouteDeepseek(const ModelConfig& c, std::span<const float> logits,
                                                 std::span<const float> bias) {
  const int E = static_cast<int>(logits.size());
  std::vector<double> score(E), choice(E);
  if (c.scoring == Scoring::kSoftmax) {
    const double max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (int i = 0; i < E; ++i) sum += score[i] = std::exp(logits[i] - max_logit);
    for (double& v : score) v /= sum;
  } else {
    for (int i = 0; i < E; ++i) score[i] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
  }
  const bool biased = c.topk_method == TopkMethod::kNoauxTc && !bias.empty();
  for (int i = 0; i < E; ++i) choice[i] = score[i] + (biased ? bias[i] : 0.0);
  // Ties go to the lower index, in groups as in experts.
  auto before = [](const std::vector<double>& v) {
    return [&v](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
  };
  std::vector<char> allowed(E, 1);
  if (c.topk_method != TopkMethod::kGreedy && c.n_group > 1) {
    const int G = c.n_group, per = E / G;
    std::vector<double> group(G);
    for (int g = 0; g < G; ++g) {
      std::vector<double> members(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(members.begin(), members.end(), std::greater<>());
      // V2 group_limited_greedy: a group's best score; V3 noaux_tc: the sum of its best two.
      group[g] = c.topk_method == TopkMethod::kNoauxTc ? members[0] + members[1] : members[0];
    }
    std::vector<int> groups(G);
    std::iota(groups.begin(), groups.end(), 0);
    std::partial_sort(groups.begin(), groups.begin() + c.topk_group, groups.end(), before(group));
    std::fill(allowed.begin(), allowed.end(), 0);
    for (int i = 0; i < c.topk_group; ++i) std::fill(allowed.begin() + groups[i] * per, allowed.begin() + (groups[i] + 1) * per, 1);
  }
  std::vector<int> order;
  for (int i = 0; i < E; ++i) {
    if (allowed[i]) order.push_back(i);
  }
  std::partial_sort(order.begin(), order.begin() + c.top_k, order.end(), before(choice));
  std::vector<double> w(c.top_k);
  double sum = 0;
  for (int i = 0; i < c.top_k; ++i) sum += w[i] = score[order[i]];  // the unbiased scores
  const bool norm = c.top_k > 1 && c.norm_topk_prob;
  for (double& v : w) {
    if (norm) v /= sum + 1e-20;
    // V2 scales only what it does not normalise; V3 scales always.
    if (!norm || c.arch == Arch::kDeepseekV3) v *= c.routed_scaling_factor;
  }
  std::vector<std::pair<int, float>> out;
  for (int i = 0; i < c.top_k; ++i) out.emplace_back(order[i], static_cast<float>(w[i]));
  return out;
}

std::vector<std::pair<int, float>> RouteToken(const ModelConfig& c, std::span<const float> logits,
                                              std::span<const float> bias) {
  if (c.IsDeepseek()) return RouteDeepseek(c, logits, bias);
  return Route(logits, c.top_k, c.norm_topk_prob);
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
            kShared, kLogits, kPrefetch, kMlaQa, kMlaQ, kMlaLatent, kMlaNorm, kMlaQpe, kMlaQf, kMlaOut,
            kMlaV, kSlots };
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
    if (c_.mla) {
      RETURN_IF_ERROR(Mla(l, n, hn, x, batch, positions));
    } else {
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
    }
    b_.RmsNorm({x, hn, n, H, L.ffn_norm, eps});
    if (L.moe) {
      const bool predict = (prefetch_ || on_routing_) && experts_ && l + 1 < c_.layers && w_.layers[l + 1].moe;
      RETURN_IF_ERROR(Moe(l, n, hn, x, positions, predict));
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
  RETURN_IF_ERROR(b_.Check());  // a device backend's fault in any op of the pass
  return out;
}

void Model::Predict(int next, int64_t n, const float* logits) {
  std::vector<int>& want = predicted_set_[next];
  std::vector<int32_t>& per_token = predicted_tokens_[next];
  want.clear();
  per_token.clear();
  for (int64_t i = 0; i < n; ++i) {
    for (const auto& [e, w] : RouteToken(c_, {logits + i * c_.experts, size_t(c_.experts)}, w_.layers[next].router_bias)) {
      if (std::find(want.begin(), want.end(), e) == want.end()) want.push_back(e);
      if (on_routing_) per_token.push_back(e);
    }
  }
  predicted_for_[next] = 1;
  if (prefetch_) experts_->Prefetch(next, want);
}

Status Model::Moe(int l, int64_t n, float* hn, float* x, std::span<const int32_t> positions, bool predict) {
  const LayerWeights& L = w_.layers[l];
  const int64_t H = c_.hidden, E = c_.experts;
  // This layer's router and, to predict the next layer's experts, the next layer's router applied
  // to this layer's normalised hidden state (the residual stream changes little between layers):
  // one product call and one download (on a GPU, one synchronisation per layer).
  float* r = Scratch(kRouter, (predict ? 2 : 1) * n * E);
  if (!r) return ResourceExhaustedError("cannot allocate activations");
  const MatMulArgs route[] = {{hn, n, H, L.router, nullptr, r, E, false},
                              {hn, n, H, predict ? w_.layers[l + 1].router : L.router, nullptr, r + n * E, E, false}};
  b_.MatMul({route, predict ? 2u : 1u});
  std::vector<float> logits((predict ? 2 : 1) * n * E);
  b_.Download(logits.data(), r, logits.size() * sizeof(float));
  RETURN_IF_ERROR(b_.Check());
  if (predict) Predict(l + 1, n, logits.data() + n * E);
  // Group the (token, weight) assignments by expert.
  std::vector<std::vector<std::pair<int32_t, float>>> by_expert(E);
  std::vector<int32_t> routed;  // each token's experts, for on_routing_
  for (int64_t i = 0; i < n; ++i) {
    for (const auto& [e, w] : RouteToken(c_, {logits.data() + i * E, size_t(E)}, L.router_bias)) {
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
  if (L.shared_gate.data) {
    // Qwen2-MoE: + sigmoid(shared_expert_gate(h)) · shared_expert(h); DeepSeek: + shared_experts(h).
    const bool gated = L.shared_expert_gate.data != nullptr;
    const int64_t S = L.shared_gate.rows;
    float* sg = Scratch(kGate, n * S);
    float* su = Scratch(kUp, n * S);
    float* so = Scratch(kShared, n * H + n);
    if (!sg || !su || !so) return ResourceExhaustedError("cannot allocate activations");
    float* gate_logit = so + n * H;
    const MatMulArgs first[] = {{hn, n, H, L.shared_gate, nullptr, sg, S, false},
                                {hn, n, H, L.shared_up, nullptr, su, S, false},
                                {hn, n, H, L.shared_expert_gate, nullptr, gate_logit, 1, false}};
    b_.MatMul({first, gated ? 3u : 2u});
    b_.SiluMul({sg, su, n, S, S, S});
    const MatMulArgs down{sg, n, S, L.shared_down, nullptr, so, H, false};
    b_.MatMul({&down, 1});
    std::vector<float> scale;
    if (gated) {
      scale.resize(n);
      b_.Download(scale.data(), gate_logit, n * sizeof(float));
      for (float& s : scale) s = 1.0f / (1.0f + std::exp(-s));
    }
    b_.AddScaled({x, so, gated ? scale.data() : nullptr, nullptr, n, H, H, H, false});
  }
  return OkStatus();
}

namespace {

// Rows [first, first + rows) of `w` as a weight of their own (with their block scales).
// REQUIRES: first is a multiple of block_rows for a block-scaled weight.
WeightView RowSlice(const WeightView& w, int64_t first, int64_t rows) {
  WeightView s = w;
  s.data = static_cast<const uint8_t*>(w.data) + DTypeBytes(w.dtype, static_cast<uint64_t>(first * w.cols));
  s.rows = rows;
  if (w.scales) s.scales = w.scales + (first / w.block_rows) * ((w.cols + w.block_cols - 1) / w.block_cols);
  return s;
}

}  // namespace

Status Model::Mla(int l, int64_t n, const float* hn, float* x, std::span<const SeqInput> batch,
                  std::span<const int32_t> positions) {
  // Multi-head latent attention over the compressed cache, the key and value up-projections
  // absorbed (docs/deepseek.md): each head's query meets the latent through uk_t, the attention
  // output leaves it through uv.
  const LayerWeights& L = w_.layers[l];
  const MlaConfig& m = c_.mla_dims;
  const int64_t H = c_.hidden, heads = c_.heads, nope = m.qk_nope_head_dim, rope = m.qk_rope_head_dim;
  const int64_t kvl = m.kv_lora_rank, vd = m.v_head_dim, qk = m.qk_head_dim();
  const int64_t qw = heads * qk, lw = kvl + rope, fw = heads * lw, ql = m.q_lora_rank;
  const float eps = static_cast<float>(c_.rms_eps);
  float* qa = ql > 0 ? Scratch(kMlaQa, n * ql) : nullptr;
  float* q = Scratch(kMlaQ, n * qw);
  float* lat = Scratch(kMlaLatent, n * lw);
  float* cn = Scratch(kMlaNorm, n * kvl);
  float* qpe = Scratch(kMlaQpe, n * heads * rope);
  float* qf = Scratch(kMlaQf, n * fw);
  float* ao = Scratch(kMlaOut, n * fw);
  float* vo = Scratch(kMlaV, n * heads * vd);
  if ((ql > 0 && !qa) || !q || !lat || !cn || !qpe || !qf || !ao || !vo) {
    return ResourceExhaustedError("cannot allocate activations");
  }
  {
    const MatMulArgs first[] = {{hn, n, H, L.kv_a, nullptr, lat, lw, false},
                                ql > 0 ? MatMulArgs{hn, n, H, L.q_a, nullptr, qa, ql, false}
                                       : MatMulArgs{hn, n, H, L.q, nullptr, q, qw, false}};
    b_.MatMul(first);
  }
  if (ql > 0) {
    b_.RmsNorm({qa, qa, n, ql, L.q_a_norm, eps});
    const MatMulArgs qb{qa, n, ql, L.q_b, nullptr, q, qw, false};
    b_.MatMul({&qb, 1});
  }
  // The latent: normalise its first kv_lora_rank values in place (through a contiguous copy).
  b_.AddScaled({cn, lat, nullptr, nullptr, n, kvl, kvl, lw, true});
  b_.RmsNorm({cn, cn, n, kvl, L.kv_a_norm, eps});
  b_.AddScaled({lat, cn, nullptr, nullptr, n, kvl, lw, kvl, true});
  // The absorbed query: per head [uk_tᵀ·q_nope (kv_lora_rank), q_pe (rope)].
  std::vector<MatMulArgs> products;
  for (int64_t h = 0; h < heads; ++h) {
    products.push_back({q + h * qk, n, qw, RowSlice(L.uk_t, h * kvl, kvl), nullptr, qf + h * lw, fw, false});
  }
  b_.MatMul(products);
  b_.AddScaled({qpe, q + nope, nullptr, nullptr, n * heads, rope, rope, qk, true});
  const float rope_scale = c_.rope.type == RopeType::kYarn ? static_cast<float>(c_.rope.attention_factor) : 1.0f;
  int64_t row = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SeqInput& seq = batch[s];
    const int64_t len = seq.tokens.size();
    const float* inv = inv_freq_.data();
    std::vector<float> dyn;
    if (c_.rope.type == RopeType::kDynamic) {
      const std::vector<double> d = RopeInvFreq(c_, seq.start + static_cast<int>(len));
      dyn.assign(d.begin(), d.end());
      inv = dyn.data();
    }
    b_.Rope({qpe + row * heads * rope, len, heads, rope, heads * rope, positions.data() + row, inv, rope_scale});
    b_.Rope({lat + row * lw + kvl, len, 1, rope, lw, positions.data() + row, inv, rope_scale});
    row += len;
  }
  b_.AddScaled({qf + kvl, qpe, nullptr, nullptr, n * heads, rope, lw, rope, true});
  row = 0;
  for (const SeqInput& seq : batch) {
    const int64_t len = seq.tokens.size();
    float* cache = seq.cache->k(l);
    b_.AddScaled({cache + int64_t{seq.start} * lw, lat + row * lw, nullptr, nullptr, len, lw, lw, lw, true});
    // One latent "head" shared by every query head, read as key and as value.
    b_.Attention({qf + row * fw, fw, cache, cache, ao + row * fw, fw, len, heads, 1, lw,
                  positions.data() + row, 0, static_cast<float>(m.softmax_scale)});
    row += len;
  }
  products.clear();
  for (int64_t h = 0; h < heads; ++h) {
    products.push_back({ao + h * lw, n, fw, RowSlice(L.uv, h * vd, vd), nullptr, vo + h * vd, heads * vd, false});
  }
  b_.MatMul(products);
  const MatMulArgs o{vo, n, heads * vd, L.o, nullptr, x, H, true};
  b_.MatMul({&o, 1});
  return OkStatus();
}

}  // namespace hubnode::runtime

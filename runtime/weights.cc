#include "runtime/weights.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "base/log.h"
#include "runtime/expert_load.h"

namespace hubnode::runtime {

namespace {

// float8 e4m3fn (no infinities; S.1111.111 is NaN) to f32.
float F8E4M3Value(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  float v;
  if (e == 0) {
    v = std::ldexp(static_cast<float>(m) / 8.0f, -6);
  } else if (e == 15 && m == 7) {
    v = std::nanf("");
  } else {
    v = std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
  }
  return (b & 0x80) ? -v : v;
}

// The rows of a checkpoint weight whose rope rows interleave (x[2i], x[2i+1]) pairs reordered to
// halves (all even, then all odd) within each rope segment: segment s covers rows
// [first + s·stride, first + s·stride + rope). Returns the old row of each new row.
std::vector<int64_t> DeinterleaveRows(int64_t rows, int64_t first, int64_t stride, int64_t segments, int64_t rope) {
  std::vector<int64_t> perm(rows);
  for (int64_t r = 0; r < rows; ++r) perm[r] = r;
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t base = first + s * stride;
    for (int64_t j = 0; j < rope / 2; ++j) {
      perm[base + j] = base + 2 * j;
      perm[base + rope / 2 + j] = base + 2 * j + 1;
    }
  }
  return perm;
}

constexpr int64_t kFp8Block = 128;

}  // namespace

// Reads tensors by name into backend buffers, checking dtype and shape.
class WeightLoader {
 public:
  WeightLoader(TensorSource& source, Backend& backend, const std::vector<TensorDesc>& tensors,
               ModelWeights& out)
      : source_(source), backend_(backend), out_(out) {
    for (const TensorDesc& t : tensors) descs_.emplace(t.name, t);
  }

  bool Has(const std::string& name) const { return descs_.count(name) > 0; }

  // A weight of shape [rows, cols] ([cols] for rows == 0: a vector, viewed as [1, cols]). An
  // F8_E4M3 weight comes with its `<name>_scale_inv` (f32, one per 128 x 128 block). `row_perm`
  // (optional) reorders the rows: new row i is stored row row_perm[i].
  Result<WeightView> Get(const std::string& name, int64_t rows, int64_t cols, bool to_f32 = false,
                         const std::vector<int64_t>* row_perm = nullptr) {
    ASSIGN_OR_RETURN(const TensorDesc* d, Find(name, rows, cols));
    std::vector<uint8_t> host(d->bytes());
    RETURN_IF_ERROR(source_.ReadTensor(name, host));
    DType dtype = d->dtype;
    std::vector<float> scales;
    if (dtype == DType::kF8E4M3) {
      if (to_f32 || rows == 0) return InvalidArgumentError("tensor " + name + " may not be F8_E4M3");
      ASSIGN_OR_RETURN(scales, Scales(name, rows, cols));
      if (row_perm) {
        for (int64_t r = 0; r < rows; ++r) {
          if ((*row_perm)[r] / kFp8Block != r / kFp8Block) {
            return UnimplementedError("tensor " + name + ": rope rows cross a 128-row scale block");
          }
        }
      }
    } else if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
      return InvalidArgumentError("tensor " + name + " has an unsupported dtype " + std::string(DTypeName(dtype)));
    }
    if (to_f32 && dtype != DType::kF32) {  // biases are added in f32
      std::vector<uint8_t> f(d->bytes() / DTypeSize(dtype) * 4);
      HostToF32(host.data(), dtype, d->bytes() / DTypeSize(dtype), reinterpret_cast<float*>(f.data()));
      host = std::move(f);
      dtype = DType::kF32;
    }
    if (row_perm) {
      const size_t row_bytes = host.size() / rows;
      std::vector<uint8_t> permuted(host.size());
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(permuted.data() + r * row_bytes, host.data() + (*row_perm)[r] * row_bytes, row_bytes);
      }
      host = std::move(permuted);
    }
    ASSIGN_OR_RETURN(WeightView v, Upload(host.data(), host.size(), dtype, rows == 0 ? 1 : rows, cols));
    if (!scales.empty()) {
      ASSIGN_OR_RETURN(WeightView s, Upload(scales.data(), scales.size() * sizeof(float), DType::kF32, 1,
                                            static_cast<int64_t>(scales.size())));
      v.scales = static_cast<const float*>(s.data);
      v.block_rows = v.block_cols = kFp8Block;
    }
    return v;
  }

  // A weight's stored bytes and dtype, read to the host (shape checked).
  Result<std::pair<DType, std::vector<uint8_t>>> HostRaw(const std::string& name, int64_t rows, int64_t cols) {
    ASSIGN_OR_RETURN(const TensorDesc* d, Find(name, rows, cols));
    std::vector<uint8_t> host(d->bytes());
    RETURN_IF_ERROR(source_.ReadTensor(name, host));
    return std::make_pair(d->dtype, std::move(host));
  }

  // The F32 weight_scale_inv of an F8_E4M3 weight [rows, cols].
  Result<std::vector<float>> HostScales(const std::string& name, int64_t rows, int64_t cols) {
    return Scales(name, rows, cols);
  }

  // A weight read to the host as f32 [rows, cols] (F8_E4M3 dequantized with its block scales).
  Result<std::vector<float>> HostF32(const std::string& name, int64_t rows, int64_t cols) {
    ASSIGN_OR_RETURN(const TensorDesc* d, Find(name, rows, cols));
    std::vector<uint8_t> host(d->bytes());
    RETURN_IF_ERROR(source_.ReadTensor(name, host));
    const int64_t r = rows == 0 ? 1 : rows;
    std::vector<float> out(r * cols);
    if (d->dtype == DType::kF8E4M3) {
      ASSIGN_OR_RETURN(std::vector<float> scales, Scales(name, r, cols));
      const int64_t bc = (cols + kFp8Block - 1) / kFp8Block;
      for (int64_t i = 0; i < r; ++i) {
        for (int64_t j = 0; j < cols; ++j) {
          out[i * cols + j] = F8E4M3Value(host[i * cols + j]) * scales[(i / kFp8Block) * bc + j / kFp8Block];
        }
      }
    } else if (d->dtype == DType::kF32 || d->dtype == DType::kF16 || d->dtype == DType::kBF16) {
      HostToF32(host.data(), d->dtype, r * cols, out.data());
    } else {
      return InvalidArgumentError("tensor " + name + " has an unsupported dtype " + std::string(DTypeName(d->dtype)));
    }
    return out;
  }

  // f32 host data uploaded as a weight.
  Result<WeightView> Upload(const void* data, size_t bytes, DType dtype, int64_t rows, int64_t cols) {
    ASSIGN_OR_RETURN(std::unique_ptr<Buffer> buf, backend_.Alloc(bytes));
    backend_.Upload(buf->data(), {static_cast<const uint8_t*>(data), bytes});
    out_.bytes += bytes;
    WeightView v{buf->data(), dtype, rows, cols};
    out_.buffers_.push_back(std::move(buf));
    return v;
  }

 private:
  Result<const TensorDesc*> Find(const std::string& name, int64_t rows, int64_t cols) const {
    auto it = descs_.find(name);
    if (it == descs_.end()) return InvalidArgumentError("missing tensor " + name);
    const TensorDesc& d = it->second;
    const std::vector<int64_t> want = rows == 0 ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
    if (d.shape != want) {
      std::string got;
      for (int64_t s : d.shape) got += (got.empty() ? "" : ",") + std::to_string(s);
      return InvalidArgumentError("tensor " + name + " has shape [" + got + "], want [" +
                                  std::to_string(rows) + (rows ? "," : "") + std::to_string(cols) + "]");
    }
    return &d;
  }

  // The f32 [ceil(rows/128), ceil(cols/128)] `<name>_scale_inv` of an F8_E4M3 weight.
  Result<std::vector<float>> Scales(const std::string& name, int64_t rows, int64_t cols) {
    const std::string sname = name + "_scale_inv";
    const int64_t br = (rows + kFp8Block - 1) / kFp8Block, bc = (cols + kFp8Block - 1) / kFp8Block;
    ASSIGN_OR_RETURN(const TensorDesc* d, Find(sname, br, bc));
    if (d->dtype != DType::kF32) return InvalidArgumentError("tensor " + sname + " is not F32");
    std::vector<float> scales(br * bc);
    RETURN_IF_ERROR(source_.ReadTensor(sname, {reinterpret_cast<uint8_t*>(scales.data()), scales.size() * sizeof(float)}));
    for (float f : scales) {
      if (!std::isfinite(f)) return InvalidArgumentError("tensor " + sname + " holds a non-finite scale");
    }
    return scales;
  }

  TensorSource& source_;
  Backend& backend_;
  ModelWeights& out_;
  std::unordered_map<std::string, TensorDesc> descs_;
};

namespace {

// An F8_E4M3 kv_b whose head parts are whole 128 x 128 blocks, kept in FP8: uk_t holds each
// head's key part transposed, its blocks' scales transposed with it; uv the value parts as they are.
Status AbsorbFp8(WeightLoader& ld, const std::string& name, const std::vector<uint8_t>& w, int64_t heads,
                 int64_t nope, int64_t v, int64_t kvl, LayerWeights& L) {
  const int64_t rows = heads * (nope + v), B = kFp8Block, bc = kvl / B;
  ASSIGN_OR_RETURN(std::vector<float> scales, ld.HostScales(name, rows, kvl));
  std::vector<uint8_t> uk_t(heads * kvl * nope), uv(heads * v * kvl);
  std::vector<float> uk_s(heads * (kvl / B) * (nope / B)), uv_s(heads * (v / B) * bc);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t first = h * (nope + v);  // the head's first row in kv_b
    for (int64_t i = 0; i < nope; ++i) {
      for (int64_t j = 0; j < kvl; ++j) uk_t[(h * kvl + j) * nope + i] = w[(first + i) * kvl + j];
    }
    for (int64_t ib = 0; ib < nope / B; ++ib) {
      for (int64_t jb = 0; jb < bc; ++jb) uk_s[(h * bc + jb) * (nope / B) + ib] = scales[(first / B + ib) * bc + jb];
    }
    std::copy(w.begin() + (first + nope) * kvl, w.begin() + (first + nope + v) * kvl, uv.begin() + h * v * kvl);
    std::copy(scales.begin() + ((first + nope) / B) * bc, scales.begin() + ((first + nope + v) / B) * bc,
              uv_s.begin() + h * (v / B) * bc);
  }
  auto upload = [&](const std::vector<uint8_t>& data, const std::vector<float>& s, int64_t r, int64_t c) -> Result<WeightView> {
    ASSIGN_OR_RETURN(WeightView view, ld.Upload(data.data(), data.size(), DType::kF8E4M3, r, c));
    ASSIGN_OR_RETURN(WeightView sv, ld.Upload(s.data(), s.size() * sizeof(float), DType::kF32, 1, static_cast<int64_t>(s.size())));
    view.scales = static_cast<const float*>(sv.data);
    view.block_rows = view.block_cols = B;
    return view;
  };
  ASSIGN_OR_RETURN(L.uk_t, upload(uk_t, uk_s, heads * kvl, nope));
  ASSIGN_OR_RETURN(L.uv, upload(uv, uv_s, heads * v, kvl));
  return OkStatus();
}

// MLA's attention weights (docs/deepseek.md): kv_b is read to the host and held absorbed (uk_t,
// uv in f32); the rope rows of q/q_b and kv_a are de-interleaved when the checkpoint interleaves.
Status LoadMla(WeightLoader& ld, const ModelConfig& c, const std::string& p, LayerWeights& L) {
  const MlaConfig& m = c.mla_dims;
  const int64_t H = c.hidden, heads = c.heads, nope = m.qk_nope_head_dim, rope = m.qk_rope_head_dim;
  const int64_t kvl = m.kv_lora_rank, v = m.v_head_dim, qk = m.qk_head_dim();
  std::vector<int64_t> q_perm, kv_perm;
  if (m.rope_interleave) {
    q_perm = DeinterleaveRows(heads * qk, nope, qk, heads, rope);
    kv_perm = DeinterleaveRows(kvl + rope, kvl, 0, 1, rope);
  }
  const std::vector<int64_t>* qp = m.rope_interleave ? &q_perm : nullptr;
  if (m.q_lora_rank > 0) {
    ASSIGN_OR_RETURN(L.q_a, ld.Get(p + "self_attn.q_a_proj.weight", m.q_lora_rank, H));
    ASSIGN_OR_RETURN(L.q_a_norm, ld.Get(p + "self_attn.q_a_layernorm.weight", 0, m.q_lora_rank));
    ASSIGN_OR_RETURN(L.q_b, ld.Get(p + "self_attn.q_b_proj.weight", heads * qk, m.q_lora_rank, false, qp));
  } else {
    ASSIGN_OR_RETURN(L.q, ld.Get(p + "self_attn.q_proj.weight", heads * qk, H, false, qp));
  }
  ASSIGN_OR_RETURN(L.kv_a, ld.Get(p + "self_attn.kv_a_proj_with_mqa.weight", kvl + rope, H, false,
                                  m.rope_interleave ? &kv_perm : nullptr));
  ASSIGN_OR_RETURN(L.kv_a_norm, ld.Get(p + "self_attn.kv_a_layernorm.weight", 0, kvl));
  // kv_b split per head into uk_t and uv: in its own dtype when it is f32/f16/bf16 (a
  // rearrangement of elements, exact); F8_E4M3 kept with its blocks when every head's parts are
  // whole 128 x 128 blocks (V3), else dequantized to f32.
  const std::string kv_b_name = p + "self_attn.kv_b_proj.weight";
  ASSIGN_OR_RETURN(auto raw, ld.HostRaw(kv_b_name, heads * (nope + v), kvl));
  DType dtype = raw.first;
  if (dtype == DType::kF8E4M3 && nope % kFp8Block == 0 && v % kFp8Block == 0 && kvl % kFp8Block == 0) {
    RETURN_IF_ERROR(AbsorbFp8(ld, kv_b_name, raw.second, heads, nope, v, kvl, L));
  } else {
    std::vector<uint8_t> kv_b = std::move(raw.second);
    if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
      ASSIGN_OR_RETURN(std::vector<float> f, ld.HostF32(kv_b_name, heads * (nope + v), kvl));
      kv_b.resize(f.size() * sizeof(float));
      std::memcpy(kv_b.data(), f.data(), kv_b.size());
      dtype = DType::kF32;
    }
    const size_t es = DTypeSize(dtype);
    std::vector<uint8_t> uk_t(heads * kvl * nope * es), uv(heads * v * kvl * es);
    for (int64_t h = 0; h < heads; ++h) {
      const uint8_t* wk = kv_b.data() + h * (nope + v) * kvl * es;  // [nope, kvl]
      for (int64_t i = 0; i < nope; ++i) {
        for (int64_t j = 0; j < kvl; ++j) std::memcpy(&uk_t[((h * kvl + j) * nope + i) * es], wk + (i * kvl + j) * es, es);
      }
      std::memcpy(&uv[h * v * kvl * es], wk + nope * kvl * es, v * kvl * es);
    }
    ASSIGN_OR_RETURN(L.uk_t, ld.Upload(uk_t.data(), uk_t.size(), dtype, heads * kvl, nope));
    ASSIGN_OR_RETURN(L.uv, ld.Upload(uv.data(), uv.size(), dtype, heads * v, kvl));
  }
  ASSIGN_OR_RETURN(L.o, ld.Get(p + "self_attn.o_proj.weight", H, heads * v));
  return OkStatus();
}

}  // namespace

Result<std::unique_ptr<ModelWeights>> ModelWeights::Load(TensorSource& source, Backend& backend,
                                                         const ModelConfig& c,
                                                         const std::vector<TensorDesc>& tensors) {
  auto w = std::make_unique<ModelWeights>();
  WeightLoader ld(source, backend, tensors, *w);
  const int64_t H = c.hidden, qd = int64_t{c.heads} * c.head_dim, kvd = int64_t{c.kv_heads} * c.head_dim;
  ASSIGN_OR_RETURN(w->embed, ld.Get("model.embed_tokens.weight", c.vocab, H));
  ASSIGN_OR_RETURN(w->final_norm, ld.Get("model.norm.weight", 0, H));
  if (c.tie_embeddings && !ld.Has("lm_head.weight")) {
    w->lm_head = w->embed;
  } else {
    ASSIGN_OR_RETURN(w->lm_head, ld.Get("lm_head.weight", c.vocab, H));
  }
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerWeights L;
    ASSIGN_OR_RETURN(L.attn_norm, ld.Get(p + "input_layernorm.weight", 0, H));
    ASSIGN_OR_RETURN(L.ffn_norm, ld.Get(p + "post_attention_layernorm.weight", 0, H));
    if (c.mla) {
      RETURN_IF_ERROR(LoadMla(ld, c, p, L));
    } else {
      ASSIGN_OR_RETURN(L.q, ld.Get(p + "self_attn.q_proj.weight", qd, H));
      ASSIGN_OR_RETURN(L.k, ld.Get(p + "self_attn.k_proj.weight", kvd, H));
      ASSIGN_OR_RETURN(L.v, ld.Get(p + "self_attn.v_proj.weight", kvd, H));
      ASSIGN_OR_RETURN(L.o, ld.Get(p + "self_attn.o_proj.weight", H, qd));
    }
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(L.q_bias, ld.Get(p + "self_attn.q_proj.bias", 0, qd, true));
      ASSIGN_OR_RETURN(L.k_bias, ld.Get(p + "self_attn.k_proj.bias", 0, kvd, true));
      ASSIGN_OR_RETURN(L.v_bias, ld.Get(p + "self_attn.v_proj.bias", 0, kvd, true));
    }
    if (c.qk_norm == QkNorm::kPerHead) {
      ASSIGN_OR_RETURN(L.q_norm, ld.Get(p + "self_attn.q_norm.weight", 0, c.head_dim));
      ASSIGN_OR_RETURN(L.k_norm, ld.Get(p + "self_attn.k_norm.weight", 0, c.head_dim));
    } else if (c.qk_norm == QkNorm::kFull) {
      ASSIGN_OR_RETURN(L.q_norm, ld.Get(p + "self_attn.q_norm.weight", 0, qd));
      ASSIGN_OR_RETURN(L.k_norm, ld.Get(p + "self_attn.k_norm.weight", 0, kvd));
    }
    L.moe = c.IsMoeLayer(l);
    if (L.moe) {
      ASSIGN_OR_RETURN(L.router, ld.Get(c.RouterTensor(l), c.experts, H));
      if (c.arch == Arch::kQwen2Moe && c.shared_intermediate > 0) {
        const std::string s = p + "mlp.shared_expert.";
        const int64_t I = c.shared_intermediate;
        ASSIGN_OR_RETURN(L.shared_gate, ld.Get(s + "gate_proj.weight", I, H));
        ASSIGN_OR_RETURN(L.shared_up, ld.Get(s + "up_proj.weight", I, H));
        ASSIGN_OR_RETURN(L.shared_down, ld.Get(s + "down_proj.weight", H, I));
        ASSIGN_OR_RETURN(L.shared_expert_gate, ld.Get(p + "mlp.shared_expert_gate.weight", 1, H));
      }
      if (c.IsDeepseek() && c.shared_intermediate > 0) {  // n_shared_experts, no gate
        const std::string s = p + "mlp.shared_experts.";
        const int64_t I = c.shared_intermediate;
        ASSIGN_OR_RETURN(L.shared_gate, ld.Get(s + "gate_proj.weight", I, H));
        ASSIGN_OR_RETURN(L.shared_up, ld.Get(s + "up_proj.weight", I, H));
        ASSIGN_OR_RETURN(L.shared_down, ld.Get(s + "down_proj.weight", H, I));
      }
      if (c.IsDeepseek() && c.topk_method == TopkMethod::kNoauxTc) {
        const std::string bias = p + "mlp.gate.e_score_correction_bias";
        ASSIGN_OR_RETURN(L.router_bias, ld.HostF32(bias, 0, c.experts));
        for (float f : L.router_bias) {
          if (!std::isfinite(f)) return InvalidArgumentError("tensor " + bias + " holds a non-finite value");
        }
      }
    } else {
      const int64_t I = c.intermediate;
      ASSIGN_OR_RETURN(L.gate, ld.Get(p + "mlp.gate_proj.weight", I, H));
      ASSIGN_OR_RETURN(L.up, ld.Get(p + "mlp.up_proj.weight", I, H));
      ASSIGN_OR_RETURN(L.down, ld.Get(p + "mlp.down_proj.weight", H, I));
    }
    w->layers.push_back(L);
  }
  return w;
}

// --- ExpertCache ---

ExpertCache::ExpertCache(TensorSource& source, Backend& backend, const ModelConfig& config,
                         const std::vector<TensorDesc>& tensors, uint64_t budget_bytes, ExpertDType dtype,
                         uint64_t host_tier_bytes)
    : source_(source), backend_(backend), config_(config), budget_(budget_bytes), dtype_(dtype),
      host_tier_budget_(backend.host_memory() ? 0 : host_tier_bytes) {
  for (const TensorDesc& t : tensors) descs_.emplace(t.name, t);
  const size_t keys = static_cast<size_t>(std::max(0, config_.layers)) * std::max(0, config_.experts);
  uses_.assign(keys, 0.0);
  used_at_.assign(keys, 0);
  // About 128 tokens' worth of expert uses: long enough to learn which experts a text favours,
  // short enough to follow a change of topic.
  half_life_ = 128.0 * std::max(1, config_.layers) * std::max(1, config_.top_k);
  loader_ = std::thread([this] { LoaderLoop(); });
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_.notify_all();
  loader_.join();
}

Result<uint64_t> ExpertCache::Validate() {
  uint64_t total = 0;
  const int64_t H = config_.hidden, I = config_.moe_intermediate;
  for (int l = 0; l < config_.layers; ++l) {
    if (!config_.IsMoeLayer(l)) continue;
    for (int e = 0; e < config_.experts; ++e) {
      for (int which = 0; which < 3; ++which) {
        const std::string name = config_.ExpertTensor(l, e, which);
        auto it = descs_.find(name);
        if (it == descs_.end()) return InvalidArgumentError("missing tensor " + name);
        const std::vector<int64_t> want = which == 2 ? std::vector<int64_t>{H, I} : std::vector<int64_t>{I, H};
        if (it->second.shape != want) return InvalidArgumentError("tensor " + name + " has an unexpected shape");
        ASSIGN_OR_RETURN(const ExpertTensorPlan plan, PlanExpertTensor(descs_, name, dtype_));
        total += plan.bytes;
      }
    }
  }
  expert_bytes_ = total / std::max(1, config_.experts * config_.layers);
  return total;
}

Result<std::shared_ptr<const Expert>> ExpertCache::LoadExpert(int layer, int expert) {
  const auto start = std::chrono::steady_clock::now();
  auto e = std::make_shared<Expert>();
  ExpertTensorPlan plans[3];
  for (int which = 0; which < 3; ++which) {
    ASSIGN_OR_RETURN(plans[which], PlanExpertTensor(descs_, config_.ExpertTensor(layer, expert, which), dtype_));
    e->bytes += plans[which].bytes;
  }
  // Each projection starts 64-byte aligned (the padding, < 192 bytes, is not counted).
  if (host_tier_budget_ > 0) {  // a device: one upload of the image the host tier holds
    ASSIGN_OR_RETURN(std::shared_ptr<const HostImage> image,
                     TierImage((uint64_t(layer) << 32) | uint32_t(expert), plans, e->bytes + 3 * 64));
    ASSIGN_OR_RETURN(e->buffer, backend_.Alloc(image->bytes.size()));
    backend_.Upload(e->buffer->data(), image->bytes);
    uint8_t* base = static_cast<uint8_t*>(e->buffer->data());
    WeightView* out[3] = {&e->gate, &e->up, &e->down};
    for (int which = 0; which < 3; ++which) {
      *out[which] = image->views[which];
      out[which]->data = base + reinterpret_cast<uintptr_t>(image->views[which].data);
      if (image->views[which].scales) {
        out[which]->scales = reinterpret_cast<const float*>(base + reinterpret_cast<uintptr_t>(image->views[which].scales));
      }
    }
  } else {
    ASSIGN_OR_RETURN(e->buffer, backend_.Alloc(e->bytes + 3 * 64));
    // Held as stored on a host backend: one copy, straight into the expert's buffer.
    thread_local std::vector<uint8_t> staging;
    uint64_t offset = 0;
    WeightView* views[3] = {&e->gate, &e->up, &e->down};
    for (int which = 0; which < 3; ++which) {
      uint8_t* dst = static_cast<uint8_t*>(e->buffer->data()) + offset;
      ASSIGN_OR_RETURN(*views[which], LoadExpertTensor(source_, backend_, plans[which], dst, staging));
      offset += (plans[which].bytes + 63) / 64 * 64;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::lock_guard lock(mu_);
  stats_.bytes_loaded += e->bytes;
  stats_.load_seconds += seconds;
  return std::shared_ptr<const Expert>(std::move(e));
}

Result<std::shared_ptr<const ExpertCache::HostImage>> ExpertCache::TierImage(Key key, const ExpertTensorPlan (&plans)[3],
                                                                              uint64_t bytes) {
  {
    std::lock_guard lock(tier_mu_);
    auto it = tier_.find(key);
    if (it != tier_.end()) {
      tier_lru_.splice(tier_lru_.begin(), tier_lru_, it->second.second);
      ++tier_hits_;
      return it->second.first;
    }
  }
  auto image = std::make_shared<HostImage>();
  image->bytes.resize(bytes);
  thread_local std::vector<uint8_t> staging;
  uint64_t offset = 0;
  for (int which = 0; which < 3; ++which) {
    uint8_t* dst = image->bytes.data() + offset;
    ASSIGN_OR_RETURN(WeightView v, LoadExpertTensor(source_, backend_, plans[which], dst, staging, /*dst_on_host=*/true));
    // Offsets from the image's start: the caller rebases them onto the device buffer.
    v.data = reinterpret_cast<const void*>(static_cast<uintptr_t>(static_cast<const uint8_t*>(v.data) - image->bytes.data()));
    if (v.scales) {
      v.scales = reinterpret_cast<const float*>(
          static_cast<uintptr_t>(reinterpret_cast<const uint8_t*>(v.scales) - image->bytes.data()));
    }
    image->views[which] = v;
    offset += (plans[which].bytes + 63) / 64 * 64;
  }
  std::lock_guard lock(tier_mu_);
  if (auto it = tier_.find(key); it != tier_.end()) return it->second.first;  // the other thread was first
  if (image->bytes.size() <= host_tier_budget_) {
    tier_lru_.push_front(key);
    tier_.emplace(key, std::make_pair(image, tier_lru_.begin()));
    tier_bytes_ += image->bytes.size();
    while (tier_bytes_ > host_tier_budget_ && tier_lru_.size() > 1) {
      auto victim = tier_.find(tier_lru_.back());
      tier_bytes_ -= victim->second.first->bytes.size();
      tier_.erase(victim);
      tier_lru_.pop_back();
    }
  }
  return std::shared_ptr<const HostImage>(std::move(image));
}

void ExpertCache::Insert(Key key, std::shared_ptr<const Expert> expert, bool prefetched) {
  if (entries_.count(key)) return;
  // A prefetch never evicts: with a full cache, a wrong prediction would push out an expert the
  // model is using (measured: at a 25% budget, evicting prefetches tripled the bytes loaded).
  if (prefetched && budget_ > 0 && stats_.resident_bytes + expert->bytes > budget_) {
    ++stats_.prefetches_dropped;
    return;
  }
  // A prefetched expert enters at the cold end: until a step uses it (which moves it to the
  // front) it is the first to go, so a wrong prediction evicts other predictions, not the
  // experts the model is using.
  if (prefetched) {
    lru_.push_back(key);
  } else {
    lru_.push_front(key);
  }
  stats_.resident_bytes += expert->bytes;
  entries_[key] = Entry{std::move(expert), prefetched ? std::prev(lru_.end()) : lru_.begin(), prefetched};
  // Evict beyond the budget, never the one just inserted: the entry used least often lately
  // (decayed frequency; the colder wins a tie). A trained router spreads a text over nearly all
  // experts and a token's experts are rarely its predecessor's, so recency says little; how often
  // an expert served the text so far says more (bench/RESULTS.md "Experts on a trained router":
  // at 25% the hit rate on held-out text went from 0.32 to 0.5, Belady's optimum 0.67; LRU, and
  // the random entry of the colder half used before, keep almost nothing at 10%).
  while (budget_ > 0 && stats_.resident_bytes > budget_ && lru_.size() > 1) {
    auto victim = lru_.end();
    double least = 0;
    for (auto it = std::prev(lru_.end());; --it) {
      if (*it != key) {
        const double f = Frequency(*it);
        if (victim == lru_.end() || f < least) {
          victim = it;
          least = f;
        }
      }
      if (it == lru_.begin()) break;
    }
    stats_.resident_bytes -= entries_[*victim].expert->bytes;
    entries_.erase(*victim);
    lru_.erase(victim);
    ++stats_.evictions;
  }
}

void ExpertCache::Touch(Key key) {
  const size_t i = static_cast<size_t>(key >> 32) * config_.experts + static_cast<uint32_t>(key);
  if (i >= uses_.size()) return;
  ++clock_;
  uses_[i] = uses_[i] * std::exp2(-static_cast<double>(clock_ - used_at_[i]) / half_life_) + 1;
  used_at_[i] = clock_;
}

double ExpertCache::Frequency(Key key) const {
  const size_t i = static_cast<size_t>(key >> 32) * config_.experts + static_cast<uint32_t>(key);
  if (i >= uses_.size()) return 0;
  return uses_[i] * std::exp2(-static_cast<double>(clock_ - used_at_[i]) / half_life_);
}

Result<std::vector<std::shared_ptr<const Expert>>> ExpertCache::Acquire(int layer, std::span<const int> experts) {
  std::vector<std::shared_ptr<const Expert>> out(experts.size());
  std::vector<std::pair<Key, size_t>> misses;  // key, index in `experts`
  {
    std::unique_lock lock(mu_);
    for (size_t i = 0; i < experts.size(); ++i) {
      const Key key = (uint64_t(layer) << 32) | uint32_t(experts[i]);
      loaded_.wait(lock, [&] { return !in_flight_.count(key); });
      Touch(key);
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        ++stats_.hits;
        if (it->second.prefetched) {
          ++stats_.prefetch_hits;
          it->second.prefetched = false;
        }
        out[i] = it->second.expert;
        continue;
      }
      ++stats_.misses;
      in_flight_[key] = true;
      misses.emplace_back(key, i);
    }
    if (misses.empty()) return out;
    // The misses load on this thread and on the loader thread at once (before its prefetches):
    // a layer's misses are independent reads.
    for (const auto& [key, i] : misses) demand_.push_back(key);
  }
  if (misses.size() > 1) work_.notify_all();
  for (;;) {
    Key key;
    {
      std::lock_guard lock(mu_);
      if (demand_.empty()) break;
      key = demand_.front();
      demand_.pop_front();
    }
    auto loaded = LoadExpert(static_cast<int>(key >> 32), static_cast<int>(key & 0xFFFFFFFF));
    std::lock_guard lock(mu_);
    demand_done_.emplace(key, std::move(loaded));
  }
  std::unique_lock lock(mu_);
  loaded_.wait(lock, [&] {
    for (const auto& [key, i] : misses) {
      if (!demand_done_.count(key)) return false;
    }
    return true;
  });
  Status failed;
  for (const auto& [key, i] : misses) {
    auto node = demand_done_.extract(key);
    in_flight_.erase(key);
    if (!node.mapped().ok()) {
      if (failed.ok()) failed = node.mapped().status();
      continue;
    }
    out[i] = *node.mapped();
    Insert(key, std::move(*node.mapped()), false);
  }
  loaded_.notify_all();
  if (!failed.ok()) return failed;
  return out;
}

void ExpertCache::Prefetch(int layer, std::span<const int> experts) {
  {
    std::lock_guard lock(mu_);
    for (int e : experts) {
      ++stats_.prefetch_requests;
      const Key key = (uint64_t(layer) << 32) | uint32_t(e);
      if (entries_.count(key) || in_flight_.count(key)) {
        ++stats_.prefetch_present;
        continue;
      }
      if (budget_ > 0 && stats_.resident_bytes + expert_bytes_ > budget_) {  // full: see Insert
        ++stats_.prefetches_dropped;
        continue;
      }
      in_flight_[key] = true;
      queue_.push_back(key);
    }
  }
  work_.notify_one();
}

void ExpertCache::LoaderLoop() {
  for (;;) {
    Key key;
    bool demand = false;
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return stop_ || !queue_.empty() || !demand_.empty(); });
      if (stop_) {  // demand loads left are loaded by their caller, which drains demand_ too
        for (Key k : queue_) in_flight_.erase(k);
        queue_.clear();
        loaded_.notify_all();
        return;
      }
      demand = !demand_.empty();
      std::deque<Key>& from = demand ? demand_ : queue_;
      key = from.front();
      from.pop_front();
    }
    auto loaded = LoadExpert(static_cast<int>(key >> 32), static_cast<int>(key & 0xFFFFFFFF));
    std::lock_guard lock(mu_);
    if (demand) {  // its caller inserts it
      demand_done_.emplace(key, std::move(loaded));
      loaded_.notify_all();
      continue;
    }
    in_flight_.erase(key);
    if (loaded.ok()) {
      ++stats_.prefetches;
      Insert(key, std::move(*loaded), true);
    } else {
      LOG(Warning) << "expert prefetch failed: " << loaded.status().ToString();
    }
    loaded_.notify_all();
  }
}

ExpertCacheStats ExpertCache::stats() const {
  ExpertCacheStats s;
  {
    std::lock_guard lock(mu_);
    s = stats_;
  }
  std::lock_guard lock(tier_mu_);
  s.host_tier_hits = tier_hits_;
  s.host_tier_bytes = tier_bytes_;
  return s;
}

}  // namespace hubnode::runtime

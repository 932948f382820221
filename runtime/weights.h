// A model's weights in backend memory: the resident (non-expert) tensors, loaded once, and the
// routed experts behind an ExpertCache with a byte budget, least-often-used eviction (decayed
// frequency) and a prefetch thread.
//
// Thread safety: ModelWeights is immutable after Load. ExpertCache is thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/backend.h"
#include "runtime/config.h"
#include "runtime/expert_load.h"

namespace hubnode::runtime {

struct LayerWeights {
  WeightView attn_norm, ffn_norm;
  WeightView q, k, v, o;
  WeightView q_bias, k_bias, v_bias;  // f32 [1, n] or empty
  WeightView q_norm, k_norm;          // empty without QK-norm
  WeightView gate, up, down;          // dense MLP (non-MoE layers)
  WeightView router;                  // [experts, hidden]
  // Qwen2-MoE's gated shared expert, DeepSeek's ungated shared experts (shared_expert_gate empty).
  WeightView shared_gate, shared_up, shared_down, shared_expert_gate;
  std::vector<float> router_bias;  // host f32 [experts]: DeepSeek-V3's e_score_correction_bias
  // MLA (DeepSeek). q_a/q_a_norm/q_b, or q (above) without q-LoRA; kv_a [kv_lora + rope, hidden]
  // and kv_a_norm [kv_lora]. The rope rows of q/q_b and kv_a are stored de-interleaved when the
  // checkpoint interleaves them (same permutation on both sides: the scores do not change).
  // kv_b [heads·(nope + v), kv_lora] is held absorbed: uk_t [heads·kv_lora, nope] (each head's
  // key up-projection transposed, applied to the query) and uv [heads·v, kv_lora], in kv_b's dtype
  // (f32 for an F8_E4M3 kv_b, dequantized).
  WeightView q_a, q_a_norm, q_b, kv_a, kv_a_norm, uk_t, uv;
  bool moe = false;
};

class ModelWeights {
 public:
  // Reads every non-expert tensor through `source` into `backend` memory, checking each
  // tensor's presence, dtype and shape against `config` (InvalidArgument naming the tensor).
  static Result<std::unique_ptr<ModelWeights>> Load(TensorSource& source, Backend& backend,
                                                    const ModelConfig& config,
                                                    const std::vector<TensorDesc>& tensors);
  WeightView embed, final_norm, lm_head;
  std::vector<LayerWeights> layers;
  uint64_t bytes = 0;

 private:
  std::vector<std::unique_ptr<Buffer>> buffers_;
  friend class WeightLoader;
};

// One routed expert's three projections in backend memory.
struct Expert {
  std::unique_ptr<Buffer> buffer;
  WeightView gate, up, down;
  uint64_t bytes = 0;
};

struct ExpertCacheStats {
  uint64_t hits = 0, misses = 0, prefetches = 0, prefetch_hits = 0, prefetches_dropped = 0, evictions = 0;
  // Experts Prefetch() was asked for, and of those the ones already held or loading. The rest
  // are queued for the loader thread (`prefetches` counts those it loaded) or dropped for want of
  // free budget when asked; `prefetches_dropped` counts those and the loads dropped on arrival.
  uint64_t prefetch_requests = 0, prefetch_present = 0;
  uint64_t bytes_loaded = 0, resident_bytes = 0;
  double load_seconds = 0;
  // A device backend's host tier: loads served from it (no read through the source, no
  // conversion), and the bytes it holds.
  uint64_t host_tier_hits = 0, host_tier_bytes = 0;
};

class ExpertCache {
 public:
  // budget_bytes 0 = unlimited. `tensors` is the source's tensor list (shapes and dtypes).
  // Experts are held in `dtype` (runtime/expert_load.h); the budget counts their bytes as held.
  // On a device backend (not host memory) `host_tier_bytes` of host memory keep the images of
  // experts loaded before (as held: read and converted once), so an expert evicted from device
  // memory comes back with one upload; least recently loaded goes first; 0 = no host tier.
  ExpertCache(TensorSource& source, Backend& backend, const ModelConfig& config,
              const std::vector<TensorDesc>& tensors, uint64_t budget_bytes,
              ExpertDType dtype = ExpertDType::kStored, uint64_t host_tier_bytes = 0);
  ~ExpertCache();

  // Checks that every routed expert's tensors exist with consistent shapes and dtypes and can be
  // held in the cache's dtype; returns the bytes of all experts as held. InvalidArgument naming
  // the tensor otherwise.
  Result<uint64_t> Validate();

  // The experts of `layer`, loading misses through the source (on the caller's thread and the
  // loader thread at once).
  // The returned pointers keep the experts alive while used, even if evicted meanwhile.
  // shared_ptr: an expert is owned by the cache and by the steps that use it.
  Result<std::vector<std::shared_ptr<const Expert>>> Acquire(int layer, std::span<const int> experts);

  // Queues loads of experts likely needed soon (the loader thread ignores those held/in flight).
  // Prefetches only fill free budget; they never evict.
  void Prefetch(int layer, std::span<const int> experts);

  ExpertCacheStats stats() const;
  uint64_t budget() const { return budget_; }

 private:
  using Key = uint64_t;  // layer << 32 | expert
  struct Entry {
    std::shared_ptr<const Expert> expert;
    std::list<Key>::iterator lru;
    bool prefetched = false;
  };
  Result<std::shared_ptr<const Expert>> LoadExpert(int layer, int expert);
  // An expert's bytes as held, in host memory, and where its three views start in them.
  struct HostImage {
    std::vector<uint8_t> bytes;
    WeightView views[3];  // data and scales as offsets from bytes.data()
  };
  // The host tier's image of `key`, read and converted when it has none. Any thread.
  Result<std::shared_ptr<const HostImage>> TierImage(Key key, const ExpertTensorPlan (&plans)[3], uint64_t bytes);
  void Insert(Key key, std::shared_ptr<const Expert> expert, bool prefetched);  // REQUIRES: mu_
  // Counts a use of `key` (decayed frequency: each use adds 1, halving over half_life_ uses of
  // any expert). REQUIRES: mu_
  void Touch(Key key);
  double Frequency(Key key) const;  // REQUIRES: mu_
  void LoaderLoop();

  TensorSource& source_;
  Backend& backend_;
  const ModelConfig& config_;
  std::unordered_map<std::string, TensorDesc> descs_;
  const uint64_t budget_;
  const ExpertDType dtype_;
  uint64_t expert_bytes_ = 0;  // a typical expert's size (set by Validate)
  const uint64_t host_tier_budget_;

  mutable std::mutex tier_mu_;  // the host tier (loads run on two threads outside mu_)
  std::unordered_map<Key, std::pair<std::shared_ptr<const HostImage>, std::list<Key>::iterator>> tier_;
  std::list<Key> tier_lru_;  // front = most recently loaded
  uint64_t tier_bytes_ = 0, tier_hits_ = 0;

  mutable std::mutex mu_;
  std::condition_variable loaded_, work_;
  std::unordered_map<Key, Entry> entries_;
  std::list<Key> lru_;  // front = most recently used
  std::map<Key, bool> in_flight_;
  std::deque<Key> queue_;   // prefetches for the loader thread
  std::deque<Key> demand_;  // misses of an Acquire, loaded by its caller and the loader thread
  std::unordered_map<Key, Result<std::shared_ptr<const Expert>>> demand_done_;
  bool stop_ = false;
  ExpertCacheStats stats_;
  // Decayed use counts of every (layer, expert), held or not (index layer * experts + expert).
  std::vector<double> uses_;
  std::vector<uint64_t> used_at_;
  uint64_t clock_ = 0;  // expert uses so far
  double half_life_ = 1;
  std::thread loader_;
};

}  // namespace hubnode::runtime

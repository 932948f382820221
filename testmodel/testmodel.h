// testmodel: writes small, deterministic, randomly initialised Hugging Face style checkpoints
// (config.json, sharded safetensors with an index, a trained byte-level BPE tokenizer.json,
// tokenizer_config.json with a chat template, generation_config.json, README.md model card and
// LICENSE) for the MoE families Mixtral, Qwen2-MoE, Qwen3-MoE and OLMoE and the dense families
// Llama, Qwen2 and Qwen3. Tests, benchmarks and demos use them in place of real checkpoints, which
// cannot be downloaded here. A fine-tune mode derives a second checkpoint from a generated one
// with a chosen set of tensors re-drawn, so deduplication across related models can be exercised.
//
// Same options, same bytes: every file is a pure function of the options (including the seed),
// whatever the thread count. The weights are noise, not a trained model.
//
// Thread safety: the functions are reentrant; concurrent calls must use different out_dirs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace hubnode::testmodel {

enum class Family { kMixtral, kQwen2Moe, kQwen3Moe, kOlmoe, kLlama, kQwen2, kQwen3, kDeepseekV2, kDeepseekV3 };

// The config.json model_type: "mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "llama", "qwen2",
// "qwen3". ParseFamily is its inverse; InvalidArgument for any other name.
std::string_view FamilyName(Family family);
Result<Family> ParseFamily(std::string_view name);
// True for the mixture-of-experts families.
bool IsMoe(Family family);

// kF8E4M3 ("fp8"): DeepSeek-V3's release layout: the Linear weights of the layers F8_E4M3 with an
// F32 `weight_scale_inv` per 128 x 128 block; embeddings, lm_head, norms and routers bf16.
enum class DType { kBF16, kF16, kF32, kF8E4M3 };

// "bf16", "fp16" or "fp32" (also the safetensors spellings "BF16", "F16", "F32").
// InvalidArgument otherwise.
Result<DType> ParseDType(std::string_view name);
std::string_view DTypeName(DType dtype);  // "bf16", "fp16", "fp32", "fp8"

struct Options {
  // The architecture written to config.json and the tensor layout of the shards.
  // Default: OLMoE.
  Family family = Family::kOlmoe;

  // Size preset: "tiny" (~0.4 MB, for unit tests), "small" (~15 MB), "medium" (~165 MB) or
  // "bench" (~1.05 GB, OLMoE-shaped); sizes for the MoE families in bf16 (Qwen2-MoE's shared
  // expert adds ~30%, dense families are 40-70% smaller). The fields below override single
  // dimensions.
  // Default: "tiny".
  std::string size = "tiny";

  // Model width (hidden_size). Must be divisible by `heads` unless `head_dim` is set.
  // Default: from the preset (tiny 64, small 256, medium 512, bench 1024).
  std::optional<int> hidden;
  // Decoder layers (num_hidden_layers). Default: from the preset (2, 4, 8, 16).
  std::optional<int> layers;
  // Routed experts per MoE layer; ignored by dense families. Default: preset (4, 8, 16, 64).
  std::optional<int> experts;
  // Experts per token (num_experts_per_tok), 1..experts; ignored by dense families.
  // Default: preset (2, 2, 4, 8).
  std::optional<int> top_k;
  // Width of a dense MLP: the whole MLP of llama/qwen2/qwen3, the dense layers and the shared
  // expert of qwen2_moe, the mlp_only_layers of qwen3_moe. Mixtral and OLMoE have no dense MLP and
  // call their expert width intermediate_size, so for them this is the expert width (an alias of
  // moe_intermediate; setting both to different values is InvalidArgument).
  // Default: preset (128, 1024, 2048, 4096).
  std::optional<int> intermediate;
  // Width of one routed expert (moe_intermediate_size). Default: preset (64, 256, 384, 144).
  std::optional<int> moe_intermediate;
  // Attention heads (num_attention_heads). Default: preset (4, 8, 8, 16).
  std::optional<int> heads;
  // Key/value heads (num_key_value_heads); must divide `heads`. Default: preset (2, 4, 4, 16).
  std::optional<int> kv_heads;
  // Per-head width, written as head_dim; only qwen3 and qwen3_moe may set it (their configs carry
  // it, and then q_proj's width is heads * head_dim rather than hidden). Must be even.
  // Default: hidden / heads.
  std::optional<int> head_dim;
  // Number of safetensors shards, 1..number of tensors. Default: preset (2, 2, 3, 4).
  std::optional<int> shards;
  // qwen2_moe / qwen3_moe only: layers whose MLP is dense instead of MoE (mlp_only_layers).
  // Each must be in [0, layers). Default: none.
  std::vector<int> mlp_only_layers;

  // Text the tokenizer's BPE merges are learned from instead of the built-in corpus (e.g. the
  // corpus a model is then trained on, tools/train). At most 64 MiB. Default: empty (built-in).
  std::string corpus;
  // BPE merges learned, 1..65000. Default: from the preset (tiny 200 ... bench 2000).
  std::optional<int> merges;

  // Weight dtype (torch_dtype). Default: bf16.
  DType dtype = DType::kBF16;
  // Drives every random choice (weights only; the tokenizer is the same for every seed).
  // Default: 1.
  uint64_t seed = 1;
  // License id for the model card, e.g. "apache-2.0"; lowercase letters, digits, '.', '-'.
  // Ids with a text in /usr/share/common-licenses (apache-2.0, gpl-3.0, gpl-2.0, lgpl-3.0,
  // lgpl-2.1, mpl-2.0, cc0-1.0, bsd-3-clause, artistic-2.0) also get a LICENSE file.
  // Default: "apache-2.0".
  std::string license = "apache-2.0";
  // Extra model-card tags, after "hubnode-testmodel", the family and "moe" (MoE families).
  // Each must be non-empty printable ASCII without spaces, ':', '#', quotes, commas, brackets.
  // Default: none.
  std::vector<std::string> tags;
  // Worker threads for drawing weights; 0 means one per core. The output does not depend on it.
  // Default: 0.
  int threads = 0;
};

struct Summary {
  uint64_t total_bytes = 0;   // size of all files written
  uint64_t tensor_bytes = 0;  // tensor data bytes (the index's total_size)
  uint64_t parameters = 0;    // number of weights
  int shards = 0;
  int vocab_size = 0;              // config.json vocab_size (embedding rows)
  std::vector<std::string> files;  // names written, relative to out_dir, sorted
  // False when the license id has no text in /usr/share/common-licenses (unknown id, or the
  // file is not installed); the model card names the license either way.
  bool license_file_written = false;
};

// Writes a checkpoint for `options` into out_dir, creating it if needed.
// Errors: AlreadyExists when out_dir exists and is not an empty directory; InvalidArgument for
// bad options (unknown preset, zero sizes, top_k > experts, hidden not divisible by heads, ...);
// file-system errors as returned by base. On error out_dir may hold partial output.
Result<Summary> Generate(const Options& options, const std::string& out_dir);

struct FinetuneOptions {
  // Which tensors a fine-tune re-draws.
  enum class Mode {
    kExperts,    // every tensor of the experts listed in `experts`
    kAttention,  // every self_attn.* tensor (projections, biases, q/k norms)
    kFraction,   // round(fraction * tensor count) tensors (at least one), chosen from the seed
  };

  // A directory written by Generate or by an earlier GenerateFinetune. Required.
  std::string base_dir;
  // Written as base_model in the model card, e.g. "hubnode-test/olmoe-tiny". Required; printable
  // ASCII without spaces.
  std::string base_model_id;
  // Seed for the re-drawn tensors and for kFraction's choice. The streams are keyed apart from
  // Generate's, so reusing the base's seed still changes the selected tensors. Default: 2.
  uint64_t seed = 2;
  // Default: kAttention.
  Mode mode = Mode::kAttention;
  // kExperts: (layer, expert) pairs. Each must name an existing expert, or InvalidArgument.
  // Default: none.
  std::vector<std::pair<int, int>> experts;
  // kFraction: in (0, 1]. Default: 0.1.
  double fraction = 0.1;
  // Replaces the base's license (model card and LICENSE file). Default: keep the base's.
  std::optional<std::string> license;
  // As Options::threads. Default: 0.
  int threads = 0;
};

struct FinetuneSummary {
  uint64_t total_bytes = 0;                  // size of all files written
  std::vector<std::string> changed_tensors;  // sorted names of the re-drawn tensors
  uint64_t changed_bytes = 0;                // their data bytes
  std::vector<std::string> files;            // names written, relative to out_dir, sorted
  bool license_file_written = false;
};

// Copies base_dir to out_dir with the selected tensors re-drawn (same dtype, shape and offsets,
// so every other byte of every shard is identical) and README.md's front matter given
// base_model (and the new license, if any). Every other file is copied byte for byte.
// Errors: AlreadyExists as Generate; NotFound when base_dir is missing; InvalidArgument for bad
// options or a base_dir that does not hold a well-formed checkpoint of a known family (missing or
// malformed config.json, index, shard header or model card).
Result<FinetuneSummary> GenerateFinetune(const FinetuneOptions& options,
                                         const std::string& out_dir);

}  // namespace hubnode::testmodel

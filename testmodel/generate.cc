// Generate(): resolves the options, learns the tokenizer, lays out the shards and writes every
// file of the checkpoint.
#include <algorithm>
#include <map>
#include <memory>

#include "base/log.h"
#include "base/thread_pool.h"
#include "testmodel/card.h"
#include "testmodel/output.h"
#include "testmodel/safetensors.h"
#include "testmodel/shard_writer.h"
#include "testmodel/spec.h"
#include "testmodel/testmodel.h"
#include "testmodel/tokenizer.h"
#include "testmodel/weights.h"

namespace hubnode::testmodel {
namespace {

constexpr std::pair<Family, std::string_view> kFamilyNames[] = {
    {Family::kMixtral, "mixtral"},    {Family::kQwen2Moe, "qwen2_moe"},
    {Family::kQwen3Moe, "qwen3_moe"}, {Family::kOlmoe, "olmoe"},
    {Family::kLlama, "llama"},        {Family::kQwen2, "qwen2"},
    {Family::kQwen3, "qwen3"},        {Family::kDeepseekV2, "deepseek_v2"},
    {Family::kDeepseekV3, "deepseek_v3"},
};

// Refuses requests that would fill a disk by mistake (the bench preset is ~1 GB).
constexpr uint64_t kMaxTensorBytes = uint64_t{256} << 30;

// Splits tensors (in model order) into `shards` contiguous runs of roughly equal bytes: run k
// starts at the first tensor whose midpoint lies at or past k/shards of the total, moved as
// needed so that no run is empty. Keeping model order keeps a layer's tensors together.
std::vector<int> AssignShards(const std::vector<uint64_t>& sizes, int shards) {
  const size_t n = sizes.size();
  std::vector<uint64_t> before(n + 1, 0);  // bytes of the tensors before index t
  for (size_t t = 0; t < n; ++t) before[t + 1] = before[t] + sizes[t];
  const uint64_t total = before[n];
  std::vector<size_t> start(shards + 1, 0);
  start[shards] = n;
  size_t t = 0;
  for (int k = 1; k < shards; ++k) {
    // Midpoint before[t] + sizes[t] / 2 compared with total * k / shards, in integers (sizes are
    // capped far below 2^64 / (2 * shards)).
    while (t < n && (2 * before[t] + sizes[t]) * shards < 2 * total * k) ++t;
    start[k] = std::clamp(t, start[k - 1] + 1, n - static_cast<size_t>(shards - k));
  }
  std::vector<int> shard_of(n);
  for (int k = 0; k < shards; ++k) {
    for (size_t i = start[k]; i < start[k + 1]; ++i) shard_of[i] = k;
  }
  return shard_of;
}

size_t Threads(int requested) { return requested > 0 ? static_cast<size_t>(requested) : 0; }

}  // namespace

std::string_view FamilyName(Family family) {
  for (const auto& [f, name] : kFamilyNames) {
    if (f == family) return name;
  }
  return "";
}

Result<Family> ParseFamily(std::string_view name) {
  for (const auto& [f, n] : kFamilyNames) {
    if (n == name) return f;
  }
  return InvalidArgumentError("unknown model family \"" + std::string(name) +
                              "\" (want mixtral, qwen2_moe, qwen3_moe, olmoe, llama, qwen2, "
                              "qwen3, deepseek_v2 or deepseek_v3)");
}

bool IsMoe(Family family) {
  return family == Family::kMixtral || family == Family::kQwen2Moe || family == Family::kQwen3Moe ||
         family == Family::kOlmoe || family == Family::kDeepseekV2 || family == Family::kDeepseekV3;
}

Result<DType> ParseDType(std::string_view name) {
  if (name == "bf16" || name == "BF16" || name == "bfloat16") return DType::kBF16;
  if (name == "fp16" || name == "F16" || name == "float16") return DType::kF16;
  if (name == "fp32" || name == "F32" || name == "float32") return DType::kF32;
  if (name == "fp8" || name == "F8_E4M3") return DType::kF8E4M3;
  return InvalidArgumentError("unknown dtype \"" + std::string(name) +
                              "\" (want bf16, fp16, fp32, fp8)");
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
      return "bf16";
    case DType::kF16:
      return "fp16";
    case DType::kF32:
      return "fp32";
    case DType::kF8E4M3:
      return "fp8";
  }
  return "";
}

Result<Summary> Generate(const Options& options, const std::string& out_dir) {
  ASSIGN_OR_RETURN(ModelSpec spec, ResolveSpec(options));
  RETURN_IF_ERROR(ValidateLicenseId(options.license));
  std::vector<std::string> extra_tags;
  for (const std::string& tag : options.tags) {
    RETURN_IF_ERROR(ValidateTag(tag));
    const bool builtin = tag == "hubnode-testmodel" || tag == FamilyName(spec.family) ||
                         (tag == "moe" && IsMoe(spec.family));
    if (!builtin && std::find(extra_tags.begin(), extra_tags.end(), tag) == extra_tags.end()) {
      extra_tags.push_back(tag);
    }
  }

  if (options.corpus.size() > (size_t{64} << 20)) return InvalidArgumentError("the corpus is over 64 MiB");
  const TokenizerFiles tok = BuildTokenizer(spec.family, spec.merges, options.corpus);
  const int vocab_size = (tok.token_count + 63) / 64 * 64;
  const std::vector<TensorSpec> specs = ListTensors(spec, vocab_size);
  if (static_cast<size_t>(spec.shards) > specs.size()) {
    return InvalidArgumentError("shards (" + std::to_string(spec.shards) +
                                ") exceeds the number of tensors (" + std::to_string(specs.size()) +
                                ")");
  }
  std::vector<uint64_t> sizes;
  uint64_t parameters = 0, tensor_bytes = 0;
  for (const TensorSpec& t : specs) {
    sizes.push_back(t.numel() * DTypeSize(t.dtype));
    if (t.scale_of.empty()) parameters += t.numel();  // FP8 block scales are not parameters
    tensor_bytes += sizes.back();
    if (tensor_bytes > kMaxTensorBytes) {
      return InvalidArgumentError("model too large: over " + std::to_string(kMaxTensorBytes >> 30) +
                                  " GiB of tensors");
    }
  }
  RETURN_IF_ERROR(PrepareOutDir(out_dir));

  const std::vector<int> shard_of = AssignShards(sizes, spec.shards);
  std::vector<std::vector<TensorEntry>> shards(spec.shards);
  for (size_t i = 0; i < specs.size(); ++i) {
    shards[shard_of[i]].push_back({specs[i].name, specs[i].dtype, specs[i].shape, 0, 0});
  }
  std::map<std::string, std::string> weight_map;
  ThreadPool pool(Threads(options.threads));
  std::map<std::string, const TensorSpec*> by_name;
  for (const TensorSpec& t : specs) by_name[t.name] = &t;
  for (int k = 0; k < spec.shards; ++k) {
    const std::string file = ShardFileName(k, spec.shards);
    const std::string prefix = LayoutShard(shards[k]);
    std::vector<TensorSource> sources;
    for (const TensorEntry& t : shards[k]) {
      weight_map[t.name] = file;
      const TensorSpec& ts = *by_name.at(t.name);
      TensorSource src{TensorSeed(options.seed, t.name), InitFor(t.name), nullptr, 0};
      if (!ts.scale_of.empty()) {  // the block scales of an F8_E4M3 weight, from its values
        src.seed = TensorSeed(options.seed, ts.scale_of);
        src.init = InitFor(ts.scale_of);
        src.fp8 = Fp8Part::kScales;
        const TensorSpec& w = *by_name.at(ts.scale_of);
        src.rows = w.shape[0];
        src.cols = w.shape[1];
      } else if (ts.dtype == DType::kF8E4M3) {
        src.fp8 = Fp8Part::kWeight;
        src.rows = ts.shape[0];
        src.cols = ts.shape[1];
      }
      sources.push_back(src);
    }
    RETURN_IF_ERROR(WriteShard(JoinPath(out_dir, file), prefix, shards[k], sources, pool));
  }
  RETURN_IF_ERROR(WriteNewFile(out_dir, kIndexFileName, IndexJson(tensor_bytes, weight_map)));
  RETURN_IF_ERROR(WriteNewFile(out_dir, "config.json", ConfigJson(spec, vocab_size, tok.ids)));
  RETURN_IF_ERROR(
      WriteNewFile(out_dir, "generation_config.json", GenerationConfigJson(spec, tok.ids)));
  RETURN_IF_ERROR(WriteNewFile(out_dir, "tokenizer.json", tok.tokenizer_json));
  RETURN_IF_ERROR(WriteNewFile(out_dir, "tokenizer_config.json", tok.tokenizer_config_json));

  CardFacts facts;
  facts.spec = &spec;
  facts.license = options.license;
  facts.extra_tags = extra_tags;
  facts.seed = options.seed;
  facts.parameters = parameters;
  facts.tensor_bytes = tensor_bytes;
  facts.vocab_size = vocab_size;
  RETURN_IF_ERROR(WriteNewFile(out_dir, "README.md", ModelCard(facts)));
  ASSIGN_OR_RETURN(std::optional<std::string> license_text, LicenseText(options.license));
  if (license_text) {
    RETURN_IF_ERROR(WriteNewFile(out_dir, "LICENSE", *license_text));
  } else {
    LOG(Info) << "testmodel: no license text known for \"" << options.license
              << "\"; writing no LICENSE file";
  }

  Summary summary;
  ASSIGN_OR_RETURN(summary.files, ListFiles(out_dir));
  ASSIGN_OR_RETURN(summary.total_bytes, TotalSize(out_dir, summary.files));
  summary.tensor_bytes = tensor_bytes;
  summary.parameters = parameters;
  summary.shards = spec.shards;
  summary.vocab_size = vocab_size;
  summary.license_file_written = license_text.has_value();
  return summary;
}

}  // namespace hubnode::testmodel

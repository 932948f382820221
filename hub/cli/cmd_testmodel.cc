// testmodel: generate a deterministic test checkpoint, or a fine-tune of one.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "testmodel/testmodel.h"

namespace hubnode::hub {
namespace {

Status ParseChange(const std::string& change, testmodel::FinetuneOptions* o) {
  using Mode = testmodel::FinetuneOptions::Mode;
  if (change == "attention") {
    o->mode = Mode::kAttention;
    return OkStatus();
  }
  if (change.rfind("fraction:", 0) == 0) {
    o->mode = Mode::kFraction;
    std::string v = change.substr(9);
    char* end = nullptr;
    o->fraction = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') return InvalidArgumentError("--change fraction:F needs a number");
    return OkStatus();
  }
  if (change.rfind("experts:", 0) == 0) {
    o->mode = Mode::kExperts;
    std::string_view list = std::string_view(change).substr(8);
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      size_t colon = item.find(':');
      int l = -1, e = -1;
      if (colon == std::string_view::npos ||
          std::from_chars(item.data(), item.data() + colon, l).ptr != item.data() + colon ||
          std::from_chars(item.data() + colon + 1, item.data() + item.size(), e).ptr != item.data() + item.size()) {
        return InvalidArgumentError("--change experts:L:E,L:E,... has a malformed item '" + std::string(item) + "'");
      }
      o->experts.emplace_back(l, e);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    return OkStatus();
  }
  return InvalidArgumentError("--change must be attention, fraction:F or experts:L:E,...");
}

}  // namespace

void AddTestmodelCommand(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  auto* sub = app.add_subcommand("testmodel", "Generate a deterministic test checkpoint (or a fine-tune of one)");
  struct Args {
    std::string out, family = "olmoe", size = "tiny", dtype = "bf16", license = "apache-2.0";
    uint64_t seed = 1;
    std::vector<std::string> tags;
    std::optional<int> hidden, layers, experts, top_k, intermediate, moe_intermediate, heads, kv_heads, shards, merges;
    std::string corpus;
    std::string finetune_of, base_model, change = "attention";
    std::optional<std::string> new_license;
  };
  auto a = std::make_shared<Args>();
  sub->add_option("--out", a->out, "Output directory (must not exist, or be empty)")->required();
  sub->add_option("--family", a->family, "mixtral, qwen2_moe, qwen3_moe, olmoe, llama, qwen2, qwen3, deepseek_v2, deepseek_v3");
  sub->add_option("--size", a->size, "tiny, small, medium or bench (~1 GB)");
  sub->add_option("--seed", a->seed, "Random seed (default 1)");
  sub->add_option("--dtype", a->dtype, "bf16, fp16, fp32 or fp8 (deepseek: DeepSeek-V3's F8_E4M3 + 128x128 weight_scale_inv layout)");
  auto* license_opt = sub->add_option("--license", a->license, "License id for the model card (default apache-2.0)");
  sub->add_option("--tag", a->tags, "Extra model-card tag (repeatable)");
  sub->add_option("--hidden", a->hidden, "hidden_size");
  sub->add_option("--layers", a->layers, "num_hidden_layers");
  sub->add_option("--experts", a->experts, "Routed experts per layer");
  sub->add_option("--top-k", a->top_k, "Experts per token");
  sub->add_option("--intermediate", a->intermediate, "Dense MLP width");
  sub->add_option("--moe-intermediate", a->moe_intermediate, "Expert width");
  sub->add_option("--heads", a->heads, "Attention heads");
  sub->add_option("--kv-heads", a->kv_heads, "Key/value heads");
  sub->add_option("--shards", a->shards, "safetensors shards");
  sub->add_option("--corpus", a->corpus, "Learn the tokenizer's BPE merges from this text file (default: built-in text)");
  sub->add_option("--merges", a->merges, "BPE merges to learn (default: the preset's)");
  sub->add_option("--finetune-of", a->finetune_of, "Make a fine-tune of this generated checkpoint");
  sub->add_option("--base-model", a->base_model, "base_model id written into the fine-tune's card");
  sub->add_option("--change", a->change, "Fine-tune: attention, fraction:F or experts:L:E,...");
  out->push_back({sub, [a, license_opt, &flags]() -> int {
    if (!a->finetune_of.empty()) {
      testmodel::FinetuneOptions o;
      o.base_dir = a->finetune_of;
      o.base_model_id = a->base_model;
      o.seed = a->seed == 1 ? 2 : a->seed;
      if (license_opt->count() > 0) o.license = a->license;  // a fine-tune keeps its base's unless told
      if (Status s = ParseChange(a->change, &o); !s.ok()) return Fail(s);
      auto r = testmodel::GenerateFinetune(o, a->out);
      if (!r.ok()) return Fail(r.status());
      if (!flags.quiet) {
        std::printf("wrote fine-tune %s: %zu tensors changed (%llu bytes), %zu files, %llu bytes\n", a->out.c_str(),
                    r->changed_tensors.size(), static_cast<unsigned long long>(r->changed_bytes), r->files.size(),
                    static_cast<unsigned long long>(r->total_bytes));
      }
      return 0;
    }
    testmodel::Options o;
    auto family = testmodel::ParseFamily(a->family);
    if (!family.ok()) return Fail(family.status());
    auto dtype = testmodel::ParseDType(a->dtype);
    if (!dtype.ok()) return Fail(dtype.status());
    o.family = *family;
    o.dtype = *dtype;
    o.size = a->size;
    o.seed = a->seed;
    o.license = a->license;
    o.tags = a->tags;
    o.hidden = a->hidden;
    o.layers = a->layers;
    o.experts = a->experts;
    o.top_k = a->top_k;
    o.intermediate = a->intermediate;
    o.moe_intermediate = a->moe_intermediate;
    o.heads = a->heads;
    o.kv_heads = a->kv_heads;
    o.shards = a->shards;
    o.merges = a->merges;
    if (!a->corpus.empty()) {
      auto text = ReadFileToString(a->corpus, uint64_t{64} << 20);
      if (!text.ok()) return Fail(text.status());
      o.corpus = std::move(*text);
    }
    auto r = testmodel::Generate(o, a->out);
    if (!r.ok()) return Fail(r.status());
    if (!flags.quiet) {
      std::printf("wrote %s %s model to %s: %llu parameters, %d shards, %zu files, %llu bytes\n", a->family.c_str(),
                  a->size.c_str(), a->out.c_str(), static_cast<unsigned long long>(r->parameters), r->shards,
                  r->files.size(), static_cast<unsigned long long>(r->total_bytes));
    }
    return 0;
  }});
}

}  // namespace hubnode::hub

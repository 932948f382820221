// GenerateFinetune(): reads a generated checkpoint, picks the tensors to change, and writes a copy
// in which only those tensors' bytes differ.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "base/file.h"
#include "base/thread_pool.h"
#include "testmodel/card.h"
#include "testmodel/output.h"
#include "testmodel/safetensors.h"
#include "testmodel/shard_writer.h"
#include "testmodel/testmodel.h"
#include "testmodel/weights.h"

namespace hubnode::testmodel {
namespace {

// Fine-tune streams and the fraction pick are keyed apart from Generate's streams ("finetune",
// "pick" in ASCII), so a fine-tune drawn with the base's own seed still changes its tensors.
constexpr uint64_t kFinetuneTag = 0x66696E6574756E65ull;
constexpr uint64_t kPickTag = 0x7069636B00000000ull;
constexpr uint64_t kMaxSmallFile = 16 << 20;

struct BaseShard {
  std::string file;
  std::unique_ptr<ReadFile> reader;  // ReadFile is move-only; kept at a stable address
  ShardHeader header;
};

struct Base {
  Family family;
  std::vector<BaseShard> shards;
  std::vector<std::string> names;  // all tensor names, sorted
};

Result<std::string> ReadBaseFile(const std::string& dir, std::string_view name) {
  auto text = ReadFileToString(JoinPath(dir, name), kMaxSmallFile);
  if (!text.ok() && text.status().code() == StatusCode::kNotFound) {
    return InvalidArgumentError("base directory " + dir + " has no " + std::string(name));
  }
  return text;
}

Result<Base> ReadBase(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFoundError("base directory not found: " + dir);
  }
  Base base;
  ASSIGN_OR_RETURN(std::string config_text, ReadBaseFile(dir, "config.json"));
  const nlohmann::json config = nlohmann::json::parse(config_text, nullptr, false);
  if (config.is_discarded() || !config.is_object() || !config.contains("model_type") ||
      !config["model_type"].is_string()) {
    return InvalidArgumentError("base config.json has no model_type");
  }
  ASSIGN_OR_RETURN(base.family, ParseFamily(config["model_type"].get<std::string>()));

  ASSIGN_OR_RETURN(std::string index_text, ReadBaseFile(dir, kIndexFileName));
  auto weight_map = ParseIndexJson(index_text);
  if (!weight_map.ok()) return weight_map.status().WithContext("base " + dir);
  std::set<std::string> files;
  for (const auto& [name, file] : *weight_map) files.insert(file);
  size_t seen = 0;
  for (const std::string& file : files) {
    auto reader = ReadFile::Open(JoinPath(dir, file));
    if (!reader.ok()) {
      return InvalidArgumentError("base index names a missing shard: " + reader.status().message());
    }
    BaseShard shard{file, std::make_unique<ReadFile>(std::move(*reader)), {}};
    ASSIGN_OR_RETURN(shard.header, ReadShardHeader(*shard.reader));
    for (const TensorEntry& t : shard.header.tensors) {
      auto it = weight_map->find(t.name);
      if (it == weight_map->end() || it->second != file) {
        return InvalidArgumentError("base shard " + file + " holds " + t.name +
                                    ", which the index does not map to it");
      }
      base.names.push_back(t.name);
      ++seen;
    }
    base.shards.push_back(std::move(shard));
  }
  if (seen != weight_map->size()) {
    return InvalidArgumentError("base index lists tensors that no shard holds");
  }
  std::sort(base.names.begin(), base.names.end());
  return base;
}

Result<std::set<std::string>> Select(const FinetuneOptions& o, const Base& base) {
  std::set<std::string> out;
  switch (o.mode) {
    case FinetuneOptions::Mode::kAttention:
      for (const std::string& name : base.names) {
        if (name.find(".self_attn.") != std::string::npos) out.insert(name);
      }
      break;
    case FinetuneOptions::Mode::kExperts:
      if (o.experts.empty()) return InvalidArgumentError("experts mode needs at least one expert");
      if (!IsMoe(base.family)) {
        return InvalidArgumentError("base is a dense " + std::string(FamilyName(base.family)) +
                                    " model without experts");
      }
      for (const auto& [layer, expert] : o.experts) {
        const std::string prefix = "model.layers." + std::to_string(layer) + ".";
        const std::string infix = ".experts." + std::to_string(expert) + ".";
        size_t found = 0;
        for (const std::string& name : base.names) {
          if (name.starts_with(prefix) && name.find(infix, prefix.size()) != std::string::npos) {
            out.insert(name);
            ++found;
          }
        }
        if (found == 0 || layer < 0 || expert < 0) {
          return InvalidArgumentError("base has no expert " + std::to_string(layer) + ":" +
                                      std::to_string(expert));
        }
      }
      break;
    case FinetuneOptions::Mode::kFraction: {
      if (!(o.fraction > 0.0 && o.fraction <= 1.0)) {
        return InvalidArgumentError("fraction must be in (0, 1]");
      }
      const size_t count = std::max<size_t>(
          1,
          static_cast<size_t>(std::llround(o.fraction * static_cast<double>(base.names.size()))));
      std::vector<std::pair<uint64_t, std::string>> keyed;
      for (const std::string& name : base.names) {
        keyed.emplace_back(TensorSeed(o.seed ^ kPickTag, name), name);
      }
      std::sort(keyed.begin(), keyed.end());
      for (size_t i = 0; i < count; ++i) out.insert(keyed[i].second);
      break;
    }
  }
  if (out.empty()) return InvalidArgumentError("the fine-tune selects no tensors");
  return out;
}

std::string ModeNote(const FinetuneOptions& o) {
  switch (o.mode) {
    case FinetuneOptions::Mode::kAttention:
      return "all attention tensors";
    case FinetuneOptions::Mode::kExperts: {
      std::string s = "the tensors of experts";
      for (const auto& [layer, expert] : o.experts) {
        s += " " + std::to_string(layer) + ":" + std::to_string(expert);
      }
      return s;
    }
    case FinetuneOptions::Mode::kFraction: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", o.fraction);
      return "a fraction " + std::string(buf) + " of the tensors, picked from the seed";
    }
  }
  return "";
}

}  // namespace

Result<FinetuneSummary> GenerateFinetune(const FinetuneOptions& o, const std::string& out_dir) {
  RETURN_IF_ERROR(ValidateModelId(o.base_model_id));
  if (o.license) RETURN_IF_ERROR(ValidateLicenseId(*o.license));
  if (o.threads < 0) return InvalidArgumentError("threads must be >= 0");
  ASSIGN_OR_RETURN(Base base, ReadBase(o.base_dir));
  ASSIGN_OR_RETURN(std::set<std::string> selected, Select(o, base));
  // An F8_E4M3 weight and its weight_scale_inv are drawn together (FillFp8): selecting either
  // re-draws both.
  std::map<std::string, const TensorEntry*> entries;
  for (const BaseShard& shard : base.shards) {
    for (const TensorEntry& t : shard.header.tensors) entries[t.name] = &t;
  }
  auto scaled_weight = [&](const std::string& name) -> const TensorEntry* {
    if (!name.ends_with("_scale_inv")) return nullptr;
    auto it = entries.find(name.substr(0, name.size() - 10));
    return it != entries.end() && it->second->dtype == DType::kF8E4M3 ? it->second : nullptr;
  };
  for (const std::string& name : std::set<std::string>(selected)) {
    if (const TensorEntry* w = scaled_weight(name)) selected.insert(w->name);
    if (entries.count(name) && entries[name]->dtype == DType::kF8E4M3 && entries.count(name + "_scale_inv")) {
      selected.insert(name + "_scale_inv");
    }
  }
  ASSIGN_OR_RETURN(std::string card, ReadBaseFile(o.base_dir, "README.md"));
  ASSIGN_OR_RETURN(std::string base_license, CardLicense(card));
  ASSIGN_OR_RETURN(std::vector<std::string> base_files, ListFiles(o.base_dir));
  RETURN_IF_ERROR(PrepareOutDir(out_dir));

  FinetuneSummary summary;
  ThreadPool pool(o.threads > 0 ? static_cast<size_t>(o.threads) : 0);
  const uint64_t stream_seed = o.seed ^ kFinetuneTag;
  std::set<std::string> shard_files;
  for (const BaseShard& shard : base.shards) {
    shard_files.insert(shard.file);
    std::string prefix(shard.header.data_start, '\0');
    RETURN_IF_ERROR(shard.reader->ReadAt(0, prefix.size(), prefix.data()));
    std::vector<TensorSource> sources;
    for (const TensorEntry& t : shard.header.tensors) {
      if (selected.count(t.name)) {
        TensorSource src{TensorSeed(stream_seed, t.name), InitFor(t.name), nullptr, 0};
        if (const TensorEntry* w = scaled_weight(t.name); w && w->shape.size() == 2) {
          src = {TensorSeed(stream_seed, w->name), InitFor(w->name), nullptr, 0, Fp8Part::kScales, w->shape[0], w->shape[1]};
        } else if (t.dtype == DType::kF8E4M3) {
          if (t.shape.size() != 2) return InvalidArgumentError("F8_E4M3 tensor " + t.name + " is not a matrix");
          src.fp8 = Fp8Part::kWeight;
          src.rows = t.shape[0];
          src.cols = t.shape[1];
        }
        sources.push_back(src);
        summary.changed_bytes += t.end - t.begin;
      } else {
        sources.push_back(
            {0, Init::kNormal, shard.reader.get(), shard.header.data_start + t.begin});
      }
    }
    RETURN_IF_ERROR(
        WriteShard(JoinPath(out_dir, shard.file), prefix, shard.header.tensors, sources, pool));
  }

  const bool new_license = o.license.has_value() && *o.license != base_license;
  for (const std::string& file : base_files) {
    if (shard_files.count(file) || file == "README.md" || (file == "LICENSE" && new_license)) {
      continue;
    }
    RETURN_IF_ERROR(CopyFile(JoinPath(o.base_dir, file), JoinPath(out_dir, file)));
  }
  const std::string note = "This is a fine-tune of " + o.base_model_id + ": " +
                           std::to_string(selected.size()) + " of " +
                           std::to_string(base.names.size()) + " tensors (" + ModeNote(o) +
                           ") were re-drawn from seed " + std::to_string(o.seed) +
                           "; every other tensor is byte-identical to the base.";
  ASSIGN_OR_RETURN(std::string new_card, FinetuneCard(card, o.base_model_id, o.license, note));
  RETURN_IF_ERROR(WriteNewFile(out_dir, "README.md", new_card));
  if (new_license) {
    ASSIGN_OR_RETURN(std::optional<std::string> text, LicenseText(*o.license));
    if (text) RETURN_IF_ERROR(WriteNewFile(out_dir, "LICENSE", *text));
  }

  summary.changed_tensors.assign(selected.begin(), selected.end());
  ASSIGN_OR_RETURN(summary.files, ListFiles(out_dir));
  ASSIGN_OR_RETURN(summary.total_bytes, TotalSize(out_dir, summary.files));
  summary.license_file_written =
      std::find(summary.files.begin(), summary.files.end(), "LICENSE") != summary.files.end();
  return summary;
}

}  // namespace hubnode::testmodel

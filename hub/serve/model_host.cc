#include "hub/serve/model_host.h"

#include <cstring>
#include <ctime>
#include <unordered_map>

#include "base/log.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {
namespace {

constexpr uint64_t kMaxSmallFile = 64 << 20;

Result<runtime::DType> ParseDType(const std::string& name, const std::string& tensor) {
  if (name == "BF16") return runtime::DType::kBF16;
  if (name == "F16") return runtime::DType::kF16;
  if (name == "F32") return runtime::DType::kF32;
  return InvalidArgumentError("tensor " + tensor + " has dtype " + name + " (supported: BF16, F16, F32)");
}

class StoreSource final : public runtime::TensorSource {
 public:
  StoreSource(store::Store* st, GitOid commit) : st_(st), commit_(commit) {}

  Status Init() {
    ASSIGN_OR_RETURN(std::vector<store::FileEntry> files, st_->ListFiles(commit_));
    for (const store::FileEntry& f : files) {
      if (f.path.size() < 12 || f.path.compare(f.path.size() - 12, 12, ".safetensors") != 0) continue;
      ASSIGN_OR_RETURN(std::vector<store::TensorInfo> tensors, st_->ListTensors(f));
      for (const store::TensorInfo& t : tensors) {
        runtime::TensorDesc d;
        d.name = t.name;
        ASSIGN_OR_RETURN(d.dtype, ParseDType(t.dtype, t.name));
        for (uint64_t s : t.shape) d.shape.push_back(static_cast<int64_t>(s));
        if (d.bytes() != t.end - t.begin) return DataLossError("tensor " + t.name + ": size does not match its shape");
        if (!where_.emplace(t.name, Where{f, t.begin}).second) {
          return InvalidArgumentError("tensor " + t.name + " appears in two files");
        }
        descs_.push_back(std::move(d));
      }
    }
    if (descs_.empty()) return InvalidArgumentError("the revision has no safetensors weights");
    return OkStatus();
  }

  Result<std::string> ReadFile(std::string_view path) override {
    ASSIGN_OR_RETURN(store::FileEntry f, st_->StatFile(commit_, path));
    if (f.size > kMaxSmallFile) return InvalidArgumentError(std::string(path) + " is larger than 64 MiB");
    ASSIGN_OR_RETURN(auto reader, st_->OpenFile(f));
    return reader->ReadToString(0, f.size);
  }

  Result<std::vector<runtime::TensorDesc>> ListTensors() override { return descs_; }

  Status ReadTensor(std::string_view name, std::span<uint8_t> out) override {
    auto it = where_.find(std::string(name));
    if (it == where_.end()) return NotFoundError("no tensor " + std::string(name));
    ASSIGN_OR_RETURN(auto reader, st_->OpenFile(it->second.file));
    size_t at = 0;
    RETURN_IF_ERROR(reader->Read(it->second.offset, out.size(), [&](std::string_view piece) -> Status {
      if (piece.size() > out.size() - at) return DataLossError("tensor " + std::string(name) + " read overran");
      std::memcpy(out.data() + at, piece.data(), piece.size());
      at += piece.size();
      return OkStatus();
    }));
    if (at != out.size()) return DataLossError("tensor " + std::string(name) + " read short");
    return OkStatus();
  }

 private:
  struct Where {
    store::FileEntry file;
    uint64_t offset;
  };
  store::Store* st_;
  GitOid commit_;
  std::vector<runtime::TensorDesc> descs_;
  std::unordered_map<std::string, Where> where_;
};

}  // namespace

Result<std::unique_ptr<runtime::TensorSource>> OpenStoreSource(store::Store* st, const GitOid& commit) {
  auto src = std::make_unique<StoreSource>(st, commit);
  RETURN_IF_ERROR(src->Init());
  return std::unique_ptr<runtime::TensorSource>(std::move(src));
}

ModelHost::ModelHost(store::Store* st, ModelHostOptions options)
    : st_(st), options_(std::move(options)), matcher_(verify::LicenseMatcher::FromDirectory(options_.common_licenses)) {}

Result<store::RepoId> ModelHost::RepoOf(const std::string& model) {
  return store::RepoId::Parse(model.substr(0, model.find('@')));
}

std::vector<LoadedModel> ModelHost::Loaded() const {
  std::lock_guard lock(mu_);
  return {loaded_.begin(), loaded_.end()};
}

Result<LoadedModel> ModelHost::Get(const std::string& model) {
  ASSIGN_OR_RETURN(store::RepoId repo, RepoOf(model));
  const size_t at = model.find('@');
  const std::string rev = at == std::string::npos ? "HEAD" : model.substr(at + 1);
  auto commit = st_->Resolve(repo, rev);
  if (!commit.ok()) {
    if (commit.status().code() == StatusCode::kNotFound) {
      // A revision held for review does not resolve; say so instead of "not found".
      const std::string branch = rev == "HEAD" ? "main" : rev;
      if (auto refs = st_->ListRefs(repo); refs.ok()) {
        for (const store::RefInfo& r : *refs) {
          if (r.name == "refs/held/" + branch) {
            return FailedPreconditionError(model + " is held for license review (see 'hubnode approve')");
          }
        }
      }
    }
    return commit.status();
  }
  auto find = [&]() -> std::optional<LoadedModel> {
    std::lock_guard lock(mu_);
    for (auto it = loaded_.begin(); it != loaded_.end(); ++it) {
      if (it->commit == *commit && it->id == model) {
        loaded_.splice(loaded_.begin(), loaded_, it);
        return *it;
      }
    }
    return std::nullopt;
  };
  if (auto hit = find()) return *hit;
  std::lock_guard load_lock(load_mu_);
  if (auto hit = find()) return *hit;  // loaded while this request waited

  // The policy gate, as at import: a denied or unreviewed model is not run.
  verify::TrustStore trust;
  if (!options_.trust_path.empty()) {
    auto t = TrustFile(options_.trust_path).Load();
    if (!t.ok()) return t.status();
    trust = std::move(*t);
  }
  // The verdict reaches every caller of the model: a private base counts only for a private model
  // of the same namespace (whose readers may read the base too).
  auto model_info = st_->GetRepo(repo);
  const bool model_private = model_info.ok() && model_info->visibility == store::Visibility::kPrivate;
  auto visible = [&repo, model_private](const store::RepoInfo& base) {
    return base.visibility != store::Visibility::kPrivate ||
           (model_private && !repo.ns().empty() && base.id.ns() == repo.ns());
  };
  const TrustReport report =
      Assess(CommitView(*st_, repo, *commit), repo.str(), NodeContext(trust, &matcher_, st_, visible));
  if (report.verdict != verify::Verdict::kAllow) {
    return FailedPreconditionError(model + " is not allowed to run by the node's policy: " + report.Summary());
  }

  ASSIGN_OR_RETURN(auto source, OpenStoreSource(st_, *commit));
  runtime::EngineOptions eo = options_.engine;
  std::unique_ptr<runtime::Engine> engine;
  if (eo.expert_budget_bytes == 0 && options_.expert_budget_fraction > 0) {
    // The budget is relative to this model's experts, which only the loaded engine knows: load
    // with no cache first would read everything, so compute the experts' bytes from the listing.
    ASSIGN_OR_RETURN(auto tensors, source->ListTensors());
    uint64_t expert_bytes = 0;
    for (const auto& t : tensors) {
      if (t.name.find(".experts.") != std::string::npos) expert_bytes += t.bytes();
    }
    eo.expert_budget_bytes = std::max<uint64_t>(1, static_cast<uint64_t>(expert_bytes * options_.expert_budget_fraction));
  }
  auto loaded_engine = runtime::Engine::Load(std::move(source), eo);
  if (!loaded_engine.ok()) return loaded_engine.status().WithContext(model);
  LoadedModel lm{model, *commit, std::shared_ptr<runtime::Engine>(std::move(*loaded_engine))};
  LOG(Info) << "loaded " << model << " (" << lm.engine->info().architecture << ", "
            << lm.engine->info().resident_bytes / 1048576 << " MiB resident)";
  std::lock_guard lock(mu_);
  loaded_.push_front(lm);
  while (static_cast<int>(loaded_.size()) > std::max(1, options_.max_models)) loaded_.pop_back();
  return lm;
}

}  // namespace hubnode::hub

#include "hub/serve/model_host.h"

#include <ctime>

#include "base/log.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {

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
        if (Status health = it->engine->Health(); !health.ok()) {
          // Its device failed (a lost GPU): unload it; the load below starts it afresh (or fails).
          LOG(Warning) << "unloading " << model << ": " << health.ToString();
          loaded_.erase(it);
          return std::nullopt;
        }
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

  auto reads = options_.read_stats ? options_.read_stats : std::make_shared<TensorReadStats>();
  ASSIGN_OR_RETURN(auto source, OpenStoreSource(st_, *commit, StoreSourceOptions{options_.raw_cache, reads}));
  runtime::EngineOptions eo = options_.engine;
  // The budget is relative to this model's experts, which only the loaded engine knows: load
  // with no cache first would read everything, so compute the experts' bytes from the listing.
  ASSIGN_OR_RETURN(auto tensors, source->ListTensors());
  uint64_t expert_bytes = 0;
  for (const auto& t : tensors) {
    if (t.name.find(".experts.") != std::string::npos) expert_bytes += t.bytes();
  }
  if (eo.expert_budget_bytes == 0 && options_.expert_budget_fraction > 0) {
    eo.expert_budget_bytes = std::max<uint64_t>(1, static_cast<uint64_t>(expert_bytes * options_.expert_budget_fraction));
  }
  if (eo.gpu_expert_budget_bytes == 0 && options_.gpu_expert_budget_fraction > 0) {
    eo.gpu_expert_budget_bytes =
        std::max<uint64_t>(1, static_cast<uint64_t>(expert_bytes * options_.gpu_expert_budget_fraction));
  }
  // Below the working set, evicted experts are reloaded on every token: from raw copies of their
  // shards rather than through chunk reads, checksums, decompression and hashes (measured in
  // docs/decisions.md 46). Until a copy is written, its shard is read from the chunks.
  const bool below = (eo.expert_budget_bytes > 0 && eo.expert_budget_bytes < expert_bytes) ||
                     (eo.backend != runtime::BackendKind::kCpu && eo.gpu_expert_budget_bytes > 0 &&
                      eo.gpu_expert_budget_bytes < expert_bytes);
  if (below) source->FillExpertShards();
  auto loaded_engine = runtime::Engine::Load(std::unique_ptr<runtime::TensorSource>(std::move(source)), eo);
  if (!loaded_engine.ok()) return loaded_engine.status().WithContext(model);
  LoadedModel lm{model, *commit, std::shared_ptr<runtime::Engine>(std::move(*loaded_engine)), std::move(reads)};
  LOG(Info) << "loaded " << model << " (" << lm.engine->info().architecture << ", "
            << lm.engine->info().resident_bytes / 1048576 << " MiB resident)";
  std::lock_guard lock(mu_);
  loaded_.push_front(lm);
  while (static_cast<int>(loaded_.size()) > std::max(1, options_.max_models)) loaded_.pop_back();
  return lm;
}

}  // namespace hubnode::hub

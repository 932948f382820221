// Serving models from the store with the runtime: the ModelHost, which loads engines on demand
// (after the trust gate) over a stored revision (store_source.h: no export to disk) and keeps at
// most a few resident.
//
// Thread safety: ModelHost is thread-safe; the engines it hands out are shared with requests in
// flight (shared_ptr: an engine unloaded from the host lives until its last request ends).
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"
#include "hub/rawcache/raw_cache.h"
#include "hub/serve/store_source.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct ModelHostOptions {
  runtime::EngineOptions engine;
  // Expert budget as a fraction of a model's routed-expert bytes, used when
  // engine.expert_budget_bytes is 0; 0 = all experts. Default: 0.
  double expert_budget_fraction = 0;
  // The same for the expert cache in GPU memory (engine.gpu_expert_budget_bytes). Default: 0.
  double gpu_expert_budget_fraction = 0;
  // Engines kept loaded; loading another unloads the least recently used. Default: 2.
  int max_models = 2;
  // The trust store file (DATA/trust.json); empty = none. Default: empty.
  std::string trust_path;
  // Reference license texts. Default: Debian's.
  std::string common_licenses = "/usr/share/common-licenses";
  // Raw copies of weight shards, the expert tier (docs/decisions.md 46): a model whose expert
  // budget is below its routed experts has the shards holding them copied (in the background),
  // and every model reads the shards the cache holds from their verified copies. Null = chunks
  // only. Must outlive the host and its engines. Default: null.
  RawCache* raw_cache = nullptr;
  // Counters every model of the host adds its tensor reads to (`hubnode run` prints them); null =
  // one for each model (LoadedModel::reads). Shared with the models' sources. Default: null.
  std::shared_ptr<TensorReadStats> read_stats;
};

struct LoadedModel {
  std::string id;  // repo id, plus "@rev" when not the default branch
  GitOid commit;
  std::shared_ptr<runtime::Engine> engine;
  // Where its tensor bytes came from: raw copies of its shards or the chunks (shared with its
  // source, which counts).
  std::shared_ptr<const TensorReadStats> reads;
};

class ModelHost {
 public:
  ModelHost(store::Store* st, ModelHostOptions options);

  // The engine for `model` ("ns/name" or "ns/name@rev"), loaded if needed. NotFound when the
  // repo or revision does not exist; FailedPrecondition when it is held for license review or
  // the policy denies it (the message names the rule); InvalidArgument when it is not a
  // supported model. The caller checks visibility first (see RepoOf).
  Result<LoadedModel> Get(const std::string& model);
  // The repo part of a model id. InvalidArgument for a malformed id.
  static Result<store::RepoId> RepoOf(const std::string& model);
  std::vector<LoadedModel> Loaded() const;

 private:
  store::Store* st_;
  ModelHostOptions options_;
  verify::LicenseMatcher matcher_;
  mutable std::mutex mu_;
  std::mutex load_mu_;  // one load at a time (a load reads a whole model)
  std::list<LoadedModel> loaded_;  // front = most recently used
};

}  // namespace hubnode::hub

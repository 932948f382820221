// The runtime's TensorSource over a stored revision: tensors and small files read through the
// store's verified chunks (no export to disk), or, for a weight shard the raw cache holds, by
// plain reads of its verified raw copy: the expert tier (docs/decisions.md 46). A model run with
// an expert budget below its experts reloads evicted experts on every token; from the copies a
// reload is a read of the page cache instead of chunk reads, checksums, decompression and hashes.
//
// Thread safety: a StoreSource may be read from several threads at once (the runtime's compute
// and prefetch threads).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "base/status.h"
#include "hub/rawcache/raw_cache.h"
#include "runtime/runtime.h"
#include "store/store.h"

namespace hubnode::hub {

// Where the tensor bytes of a host's models came from: the raw copies or the chunks. Counted
// across all reads (resident weights at load and experts on misses).
struct TensorReadStats {
  std::atomic<uint64_t> raw_bytes{0}, chunk_bytes{0};
};

struct StoreSourceOptions {
  // Raw copies of weight shards, read instead of the chunks when a shard is cached (its copy
  // SHA-256-checked when written or re-hashed, under the file record's SHA-256 and size); null =
  // chunks only. Must outlive the source. Default: null.
  RawCache* raw_cache = nullptr;
  // Counters the source adds its reads to; null = none. Default: null.
  std::shared_ptr<TensorReadStats> stats;
};

class StoreSource : public runtime::TensorSource {
 public:
  // Asks the raw cache to copy the shards that hold routed experts (`.experts.` tensors), in
  // listing order while their total fits the cache's capacity (more would evict each other); a
  // shard not yet copied is read from the chunks and asked for again, at most every few seconds
  // (a copy evicted or found damaged comes back). For a model whose expert budget is below its
  // experts. No-op without a raw cache. REQUIRES: called before the source is read concurrently.
  virtual void FillExpertShards() = 0;
};

// The tensors and small files of the revision `commit`. NotFound when it does not exist;
// InvalidArgument when it has no safetensors weights, a tensor of an unsupported dtype or a
// tensor in two files; DataLoss for a tensor whose size disagrees with its shape.
Result<std::unique_ptr<StoreSource>> OpenStoreSource(store::Store* st, const GitOid& commit,
                                                     StoreSourceOptions options = {});

}  // namespace hubnode::hub

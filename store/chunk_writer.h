// Writing chunks on the store's thread pool, shared by imports (ingest.cc) and streamed content
// (content_writer.cc): hash, pin, and compress and write the chunk only when the store lacks it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "store/codec.h"
#include "store/records.h"
#include "store/store_impl.h"
#include "store/tier.h"

namespace hubnode::store {

// Counts outstanding tasks and keeps the first error.
class TaskGroup {
 public:
  void Add();
  void Done(Status s);
  bool failed();
  Status Wait();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t pending_ = 0;
  Status status_;
};

struct ChunkCounts {
  uint64_t new_chunks = 0;
  uint64_t new_raw_bytes = 0;
  uint64_t new_stored_bytes = 0;
};

// The chunks one import or one upload wrote. Every chunk it hashes stays pinned (GC never deletes
// it) until the ChunkWriter is destroyed, so the caller's commit can name them safely.
class ChunkWriter {
 public:
  explicit ChunkWriter(StoreImpl& store);
  ~ChunkWriter();
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Queues `data` (one chunk) on the store's pool; `slot` receives its id and length. Blocks while
  // the pool's queue is full, which bounds the memory of chunks in flight.
  void Submit(std::shared_ptr<std::string> data, ElementKind kind, ChunkRef* slot, TaskGroup* group);
  ChunkCounts counts();
  // With a chunk tier: uploads the pack still being filled and records its chunks. Call after the
  // group's Wait and before anything (a file record, a commit) names the chunks. OK without a tier.
  Status Flush();

 private:
  // A record waiting for its turn in the pack.
  struct Pending {
    ChunkId id;
    ChunkMeta meta;
    std::string record;
  };
  void Write(const std::string& data, ElementKind kind, ChunkRef* slot, TaskGroup* group, uint64_t seq);
  // Tier only: puts submitted chunk `seq` (nullopt: one with nothing to write) into the pack once
  // every chunk submitted before it is in, and uploads the packs that fills.
  Status AddInOrder(uint64_t seq, std::optional<Pending> chunk);
  // Uploads a full pack (tier only) and counts its chunks.
  Status Upload(PackBuilder pack);

  StoreImpl& store_;
  CodecPolicy policy_;
  std::mutex mu_;  // guards pinned_, seen_ and counts_, written by pool tasks
  std::vector<ChunkId> pinned_;
  std::unordered_set<ChunkId, DigestHash> seen_;  // chunks this writer already wrote or found
  ChunkCounts counts_;
  std::atomic<uint64_t> next_submit_{0};  // Submit's sequence numbers
  std::mutex pack_mu_;  // guards pack_, reorder_ and next_seq_
  PackBuilder pack_;    // tier only: records waiting for their pack's upload
  std::map<uint64_t, std::optional<Pending>> reorder_;  // finished out of submission order
  uint64_t next_seq_ = 0;
};

}  // namespace hubnode::store

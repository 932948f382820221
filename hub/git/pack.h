// Git pack files (gitformat-pack): written as a stream for upload-pack, read from a spooled file
// for receive-pack. Objects are sent whole or as OFS deltas the caller made (MakeDelta); received
// packs may use both delta
// kinds (OFS_DELTA, REF_DELTA), which are resolved against objects already stored, so memory holds
// one object and its base at a time whatever the pack's size.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <memory>
#include <string>
#include <string_view>

#include "base/hash.h"
#include "base/status.h"
#include "store/store.h"

namespace hubnode::hub::git {

// Writes a pack of `count` objects to `sink` as it goes: the header now, each object on Add, the
// SHA-1 trailer on Finish. A sink returning false (the client went away) stops the writer.
class PackWriter {
 public:
  using Sink = std::function<bool(std::string_view)>;
  PackWriter(uint32_t count, Sink sink);
  ~PackWriter();
  PackWriter(const PackWriter&) = delete;
  PackWriter& operator=(const PackWriter&) = delete;
  // Cancelled when the sink refused bytes; FailedPrecondition past `count` objects.
  Status Add(store::GitObjectType type, std::string_view body);
  // Adds a blob whose body is produced in pieces (`produce` calls `piece` until the body is done).
  Status AddStreamed(store::GitObjectType type, uint64_t size,
                     const std::function<Status(const std::function<Status(std::string_view)>& piece)>& produce);
  // Adds an OFS_DELTA entry: `delta` (git's delta format) applies to the object written at
  // `base_offset` (a value of bytes() taken before that object was added).
  Status AddOfsDelta(uint64_t base_offset, std::string_view delta);
  Status Finish();
  uint64_t bytes() const { return bytes_; }
  // Where the next object's entry starts (after the 12-byte header when nothing was written yet).
  uint64_t next_offset() const { return bytes_ == 0 ? 12 : bytes_; }

 private:
  Status Emit(std::string_view data);
  Status AddEntry(int type, uint64_t size, const std::string& after_header,
                  const std::function<Status(const std::function<Status(std::string_view)>&)>& produce);
  // One deflate stream, reset between objects (a fresh one per object costs its window's
  // allocation and clearing, which dominated a clone of many small objects).
  struct ZState;
  std::unique_ptr<ZState> z_;
  std::string out_;
  Sha1 sha_;
  Sink sink_;
  uint32_t count_, added_ = 0;
  uint64_t bytes_ = 0;
};

struct PackLimits {
  uint64_t max_objects = 1'000'000;
  uint64_t max_object_bytes = uint64_t{16} << 20;  // one object's inflated size
  uint64_t max_total_bytes = uint64_t{2} << 30;    // all objects' inflated sizes (zlib and delta bombs)
  uint32_t max_delta_depth = 64;
};

// Reads a pack held in a file (spooled from a push or a fetch). Verifies the header and the
// trailing SHA-1 over the whole file first, then hands each object (after resolving deltas) to
// `store_object`, which must make it readable through `load_base` (deltas need their bases).
// InvalidArgument names what is malformed; ResourceExhausted for a limit.
struct PackCallbacks {
  std::function<Status(const GitOid& oid, store::GitObjectType type, std::string_view body)> store_object;
  // The body of an object already stored (a delta's base); NotFound when absent.
  std::function<Result<std::pair<store::GitObjectType, std::string>>(const GitOid& oid)> load_base;
};
struct PackSummary {
  uint64_t objects = 0, deltas = 0;
};
Result<PackSummary> ReadPackFile(const std::string& path, const PackLimits& limits, const PackCallbacks& cb);

// A git delta turning `base` into `target`: their common prefix and suffix are copied from the
// base and the middle inserted. Cheap, and what a model repo's history mostly is (a config or
// card edited in place, a log appended to).
std::string MakeDelta(std::string_view base, std::string_view target);

// ReadPackFile into a store: each object goes in through Store::PutGitObject (hash-checked,
// trees and commits parsed), deltas read their bases back from it; the ids stored are added to
// `received`.
Result<PackSummary> UnpackToStore(store::Store& store, const std::string& path, const PackLimits& limits,
                                  std::set<GitOid>* received);

// Applies a git delta to `base`. InvalidArgument on a malformed delta or a size mismatch.
Result<std::string> ApplyDelta(std::string_view base, std::string_view delta, uint64_t max_size);

}  // namespace hubnode::hub::git

// Helpers shared by the CLI commands: argument forms, printing and progress.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/store.h"

namespace hubnode::hub {

// Settings every command shares, filled from global flags and the environment.
struct GlobalFlags {
  std::string data_dir;  // --data, $HUBNODE_DATA, or ./hubdata
  std::string codec = "auto";  // --codec auto|zstd|raw (how new chunks are compressed)
  bool quiet = false;
  uint64_t min_free_bytes = uint64_t{256} << 20;  // --min-free-space
  std::string chunks;  // --chunks s3://bucket/prefix: chunk payloads in an object store
  uint64_t chunk_cache_bytes = uint64_t{1} << 30;  // --chunk-cache: local copies of tiered chunks
  bool chunks_reader = false;  // --chunks-reader: read the bucket a writer node fills, never write it
};

// "REPO", "REPO@REV", "REPO@REV:PATH" (REV may contain '/', e.g. refs/pr/1; PATH follows the
// first ':' after '@').
struct RepoSpec {
  store::RepoId repo;
  std::string rev = "HEAD";
  std::optional<std::string> path;
};
Result<RepoSpec> ParseRepoSpec(std::string_view s);

// `replicate`: the command takes another node's commits (pull, follow), the only writes a reader
// node (--chunks-reader) makes.
Result<std::unique_ptr<store::Store>> OpenStore(const GlobalFlags& flags, bool replicate = false);

// "1.5 GiB".
std::string HumanBytes(uint64_t n);
// "2026-11-29 10:00:00 +0000".
std::string FormatTime(int64_t unix_seconds);

// Draws a one-line progress bar on stderr when stderr is a terminal; silent otherwise.
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled);
  ~ProgressBar();
  void Update(uint64_t done, uint64_t total, std::string_view label);
  void Finish();

 private:
  bool enabled_;
  bool drawn_ = false;
  int64_t last_ms_ = 0;
};

// Prints "hubnode: <status message>" to stderr and returns 1.
int Fail(const Status& s);

}  // namespace hubnode::hub

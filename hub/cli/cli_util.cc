#include "hub/cli/cli_util.h"

#include "base/time_format.h"
#include "hub/s3/s3_tier.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace hubnode::hub {

Result<RepoSpec> ParseRepoSpec(std::string_view s) {
  RepoSpec spec;
  size_t at = s.find('@');
  std::string_view repo = s.substr(0, at);
  if (at != std::string_view::npos) {
    std::string_view rest = s.substr(at + 1);
    size_t colon = rest.find(':');
    spec.rev = std::string(rest.substr(0, colon));
    if (spec.rev.empty()) return InvalidArgumentError("empty revision in '" + std::string(s) + "'");
    if (colon != std::string_view::npos) spec.path = std::string(rest.substr(colon + 1));
  } else if (size_t colon = s.find(':'); colon != std::string_view::npos) {
    repo = s.substr(0, colon);
    spec.path = std::string(s.substr(colon + 1));
  }
  ASSIGN_OR_RETURN(spec.repo, store::RepoId::Parse(repo));
  return spec;
}

Result<std::unique_ptr<store::Store>> OpenStore(const GlobalFlags& flags, bool replicate) {
  store::Options o;
  o.data_dir = flags.data_dir;
  o.min_free_bytes = flags.min_free_bytes;
  if (flags.codec == "zstd") {
    o.byte_grouping = false;
  } else if (flags.codec == "raw") {
    o.compress = false;
  } else if (flags.codec != "auto") {
    return InvalidArgumentError("--codec must be auto, zstd or raw");
  }
  if (!flags.chunks.empty()) {
    ASSIGN_OR_RETURN(o.chunk_tier, s3::OpenS3ChunkTier(flags.chunks));
    o.chunk_cache_bytes = flags.chunk_cache_bytes;
    o.tier_reader = flags.chunks_reader;
    o.replica_writes = replicate;
  }
  return store::Store::Open(o);
}

std::string HumanBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string FormatTime(int64_t t) { return FormatUtc(t, "%Y-%m-%d %H:%M:%S +0000"); }

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled && ::isatty(STDERR_FILENO)) {}
ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total, std::string_view label) {
  if (!enabled_) return;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch()).count();
  if (done < total && now - last_ms_ < 100) return;
  last_ms_ = now;
  int pct = total ? static_cast<int>(done * 100 / total) : 100;
  int filled = pct * 30 / 100;
  std::string bar(filled, '#');
  bar.resize(30, '.');
  std::string name(label.substr(label.size() > 40 ? label.size() - 40 : 0));
  std::fprintf(stderr, "\r[%s] %3d%% %s / %s  %-40s", bar.c_str(), pct, HumanBytes(done).c_str(),
               HumanBytes(total).c_str(), name.c_str());
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
  drawn_ = false;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "hubnode: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace hubnode::hub

// Mirroring repos from an upstream into the store: `hubnode pull` and the server's pull-through.
//
// A fill resolves the revision upstream, lists its files and reads its commit's title, author and
// date (the plan), then downloads every (selected) file into a staging folder under the data
// directory — files in parallel, each verified against the upstream's SHA-256 or git blob id,
// resuming what an earlier attempt left — and imports the folder as one commit. Nothing is
// visible in the store before that commit; a failed fill leaves only the staging folder.
//
// The plan alone gives the commit id the import will produce (store::PlanCommitId), so while a
// fill runs the server can answer HEAD at once and stream a file's bytes as they arrive
// (FillFile::WaitFor), holding back the last byte until the file is verified.
//
// When the upstream speaks git (the Hub and hubnode do), the commit and tree objects come over
// git's protocol, so the mirrored commit is the upstream's: same id, history and refs. Otherwise
// the local commit is the node's own and `refs/mirror/<upstream sha>` maps the upstream id to it.
// Repo data "mirror" says which one a repo's mirror used.
//
// Thread safety: all methods may be called concurrently; fills of the same repo and upstream
// commit run once, and every caller shares that fill.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hub/client/upstream.h"
#include "hub/peer/peer_fetch.h"
#include "hub/trust/trust_gate.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct PullOptions {
  // Only files matching one of these globs (fnmatch, '*' crosses '/'); empty = all.
  std::vector<std::string> include;
  // Files matching any of these are skipped.
  std::vector<std::string> exclude;
  // Files downloaded in parallel. Default: 4.
  unsigned jobs = 4;
  // Called with (bytes done, bytes total, current file). May be empty.
  std::function<void(uint64_t, uint64_t, const std::string&)> progress;
};

// Which experts a partial pull fetches: none, all, or a list of (layer, expert).
struct ExpertSelection {
  bool all = false;
  std::vector<store::ExpertKey> experts;
  // "none", "all", or "L:E,L:E,…" (E may be "shared"). InvalidArgument otherwise.
  static Result<ExpertSelection> Parse(std::string_view s);
  bool Wants(const store::ExpertKey& k) const;
};

struct PartialPullResult {
  GitOid commit;
  std::string upstream_sha;
  uint64_t files = 0;
  uint64_t chunks = 0, chunks_held = 0;      // chunks of the revision, and how many the store holds now
  uint64_t bytes = 0, bytes_held = 0;        // raw bytes, likewise
  uint64_t fetched_chunks = 0, fetched_bytes = 0;  // fetched by this pull (raw bytes)
};

struct PullResult {
  GitOid commit;
  std::string upstream_sha;
  uint64_t files = 0, bytes = 0;
  bool already_held = false;
};

// One file of a fill in progress.
class FillFile {
 public:
  UpstreamFile file;
  std::string staging_path;
  bool stored_as_lfs = false;

  // Blocks until the file holds more than `offset` bytes that may be served, the file is verified
  // complete, or the fill failed. Returns how many bytes from the start may be served now (the
  // last byte only once verified); an error when the fill failed.
  Result<uint64_t> WaitFor(uint64_t offset);

 private:
  friend class Mirror;
  void Progress(uint64_t written);
  void Finish(bool verified);
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_ = 0;
  bool verified_ = false;
  bool failed_ = false;
};

// A fill: the plan, and the download + import running on its own thread.
class Fill {
 public:
  store::RepoId repo;
  std::string rev;
  std::string upstream_sha;
  std::optional<GitOid> planned_commit;  // nullopt when it cannot be known ahead
  // The upstream speaks git: the fill fetches its commit and tree objects, so the mirrored
  // commit is the upstream's own (same id and history); otherwise the node commits the files
  // itself and maps the upstream id to that commit (refs/mirror/<upstream sha>).
  bool git = false;
  bool upstream_private = false;         // the repo is private (or gated) upstream
  bool upstream_gated = false;
  // Whether files may be streamed before the fill commits: the license pre-check (card and
  // LICENSE, fetched first) allowed it and no signature is required.
  bool stream_ok = true;
  std::string gate_dir;     // where the pre-check's files were fetched
  GateDecision pre_check;   // the pre-check's decision (allow when no gate)
  std::map<std::string, std::shared_ptr<FillFile>> files;

  // Blocks until the fill ends; its result.
  Result<PullResult> Wait();
  bool done();

 private:
  friend class Mirror;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Result<PullResult>> result_;
};

class Mirror {
 public:
  Mirror(store::Store* store, Upstream* upstream, std::string staging_root)
      : store_(store), upstream_(upstream), staging_root_(std::move(staging_root)) {}
  ~Mirror();
  // Policy for pulled models: denied ones are refused (FailedPrecondition "policy: …"), ones held
  // for review are committed on refs/held/… and reported as FailedPrecondition too.
  void SetGate(Gate gate) { gate_ = std::move(gate); }
  // Chunks from peers: LFS files of a revision whose chunk map (from a peer or the upstream) the
  // trust store at `trust_path` accepts are fetched chunk by chunk from the peers, each chunk
  // checked against the map, instead of downloaded whole; chunks this store already holds are not
  // fetched. Without an acceptable map, files come from the upstream as before.
  void SetPeers(const PeerFetchOptions& options, std::string trust_path);
  // The peers' counters (empty without peers).
  std::vector<PeerStats> PeerStatistics() const;
  // Wall seconds of the last fill's download phase (files from peers or the upstream).
  double LastDownloadSeconds() const { return last_download_seconds_.load(); }

  // Plans a fill of repo@rev and starts it in the background (or joins the running one). The
  // result is already done when the store holds that upstream commit.
  Result<std::shared_ptr<Fill>> Begin(const store::RepoId& repo, const std::string& rev, const PullOptions& options);
  // Begin + Wait.
  Result<PullResult> Pull(const store::RepoId& repo, const std::string& rev, const PullOptions& options);
  // A partial pull (needs peers and a trusted chunk map): every file's chunk list is recorded,
  // and the chunks of the metadata, of every tensor that is not an expert's, and of the selected
  // experts are fetched from the peers; the rest stay on the peers until read. Pulling again with
  // more experts adds them. The policy pre-check applies as for a filtered pull.
  Result<PartialPullResult> PullPartial(const store::RepoId& repo, const std::string& rev, const ExpertSelection& sel);
  // The running fill that will commit `commit`, if any (for requests by the planned commit id).
  std::shared_ptr<Fill> FindByCommit(const store::RepoId& repo, const GitOid& commit);

 private:
  Result<PullResult> Run(Fill& fill, const PullOptions& options, const store::Signature& author,
                         const std::string& message, const std::string& staging);
  // Stores the upstream's git objects of fill.upstream_sha and the downloaded LFS contents of
  // `staging`; checks that the commit's files are the ones downloaded and verified.
  Status StoreGitRevision(const Fill& fill, const std::string& staging, store::Visibility visibility);

  store::Store* store_;
  Upstream* upstream_;
  std::string staging_root_;
  Gate gate_;
  std::unique_ptr<ChunkFetcher> fetcher_;
  std::atomic<double> last_download_seconds_{0};
  std::vector<std::string> peer_urls_;
  std::string trust_path_;
  // Chunk maps already refused (source, repo@sha): each is warned about once, not per file.
  std::mutex refused_mu_;
  std::set<std::string> refused_maps_;
  // A trusted chunk map of repo@sha from the peers or the upstream; nullopt when none is.
  std::optional<verify::ChunkMap> TrustedMap(const store::RepoId& repo, const std::string& sha);
  // Writes one file of a fill from chunks (local ones from the store, the rest from peers).
  // Chunks no peer has come from the upstream as HTTP Ranges of the file.
  Status FetchChunks(const Fill& fill, FillFile& ff, const verify::ChunkMapFile& file,
                     const std::function<void(uint64_t)>& progress);
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Fill>> running_;  // by repo + upstream sha + filter
  std::vector<std::pair<std::shared_ptr<Fill>, std::thread>> threads_;
};

// Repos the server may mirror: deny patterns win; a non-empty allow list must match.
struct MirrorPolicy {
  std::vector<std::string> allow, deny;
  bool Allows(const std::string& repo) const;
};

}  // namespace hubnode::hub

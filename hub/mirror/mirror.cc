#include "hub/mirror/mirror.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "base/log.h"
#include "hub/git/connectivity.h"
#include "hub/git/pack.h"
#include "hub/trust/trust_gate.h"
#include "store/expert_index.h"
#include "store/safetensors.h"

namespace hubnode::hub {

using json = nlohmann::json;
namespace {

namespace fs = std::filesystem;

bool Matches(const std::vector<std::string>& globs, const std::string& s) {
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), s.c_str(), 0) == 0) return true;
  }
  return false;
}


// The ref a revision names locally: a full ref as given, a branch otherwise; none for a commit id.
std::string LocalRef(const std::string& rev) {
  if (rev.size() == 40 && IsLowerHex(rev)) return "";
  if (rev.rfind("refs/", 0) == 0) return rev;
  return "refs/heads/" + rev;
}

Status MoveRef(store::Store* store, const store::RepoId& repo, const std::string& ref, const GitOid& target) {
  if (ref.empty()) return OkStatus();
  GitOid expected;
  if (ref.rfind("refs/held/", 0) == 0) {
    // Held refs never resolve: find the current one among the refs.
    if (auto refs = store->ListRefs(repo); refs.ok()) {
      for (const auto& rf : *refs) {
        if (rf.name == ref) expected = rf.commit;
      }
    }
  } else if (auto cur = store->Resolve(repo, ref); cur.ok()) {
    expected = *cur;
  }
  return expected == target ? OkStatus() : store->UpdateRef(repo, ref, expected, target);
}

}  // namespace

bool MirrorPolicy::Allows(const std::string& repo) const {
  if (Matches(deny, repo)) return false;
  return allow.empty() || Matches(allow, repo);
}

// ---- FillFile / Fill ------------------------------------------------------------------------------

void FillFile::Progress(uint64_t written) {
  std::lock_guard<std::mutex> lock(mu_);
  written_ = written;
  cv_.notify_all();
}

void FillFile::Finish(bool verified) {
  std::lock_guard<std::mutex> lock(mu_);
  if (verified_ || failed_) return;
  (verified ? verified_ : failed_) = true;
  cv_.notify_all();
}

Result<uint64_t> FillFile::WaitFor(uint64_t offset) {
  std::unique_lock<std::mutex> lock(mu_);
  // The last byte is held back until the whole file is verified: a client never completes a file
  // whose digest turned out wrong.
  auto servable = [&] { return verified_ ? file.size : std::min(written_, file.size ? file.size - 1 : 0); };
  cv_.wait(lock, [&] { return failed_ || verified_ || servable() > offset; });
  if (failed_) return UnavailableError("the upstream fill of " + file.path + " failed");
  return servable();
}

Result<PullResult> Fill::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return result_.has_value(); });
  return *result_;
}

bool Fill::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return result_.has_value();
}

// ---- Mirror ---------------------------------------------------------------------------------------

Mirror::~Mirror() {
  std::vector<std::pair<std::shared_ptr<Fill>, std::thread>> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& [fill, t] : threads) t.join();
}

Result<PullResult> Mirror::Pull(const store::RepoId& repo, const std::string& rev, const PullOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<Fill> fill, Begin(repo, rev, options));
  return fill->Wait();
}

std::shared_ptr<Fill> Mirror::FindByCommit(const store::RepoId& repo, const GitOid& commit) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, fill] : running_) {
    if (fill->repo == repo && fill->planned_commit == commit) return fill;
  }
  return nullptr;
}

Result<std::shared_ptr<Fill>> Mirror::Begin(const store::RepoId& repo, const std::string& rev,
                                            const PullOptions& options) {
  ASSIGN_OR_RETURN(UpstreamRevision up, upstream_->ResolveRevision(repo.str(), rev));
  bool filtered = !options.include.empty() || !options.exclude.empty();
  std::string ref = LocalRef(rev);
  auto fill = std::make_shared<Fill>();
  fill->repo = repo;
  fill->rev = rev;
  fill->upstream_sha = up.sha;

  // Already mirrored (by another request, or an earlier pull): just move the ref.
  if (!filtered) {
    if (auto have = store_->Resolve(repo, up.sha); have.ok()) {
      RETURN_IF_ERROR(MoveRef(store_, repo, ref, *have));
      PullResult r;
      r.commit = *have;
      r.upstream_sha = up.sha;
      r.already_held = true;
      fill->planned_commit = *have;
      fill->result_ = r;
      return fill;
    }
  }

  std::string filter_sig;
  for (const auto& g : options.include) filter_sig += "+" + g + "\n";
  for (const auto& g : options.exclude) filter_sig += "-" + g + "\n";
  std::string key = Sha256Of(repo.str() + "\n" + up.sha + "\n" + filter_sig).hex().substr(0, 24);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = running_.find(key);
    if (it != running_.end()) return it->second;
  }

  ASSIGN_OR_RETURN(auto all, upstream_->ListFiles(repo.str(), up.sha));
  std::string staging = staging_root_ + "/" + key;
  std::vector<store::PlannedFile> planned;
  for (auto& f : all) {
    // An upstream path is written under the staging folder and committed: it must be a valid
    // repo path (inside the folder, within the length limits).
    if (Status v = store::ValidatePath(f.path); !v.ok()) return DataLossError("upstream lists a bad path: " + v.message());
    if (!options.include.empty() && !Matches(options.include, f.path)) continue;
    if (Matches(options.exclude, f.path)) continue;
    auto ff = std::make_shared<FillFile>();
    ff->file = f;
    ff->staging_path = staging + "/" + f.path;
    ff->stored_as_lfs = store::StoresAsLfs(f.path, f.size);
    store::PlannedFile pf{f.path, f.size, std::nullopt, std::nullopt};
    if (f.lfs) pf.sha256 = f.sha256;
    if (!f.lfs) pf.git_blob = f.blob;
    planned.push_back(pf);
    fill->files[f.path] = ff;
  }
  if (fill->files.empty()) return NotFoundError("no files to pull from " + repo.str() + "@" + up.sha);

  auto commit_info = upstream_->Commit(repo.str(), up.sha);
  store::Signature author;
  if (commit_info.ok() && !commit_info->author.empty()) author.name = commit_info->author;
  author.time = commit_info.ok() && commit_info->time > 0 ? commit_info->time : static_cast<int64_t>(std::time(nullptr));
  std::string title = commit_info.ok() && !commit_info->title.empty() ? commit_info->title : "Mirror " + repo.str();
  std::string message = title + "\n\nMirrored-From: " + upstream_->url() + "/" + repo.str() + "@" + up.sha + "\n";
  if (!filtered) {
    auto planned_id = store::PlanCommitId(planned, author, message);
    if (planned_id.ok()) fill->planned_commit = *planned_id;
  }
  fill->upstream_private = up.is_private;
  fill->upstream_gated = up.gated;
  if (!filtered && upstream_->SpeaksGit(repo.str())) {
    fill->git = true;
    if (auto oid = GitOid::FromHex(up.sha); oid.ok()) fill->planned_commit = *oid;
  }

  // License pre-check: fetch the card, LICENSE and signature first; a denied model is refused
  // before any weight is fetched, and nothing streams until the policy could allow it.
  // (A filtered pull still reads the model's card and LICENSE, into a folder of their own.)
  if (gate_) {
    fill->gate_dir = filtered ? staging + "-gate" : staging;
    for (const auto& f : all) {
      static const std::set<std::string> kSmall = {"README.md", "LICENSE", "LICENSE.md", "LICENSE.txt",
                                                   "LICENSE-MODEL", "model.sig"};
      if (!kSmall.count(f.path)) continue;
      std::string dest = fill->gate_dir + "/" + f.path;
      std::error_code dir_ec;
      fs::create_directories(fs::path(dest).parent_path(), dir_ec);
      RETURN_IF_ERROR(upstream_->Download(repo.str(), up.sha, f, dest, nullptr));
    }
    fill->pre_check = gate_(fill->gate_dir, repo, /*full=*/false);
    if (fill->pre_check.verdict == 2) return FailedPreconditionError("policy: " + fill->pre_check.summary);
    fill->stream_ok = fill->pre_check.verdict == 0 && !fill->pre_check.signature_required;
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = running_.emplace(key, fill);
  if (!inserted) return it->second;  // another request planned the same fill meanwhile
  // Reap the threads of fills that have ended.
  std::erase_if(threads_, [](auto& entry) {
    if (!entry.first->done()) return false;
    entry.second.join();
    return true;
  });
  threads_.emplace_back(fill, std::thread([this, fill, options, author, message, staging, key, filtered, ref] {
    PullOptions o = options;
    auto result = Run(*fill, o, author, message, staging);
    if (result.ok() && !filtered) {
      Status s = MoveRef(store_, fill->repo, ref, result->commit);
      if (!s.ok()) result = s;
    }
    if (!result.ok()) {
      for (auto& [path, ff] : fill->files) ff->Finish(false);
      LOG(Warning) << "fill of " << fill->repo.str() << "@" << fill->upstream_sha << " failed: " << result.status().ToString();
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      running_.erase(key);
    }
    std::lock_guard<std::mutex> l(fill->mu_);
    fill->result_ = result;
    fill->cv_.notify_all();
  }));
  return fill;
}

Result<PullResult> Mirror::Run(Fill& fill, const PullOptions& options, const store::Signature& author,
                               const std::string& message, const std::string& staging) {
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return InternalError("cannot create staging folder " + staging + ": " + ec.message());
  std::vector<std::shared_ptr<FillFile>> files;
  uint64_t total = 0;
  for (auto& [path, ff] : fill.files) {
    files.push_back(ff);
    total += ff->file.size;
  }

  // With peers, a trusted chunk map lets LFS files come chunk by chunk from them.
  const std::optional<verify::ChunkMap> map = fetcher_ ? TrustedMap(fill.repo, fill.upstream_sha) : std::nullopt;

  // Download in parallel; the first error stops the others from starting new files.
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> done{0};
  std::mutex err_mu, progress_mu;
  Status first_error;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < files.size();) {
      {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!first_error.ok()) return;
      }
      FillFile& ff = *files[i];
      fs::path dest(ff.staging_path);
      std::error_code dir_ec;
      fs::create_directories(dest.parent_path(), dir_ec);
      struct stat st;
      uint64_t written = ::stat(ff.staging_path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
      if (written > ff.file.size) written = 0;
      ff.Progress(written);
      auto count = [&](uint64_t n) {
        uint64_t d = done.fetch_add(n) + n;
        if (options.progress) {
          std::lock_guard<std::mutex> lock(progress_mu);
          options.progress(d, total, ff.file.path);
        }
      };
      const verify::ChunkMapFile* mapped = nullptr;
      if (map && ff.file.lfs) {
        if (auto f = map->File(ff.file.path); f.ok() && (*f)->sha256 == ff.file.sha256 && (*f)->size == ff.file.size) {
          mapped = *f;
        }
      }
      auto download = [&] {
        return upstream_->Download(fill.repo.str(), fill.upstream_sha, ff.file, ff.staging_path, [&](uint64_t n) {
          written += n;
          ff.Progress(written);
          count(n);
        });
      };
      Status s = mapped ? FetchChunks(fill, ff, *mapped, count) : download();
      if (mapped && s.code() == StatusCode::kUnavailable) {
        // No peer could provide some chunk: the upstream has the whole file.
        LOG(Warning) << ff.file.path << ": " << s.message() << "; downloading it from the upstream";
        std::error_code rm_ec;
        fs::remove(ff.staging_path, rm_ec);
        written = 0;
        s = download();
      }
      ff.Finish(s.ok());
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.ok()) first_error = s.WithContext(ff.file.path);
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  unsigned jobs = std::max(1u, std::min<unsigned>(options.jobs, static_cast<unsigned>(files.size())));
  const auto download_start = std::chrono::steady_clock::now();
  for (unsigned t = 0; t < jobs; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  last_download_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - download_start).count();
  RETURN_IF_ERROR(first_error);

  bool filtered = !options.include.empty() || !options.exclude.empty();
  store::ImportOptions io;
  io.branch = filtered ? (LocalRef(fill.rev).empty() ? "main" : LocalRef(fill.rev)) : "refs/mirror/" + fill.upstream_sha;
  io.message = message;
  io.author = author;
  if (!filtered) io.expected_parent = GitOid();  // the alias must not exist yet: no parent
  bool held = false;
  std::string gate_summary;
  if (gate_) {
    GateDecision d;
    if (!filtered) {
      d = gate_(staging, fill.repo, /*full=*/true);
    } else {
      // Part of a model cannot be checked against the whole model's signature.
      d = fill.pre_check;
      if (d.signature_required) {
        d.verdict = 2;
        d.summary += "; a signature is required, and a partial pull cannot be verified against it";
      }
      fs::remove_all(fill.gate_dir, ec);
    }
    if (d.verdict == 2) return FailedPreconditionError("policy: " + d.summary);
    if (d.verdict == 1) {
      // Stored, but held: on refs/held/<branch> until `hubnode approve`.
      std::string ref = LocalRef(fill.rev);
      std::string branch = ref.rfind("refs/heads/", 0) == 0 ? ref.substr(11) : "mirror-" + fill.upstream_sha;
      io.branch = "refs/held/" + branch;
      io.expected_parent.reset();
      held = true;
      gate_summary = d.summary;
    }
  }
  // A repo first created by this fill keeps the upstream's visibility: a private upstream repo,
  // fetched with the node's token, must not become public here.
  io.visibility = fill.upstream_private ? store::Visibility::kPrivate
                  : fill.upstream_gated ? store::Visibility::kGated
                                        : store::Visibility::kPublic;
  if (fill.git && !filtered) {
    Status stored = StoreGitRevision(fill, staging, io.visibility);
    if (stored.ok()) {
      auto commit = GitOid::FromHex(fill.upstream_sha);
      if (!commit.ok()) return commit.status();
      if (held) {
        RETURN_IF_ERROR(MoveRef(store_, fill.repo, io.branch, *commit));
        fs::remove_all(staging, ec);
        return FailedPreconditionError("policy: held for review as " + commit->hex() + ": " + gate_summary);
      }
      // Pinned by its id even when no branch points at it (a pull by commit id).
      RETURN_IF_ERROR(MoveRef(store_, fill.repo, "refs/mirror/" + fill.upstream_sha, *commit));
      (void)store_->PutRepoData(fill.repo, {{"mirror", json{{"upstream", upstream_->url()}, {"commitIds", "upstream"}, {"via", "git"}}.dump()}});
      PullResult result;
      result.commit = *commit;
      result.upstream_sha = fill.upstream_sha;
      for (const auto& [path, ff] : fill.files) {
        ++result.files;
        result.bytes += ff->file.size;
      }
      fs::remove_all(staging, ec);
      LOG(Info) << "mirrored " << fill.repo.str() << "@" << fill.upstream_sha << " from " << upstream_->url()
                << " over git (same commit id)";
      return result;
    }
    if (stored.code() == StatusCode::kDataLoss) return stored;
    LOG(Warning) << "git fetch of " << fill.repo.str() << "@" << fill.upstream_sha << " failed (" << stored.ToString()
                 << "); committing the files as the node's own commit";
  }
  ASSIGN_OR_RETURN(store::ImportResult imported, store_->ImportDirectory(staging, fill.repo, io));
  (void)store_->PutRepoData(fill.repo, {{"mirror", json{{"upstream", upstream_->url()}, {"commitIds", "node"}, {"via", "files"}}.dump()}});
  if (fill.planned_commit && *fill.planned_commit != imported.commit) {
    LOG(Warning) << "mirror of " << fill.repo.str() << " committed " << imported.commit.hex() << ", planned "
                 << fill.planned_commit->hex();
  }
  if (held) {
    fs::remove_all(staging, ec);
    return FailedPreconditionError("policy: held for review as " + imported.commit.hex() + ": " + gate_summary);
  }
  PullResult result;
  result.commit = imported.commit;
  result.upstream_sha = fill.upstream_sha;
  result.files = imported.files;
  result.bytes = imported.bytes;
  fs::remove_all(staging, ec);
  LOG(Info) << "mirrored " << fill.repo.str() << "@" << fill.upstream_sha << " from " << upstream_->url() << " as "
            << imported.commit.hex();
  return result;
}

Status Mirror::StoreGitRevision(const Fill& fill, const std::string& staging, store::Visibility visibility) {
  auto want = GitOid::FromHex(fill.upstream_sha);
  if (!want.ok()) return InvalidArgumentError("the upstream's commit id is not a sha1");
  // Offer what this repo holds (its refs' commits), so only new objects come.
  std::vector<std::string> haves;
  if (auto refs = store_->ListRefs(fill.repo); refs.ok()) {
    std::set<GitOid> seen;
    for (const auto& rf : *refs) {
      if (haves.size() < 64 && seen.insert(rf.commit).second) haves.push_back(rf.commit.hex());
    }
  }
  // What this repo already holds (all its refs): a commit reachable from them needs no fetch,
  // and a fetched history may lean only on them, never on another repo's objects.
  git::RepoView mine;
  mine.store = store_;
  if (auto refs = store_->ListRefs(fill.repo); refs.ok()) mine.refs = *refs;
  git::UploadLimits walk_limits;
  const bool have_commit = git::CheckAllReachable(mine, {*want}, walk_limits).ok();
  if (!have_commit) {
    const std::string pack = staging + ".pack";
    struct Remove {
      std::string p;
      ~Remove() { std::error_code e; fs::remove(p, e); }
    } remove{pack};
    RETURN_IF_ERROR(upstream_->GitFetch(fill.repo.str(), {fill.upstream_sha}, haves, pack, uint64_t{4} << 30));
    git::PackLimits limits;
    limits.max_object_bytes = uint64_t{64} << 20;
    limits.max_total_bytes = uint64_t{2} << 30;
    std::set<GitOid> in_pack;
    ASSIGN_OR_RETURN(git::PackSummary summary, git::UnpackToStore(*store_, pack, limits, &in_pack));
    auto history = git::WalkReceived(*store_, *want, in_pack, walk_limits.max_objects);
    if (!history.ok()) return DataLossError("the upstream's git objects: " + history.status().message());
    if (!git::CheckAllReachable(mine, history->external, walk_limits).ok()) {
      return DataLossError("the upstream's history of " + fill.upstream_sha + " names objects it did not send");
    }
    LOG(Info) << "git fetch of " << fill.repo.str() << "@" << fill.upstream_sha.substr(0, 12) << ": " << summary.objects
              << " objects";
  }
  // The commit's files must be exactly the ones downloaded and verified (and checked by the gate);
  // its paths are walked within a budget first (a tree naming one subtree many times).
  uint64_t budget = fill.files.size() * 2 + 1000;
  if (Status s = git::CheckPaths(*store_, *want, &budget); !s.ok()) {
    return DataLossError("the upstream's git tree of " + fill.upstream_sha + ": " + s.message());
  }
  auto files = store_->ListFiles(*want);
  if (!files.ok()) return UnavailableError("the upstream's git objects are incomplete: " + files.status().message());
  if (files->size() != fill.files.size()) {
    return DataLossError("the upstream's git tree of " + fill.upstream_sha + " lists other files than its API");
  }
  for (const auto& f : *files) {
    auto it = fill.files.find(f.path);
    if (it == fill.files.end() || it->second->file.size != f.size || it->second->file.lfs != f.lfs ||
        (f.lfs ? it->second->file.sha256 != f.sha256 : it->second->file.blob != f.blob)) {
      return DataLossError("the upstream's git tree of " + fill.upstream_sha + " disagrees with its API about " + f.path);
    }
    if (!f.lfs) continue;
    ASSIGN_OR_RETURN(bool held, store_->HasContent(f.sha256, f.size));
    if (held) continue;
    // The downloaded (and verified) bytes become the LFS object's content.
    store::ContentSpec spec;
    spec.path = f.path;
    spec.size = f.size;
    spec.sha256 = f.sha256;
    ASSIGN_OR_RETURN(auto writer, store_->NewContentWriter(spec));
    std::unique_ptr<FILE, int (*)(FILE*)> in(std::fopen(it->second->staging_path.c_str(), "rb"), &std::fclose);
    if (!in) return InternalError("cannot read " + it->second->staging_path);
    std::vector<char> buf(1 << 20);
    for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0;) {
      RETURN_IF_ERROR(writer->Write(std::string_view(buf.data(), n)));
    }
    RETURN_IF_ERROR(writer->Finish().status());
  }
  if (!store_->GetRepo(fill.repo).ok()) {
    Status created = store_->CreateRepo(fill.repo, visibility);
    if (!created.ok() && created.code() != StatusCode::kAlreadyExists) return created;
  }
  return store_->IndexCommit(*want);
}

void Mirror::SetPeers(const PeerFetchOptions& options, std::string trust_path) {
  fetcher_ = std::make_unique<ChunkFetcher>(options);
  peer_urls_ = options.peers;
  trust_path_ = std::move(trust_path);
}

std::vector<PeerStats> Mirror::PeerStatistics() const { return fetcher_ ? fetcher_->stats() : std::vector<PeerStats>{}; }

std::optional<verify::ChunkMap> Mirror::TrustedMap(const store::RepoId& repo, const std::string& sha) {
  auto trust = TrustFile(trust_path_).Load();
  if (!trust.ok()) {
    LOG(Warning) << "chunk maps not used: " << trust.status().ToString();
    return std::nullopt;
  }
  std::vector<std::string> sources = peer_urls_;
  sources.push_back(upstream_->url());
  for (const std::string& url : sources) {
    UpstreamOptions uo;
    uo.url = url;
    // The upstream's own token goes to the upstream only (a private repo's map needs it); peers
    // never see it.
    if (url == upstream_->url()) uo.token = upstream_->token();
    Upstream endpoint(uo);
    auto bundle = endpoint.GetChunkMap(repo.str(), sha);
    if (!bundle.ok()) continue;
    auto verified = verify::VerifyChunkMapWithTrustStore(*bundle, *trust, static_cast<int64_t>(std::time(nullptr)));
    auto first_refusal = [&] {
      std::lock_guard<std::mutex> lock(refused_mu_);
      return refused_maps_.insert(url + " " + repo.str() + "@" + sha).second;
    };
    if (!verified.ok()) {
      if (first_refusal()) {
        LOG(Warning) << "chunk map of " << repo.str() << "@" << sha << " from " << url
                     << " refused: " << verified.status().ToString();
      }
      continue;
    }
    if (verified->map.repo != repo.str() || verified->map.commit != sha) {
      if (first_refusal()) {
        LOG(Warning) << "chunk map from " << url << " is for " << verified->map.repo << "@" << verified->map.commit
                     << ", not " << repo.str() << "@" << sha << "; refused";
      }
      continue;
    }
    LOG(Info) << "chunk map of " << repo.str() << "@" << sha.substr(0, 12) << " from " << url << ", signed by "
              << verified->signer.key_name;
    return std::move(verified->map);
  }
  return std::nullopt;
}

Status Mirror::FetchChunks(const Fill& fill, FillFile& ff, const verify::ChunkMapFile& file,
                           const std::function<void(uint64_t)>& progress) {
  const int fd = ::open(ff.staging_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return InternalError("cannot create " + ff.staging_path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::vector<uint64_t> offsets;
  std::vector<ChunkId> ids;
  uint64_t offset = 0;
  for (const auto& c : file.chunks) {
    offsets.push_back(offset);
    ids.push_back(c.id);
    offset += c.size;
  }
  // Served bytes must be a verified prefix: track which chunks are written.
  std::vector<bool> written(ids.size(), false);
  size_t prefix = 0;
  uint64_t prefix_bytes = 0;
  auto put = [&](size_t i, std::string_view raw) -> Status {
    if (raw.size() != file.chunks[i].size) return DataLossError(file.path + ": chunk " + std::to_string(i) + " has the wrong size");
    if (::pwrite(fd, raw.data(), raw.size(), static_cast<off_t>(offsets[i])) != static_cast<ssize_t>(raw.size())) {
      return InternalError("cannot write " + ff.staging_path);
    }
    written[i] = true;
    while (prefix < written.size() && written[prefix]) prefix_bytes += file.chunks[prefix++].size;
    ff.Progress(std::min(prefix_bytes, file.size));
    progress(raw.size());
    return OkStatus();
  };
  // Chunks this store holds already (a fine-tune's unchanged tensors) are not fetched.
  ASSIGN_OR_RETURN(std::vector<bool> held, store_->HasChunks(ids));
  std::vector<ChunkId> missing;
  std::vector<size_t> missing_index;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (held[i]) {
      ASSIGN_OR_RETURN(std::string record, store_->ReadChunkRecord(ids[i]));
      ASSIGN_OR_RETURN(std::string raw, store::DecodeVerifiedChunk(ids[i], record));
      RETURN_IF_ERROR(put(i, raw));
    } else {
      missing.push_back(ids[i]);
      missing_index.push_back(i);
    }
  }
  Status fetched = fetcher_->Fetch(
      missing, [&](size_t k, std::string&& raw) { return put(missing_index[k], raw); },
      ChunkScope{fill.repo.str(), fill.upstream_sha});
  if (fetched.code() == StatusCode::kUnavailable) {
    // No peer had some chunks: each comes from the upstream as an HTTP Range of the file, and is
    // checked against the signed map like any other.
    size_t ranged = 0;
    for (size_t k : missing_index) {
      if (written[k]) continue;
      ASSIGN_OR_RETURN(std::string raw, upstream_->GetRange(fill.repo.str(), fill.upstream_sha, file.path, offsets[k], file.chunks[k].size));
      if (ChunkIdOf(raw) != ids[k]) return DataLossError(file.path + ": upstream bytes of chunk " + std::to_string(k) + " do not match the map");
      RETURN_IF_ERROR(put(k, raw));
      ++ranged;
    }
    LOG(Info) << file.path << ": " << ranged << " chunks no peer had came from the upstream by range";
    fetched = OkStatus();
  }
  RETURN_IF_ERROR(fetched);
  if (::fsync(fd) != 0) return InternalError("cannot sync " + ff.staging_path);
  // Every chunk matched the signed map; the whole file must also match the upstream's digest
  // (a map that lists the right chunks under a wrong file digest is caught here).
  Sha256 sha;
  std::string buf(1 << 20, '\0');
  const int in = ::open(ff.staging_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return InternalError("cannot read " + ff.staging_path);
  Closer in_closer{in};
  for (ssize_t n; (n = ::read(in, buf.data(), buf.size())) > 0;) sha.Update(std::string_view(buf.data(), n));
  if (sha.Finish() != ff.file.sha256) return DataLossError(file.path + ": assembled from verified chunks, but its SHA-256 differs");
  return OkStatus();
}

}  // namespace hubnode::hub

// ---- partial pulls --------------------------------------------------------------------------------

namespace hubnode::hub {

Result<ExpertSelection> ExpertSelection::Parse(std::string_view s) {
  ExpertSelection sel;
  if (s == "all") {
    sel.all = true;
    return sel;
  }
  if (s == "none") return sel;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    s.remove_prefix(comma == std::string_view::npos ? s.size() : comma + 1);
    size_t colon = item.find(':');
    uint32_t layer = 0, expert = 0;
    bool ok = colon != std::string_view::npos;
    if (ok) {
      auto l = std::from_chars(item.data(), item.data() + colon, layer);
      ok = l.ec == std::errc() && l.ptr == item.data() + colon;
      std::string_view e = item.substr(colon + 1);
      if (e == "shared") {
        expert = store::kSharedExpertIndex;
      } else {
        auto r = std::from_chars(e.data(), e.data() + e.size(), expert);
        ok = ok && r.ec == std::errc() && r.ptr == e.data() + e.size();
      }
    }
    if (!ok) return InvalidArgumentError("--experts takes none, all, or LAYER:EXPERT[,…] (EXPERT a number or shared)");
    sel.experts.push_back(store::ExpertKey{layer, expert});
  }
  return sel;
}

bool ExpertSelection::Wants(const store::ExpertKey& k) const {
  return all || std::find(experts.begin(), experts.end(), k) != experts.end();
}

Result<PartialPullResult> Mirror::PullPartial(const store::RepoId& repo, const std::string& rev, const ExpertSelection& sel) {
  if (!fetcher_) return FailedPreconditionError("a partial pull fetches from peers: give --peer (or --from a hubnode)");
  ASSIGN_OR_RETURN(UpstreamRevision up, upstream_->ResolveRevision(repo.str(), rev));
  const std::optional<verify::ChunkMap> map = TrustedMap(repo, up.sha);
  if (!map) {
    return FailedPreconditionError("no chunk map of " + repo.str() + "@" + up.sha +
                                   " that the trust store accepts; a partial pull needs one (hubnode trust add-node-key)");
  }
  ASSIGN_OR_RETURN(auto all, upstream_->ListFiles(repo.str(), up.sha));

  // The policy pre-check on the card, LICENSE and signature, as for a filtered pull.
  GateDecision pre;
  if (gate_) {
    std::string dir = staging_root_ + "/partial-" + Sha256Of(repo.str() + "\n" + up.sha).hex().substr(0, 16);
    std::error_code ec;
    fs::remove_all(dir, ec);
    for (const auto& f : all) {
      static const std::set<std::string> kSmall = {"README.md", "LICENSE", "LICENSE.md", "LICENSE.txt", "LICENSE-MODEL",
                                                   "model.sig"};
      if (!kSmall.count(f.path)) continue;
      fs::create_directories(dir, ec);
      RETURN_IF_ERROR(upstream_->Download(repo.str(), up.sha, f, dir + "/" + f.path, nullptr));
    }
    pre = gate_(dir, repo, /*full=*/false);
    fs::remove_all(dir, ec);
    if (pre.verdict == 2) return FailedPreconditionError("policy: " + pre.summary);
    if (pre.signature_required) {
      return FailedPreconditionError("policy: " + pre.summary + "; a signature is required, and a partial pull cannot be verified against it");
    }
  }

  struct Item {
    UpstreamFile f;
    const verify::ChunkMapFile* m = nullptr;
    std::vector<uint64_t> offsets;
    std::vector<bool> want;
    std::vector<store::ElementKindHint> hint;
  };
  std::vector<Item> items;
  auto is_safetensors = [](const std::string& p) { return p.size() > 12 && p.ends_with(".safetensors"); };
  for (const auto& f : all) {
    // An upstream path is written under the staging folder and committed: it must be a valid
    // repo path (inside the folder, within the length limits).
    if (Status v = store::ValidatePath(f.path); !v.ok()) return DataLossError("upstream lists a bad path: " + v.message());
    auto m = map->File(f.path);
    if (!m.ok()) return DataLossError("the chunk map of " + up.sha + " lacks " + f.path);
    if ((*m)->size != f.size || (f.lfs && (*m)->sha256 != f.sha256)) {
      return DataLossError("the chunk map and the upstream disagree on " + f.path);
    }
    Item it;
    it.f = f;
    it.m = *m;
    uint64_t off = 0;
    for (const auto& c : it.m->chunks) {
      it.offsets.push_back(off);
      off += c.size;
    }
    it.want.assign(it.m->chunks.size(), true);
    it.hint.assign(it.m->chunks.size(), store::ElementKindHint::kBytes);
    items.push_back(std::move(it));
  }

  PartialPullResult result;
  result.upstream_sha = up.sha;
  // Fetches the chunks of `want` the store lacks, each kept as it is verified.
  auto fetch = [&](const std::vector<std::pair<Item*, size_t>>& want) -> Status {
    std::vector<ChunkId> ids;
    for (auto [it, i] : want) ids.push_back(it->m->chunks[i].id);
    ASSIGN_OR_RETURN(std::vector<bool> held, store_->HasChunks(ids));
    std::vector<ChunkId> missing;
    std::vector<std::pair<Item*, size_t>> where;
    for (size_t k = 0; k < ids.size(); ++k) {
      if (held[k]) continue;
      missing.push_back(ids[k]);
      where.push_back(want[k]);
    }
    return fetcher_->Fetch(missing, [&](size_t k, std::string&& raw) -> Status {
      auto [it, i] = where[k];
      RETURN_IF_ERROR(store_->PutChunk(missing[k], raw, it->hint[i]));
      ++result.fetched_chunks;
      result.fetched_bytes += raw.size();
      return OkStatus();
    }, ChunkScope{repo.str(), up.sha});
  };

  // 1. Safetensors headers (each file's first chunk), then which chunks belong to which expert.
  std::vector<std::pair<Item*, size_t>> headers;
  for (auto& it : items) {
    if (is_safetensors(it.f.path) && !it.m->chunks.empty()) headers.emplace_back(&it, 0);
  }
  RETURN_IF_ERROR(fetch(headers));
  for (auto [it, zero] : headers) {
    ASSIGN_OR_RETURN(std::string record, store_->ReadChunkRecord(it->m->chunks[0].id));
    ASSIGN_OR_RETURN(std::string head, store::DecodeVerifiedChunk(it->m->chunks[0].id, record));
    uint64_t n = 0;
    for (int i = 7; i >= 0 && head.size() >= 8; --i) n = (n << 8) | static_cast<uint8_t>(head[i]);
    if (head.size() < 8 || 8 + n != head.size()) return DataLossError(it->f.path + ": its first chunk is not its header");
    auto header = store::ParseSafetensorsHeader(std::string_view(head).substr(8), it->f.size);
    if (!header.ok()) return header.status().WithContext(it->f.path);
    std::vector<store::TensorInfo> tensors;
    for (const auto& t : header->tensors) tensors.push_back(store::TensorInfo{t.name, t.dtype, t.shape, t.begin, t.end});
    store::ExpertIndex index;
    store::AddExpertParts(it->f.path, tensors, &index);
    for (size_t i = 0; i < it->m->chunks.size(); ++i) {
      uint64_t b = it->offsets[i], e = b + it->m->chunks[i].size;
      for (const auto& t : tensors) {
        if (b >= t.begin && b < t.end) {
          it->hint[i] = store::ElementKindForDtype(t.dtype);
          break;
        }
      }
      for (const auto& [key, parts] : index) {
        for (const auto& p : parts) {
          if (b >= p.offset && e <= p.offset + p.length) it->want[i] = sel.Wants(key);
        }
      }
    }
  }

  // 2. Everything wanted: metadata files whole, non-expert tensors, the selected experts.
  std::vector<std::pair<Item*, size_t>> wanted;
  for (auto& it : items) {
    for (size_t i = 0; i < it.want.size(); ++i) {
      if (it.want[i]) wanted.emplace_back(&it, i);
    }
  }
  RETURN_IF_ERROR(fetch(wanted));

  // 3. The files, recorded from their chunk lists, and one commit of them.
  store::CommitSpec spec;
  for (auto& it : items) {
    store::FileChange c;
    c.path = it.f.path;
    c.sha256 = it.m->sha256;
    c.size = it.f.size;
    c.lfs = store::StoresAsLfs(it.f.path, it.f.size);
    if (c.lfs) {
      store::PartialContent pc{it.f.path, it.m->sha256, it.f.size, {}};
      for (size_t i = 0; i < it.m->chunks.size(); ++i) {
        pc.chunks.push_back(store::FileChunk{it.m->chunks[i].id, it.offsets[i], it.m->chunks[i].size});
      }
      RETURN_IF_ERROR(store_->RecordContent(pc));
    } else {
      // A regular file is whole here; its git blob id comes from its bytes.
      store::ContentSpec cs;
      cs.path = it.f.path;
      cs.size = it.f.size;
      cs.sha256 = it.m->sha256;
      cs.git_blob = true;
      ASSIGN_OR_RETURN(auto w, store_->NewContentWriter(cs));
      for (const auto& ch : it.m->chunks) {
        ASSIGN_OR_RETURN(std::string record, store_->ReadChunkRecord(ch.id));
        ASSIGN_OR_RETURN(std::string raw, store::DecodeVerifiedChunk(ch.id, record));
        RETURN_IF_ERROR(w->Write(raw));
      }
      ASSIGN_OR_RETURN(store::ContentInfo info, w->Finish());
      if (info.git_blob != it.f.blob) return DataLossError(it.f.path + ": its git blob id differs from the upstream's");
      c.git_blob = info.git_blob;
    }
    spec.changes.push_back(std::move(c));
  }
  auto commit_info = upstream_->Commit(repo.str(), up.sha);
  if (commit_info.ok() && !commit_info->author.empty()) spec.author.name = commit_info->author;
  spec.author.time = commit_info.ok() && commit_info->time > 0 ? commit_info->time : static_cast<int64_t>(std::time(nullptr));
  std::string title = commit_info.ok() && !commit_info->title.empty() ? commit_info->title : "Mirror " + repo.str();
  spec.message = title + "\n\nMirrored-From: " + upstream_->url() + "/" + repo.str() + "@" + up.sha + "\n";
  ASSIGN_OR_RETURN(store::WrittenCommit written, store_->WriteCommit(spec));
  if (auto have = store_->GetRepo(repo); !have.ok()) {
    Status s = store_->CreateRepo(repo, up.is_private ? store::Visibility::kPrivate
                                        : up.gated      ? store::Visibility::kGated
                                                        : store::Visibility::kPublic);
    if (!s.ok() && s.code() != StatusCode::kAlreadyExists) return s;
  }
  std::string ref = LocalRef(rev).empty() ? "refs/heads/main" : LocalRef(rev);
  if (pre.verdict == 1) ref = "refs/held/" + (ref.rfind("refs/heads/", 0) == 0 ? ref.substr(11) : "mirror-" + up.sha);
  RETURN_IF_ERROR(MoveRef(store_, repo, ref, written.commit));
  if (pre.verdict == 1) {
    return FailedPreconditionError("policy: held for review as " + written.commit.hex() + ": " + pre.summary);
  }

  result.commit = written.commit;
  result.files = items.size();
  std::vector<ChunkId> every;
  for (const auto& it : items) {
    for (const auto& c : it.m->chunks) every.push_back(c.id);
  }
  ASSIGN_OR_RETURN(std::vector<bool> held, store_->HasChunks(every));
  size_t k = 0;
  for (const auto& it : items) {
    for (const auto& c : it.m->chunks) {
      ++result.chunks;
      result.bytes += c.size;
      if (held[k++]) {
        ++result.chunks_held;
        result.bytes_held += c.size;
      }
    }
  }
  LOG(Info) << "partial pull of " << repo.str() << "@" << up.sha << ": " << result.chunks_held << " of " << result.chunks
            << " chunks held, " << result.fetched_chunks << " fetched";
  return result;
}

}  // namespace hubnode::hub

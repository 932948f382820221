#include "hub/mirror.h"

#include <fnmatch.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "base/log.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;

bool Matches(const std::vector<std::string>& globs, const std::string& s) {
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), s.c_str(), 0) == 0) return true;
  }
  return false;
}

// An upstream path is written under the staging folder: it must stay inside it.
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p.size() > 4096 || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == ".." || part == ".git") return false;
    start = end + 1;
  }
  for (char c : p) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '\\') return false;
  }
  return true;
}

// The ref a revision names locally: a full ref as given, a branch otherwise; none for a commit id.
std::string LocalRef(const std::string& rev) {
  if (rev.size() == 40 && IsLowerHex(rev)) return "";
  if (rev.rfind("refs/", 0) == 0) return rev;
  return "refs/heads/" + rev;
}

}  // namespace

bool MirrorPolicy::Allows(const std::string& repo) const {
  if (Matches(deny, repo)) return false;
  return allow.empty() || Matches(allow, repo);
}

Result<PullResult> Mirror::Pull(const store::RepoId& repo, const std::string& rev, const PullOptions& options) {
  std::shared_ptr<std::mutex> key_mu;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = in_flight_[repo.str() + "@" + rev];
    if (!slot) slot = std::make_shared<std::mutex>();
    key_mu = slot;
  }
  std::lock_guard<std::mutex> lock(*key_mu);
  return PullLocked(repo, rev, options);
}

Result<PullResult> Mirror::PullLocked(const store::RepoId& repo, const std::string& rev, const PullOptions& options) {
  PullResult result;
  ASSIGN_OR_RETURN(UpstreamRevision up, upstream_->ResolveRevision(repo.str(), rev));
  result.upstream_sha = up.sha;
  const std::string& sha = result.upstream_sha;
  bool filtered = !options.include.empty() || !options.exclude.empty();
  std::string ref = LocalRef(rev);

  // Already mirrored (another request, or an earlier pull): just move the ref.
  if (!filtered) {
    if (auto have = store_->Resolve(repo, sha); have.ok()) {
      result.commit = *have;
      result.already_held = true;
      if (!ref.empty()) {
        auto cur = store_->Resolve(repo, ref);
        GitOid expected = cur.ok() ? *cur : GitOid();
        if (expected != *have) RETURN_IF_ERROR(store_->UpdateRef(repo, ref, expected, *have));
      }
      return result;
    }
  }

  ASSIGN_OR_RETURN(auto all, upstream_->ListFiles(repo.str(), sha));
  std::vector<UpstreamFile> files;
  uint64_t total = 0;
  for (auto& f : all) {
    if (!SafeRelativePath(f.path)) return DataLossError("upstream lists an unsafe path: " + f.path.substr(0, 200));
    if (!options.include.empty() && !Matches(options.include, f.path)) continue;
    if (Matches(options.exclude, f.path)) continue;
    total += f.size;
    files.push_back(std::move(f));
  }
  if (files.empty()) return NotFoundError("no files to pull from " + repo.str() + "@" + sha);

  // Keyed by what is pulled, not from where: a pull resumed from another address (or mirror of
  // the same upstream) reuses the verified bytes.
  std::string key = Sha256Of(repo.str() + "\n" + sha + "\n" +
                             std::to_string(filtered) + [&] {
                               std::string s;
                               for (const auto& f : files) s += f.path + "\n";
                               return s;
                             }())
                        .hex()
                        .substr(0, 24);
  std::string staging = staging_root_ + "/" + key;
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return InternalError("cannot create staging folder " + staging + ": " + ec.message());

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
      const auto& f = files[i];
      fs::path dest = fs::path(staging) / f.path;
      std::error_code dir_ec;
      fs::create_directories(dest.parent_path(), dir_ec);
      Status s = upstream_->Download(repo.str(), sha, f, dest.string(), [&](uint64_t n) {
        uint64_t d = done.fetch_add(n) + n;
        if (options.progress) {
          std::lock_guard<std::mutex> lock(progress_mu);
          options.progress(d, total, f.path);
        }
      });
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.ok()) first_error = s.WithContext(f.path);
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < std::max(1u, std::min<unsigned>(options.jobs, files.size())); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  RETURN_IF_ERROR(first_error);

  auto commit_info = upstream_->Commit(repo.str(), sha);
  store::ImportOptions io;
  io.branch = filtered ? (ref.empty() ? "main" : ref) : "refs/mirror/" + sha;
  std::string title = commit_info.ok() && !commit_info->title.empty() ? commit_info->title : "Mirror " + repo.str();
  io.message = title + "\n\nMirrored-From: " + upstream_->url() + "/" + repo.str() + "@" + sha + "\n";
  if (commit_info.ok() && !commit_info->author.empty()) io.author.name = commit_info->author;
  if (commit_info.ok()) io.author.time = commit_info->time;
  if (!filtered) io.expected_parent = GitOid();  // the alias must not exist yet
  // A repo first created by this pull keeps the upstream's visibility: a private upstream repo,
  // fetched with the node's token, must not become public here.
  io.visibility = up.is_private ? store::Visibility::kPrivate
                  : up.gated    ? store::Visibility::kGated
                                : store::Visibility::kPublic;
  ASSIGN_OR_RETURN(store::ImportResult imported, store_->ImportDirectory(staging, repo, io));
  result.commit = imported.commit;
  result.files = imported.files;
  result.bytes = imported.bytes;
  if (!filtered && !ref.empty()) {
    auto cur = store_->Resolve(repo, ref);
    GitOid expected = cur.ok() ? *cur : GitOid();
    if (expected != imported.commit) RETURN_IF_ERROR(store_->UpdateRef(repo, ref, expected, imported.commit));
  }
  fs::remove_all(staging, ec);
  LOG(Info) << "mirrored " << repo.str() << "@" << sha << " from " << upstream_->url() << " as " << imported.commit.hex();
  return result;
}

}  // namespace hubnode::hub

// The write API's implementation (private to hub/): the shared state of WriteApi and the pieces
// its three files share. write_api.cc: routing, repos, preupload, branches and tags,
// validate-yaml; write_lfs.cc: the LFS batch API, signed uploads, multipart sessions;
// write_commit.cc: NDJSON commits and the policy before a commit becomes visible.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/git/upload_pack.h"
#include "hub/http/http_util.h"
#include "hub/trust/trust_gate.h"
#include "hub/write/write_api.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {
namespace wapi {
namespace fs = std::filesystem;

inline constexpr size_t kMaxBatchObjects = 1000;
inline constexpr size_t kMaxPreuploadFiles = 1000;
inline constexpr size_t kMaxCommitOps = 100000;
inline constexpr size_t kMaxUploadStats = 10000;
inline constexpr int kMaxPrNumber = 1000000;
inline constexpr uint64_t kMaxParts = 10000;        // parts of one multipart upload (S3's limit)
inline constexpr uint64_t kMaxPartUrls = 100000;    // signed part URLs in one batch answer
inline constexpr size_t kMaxSessions = 64;          // multipart uploads streaming at once (others: disk)
inline constexpr size_t kMaxSessionsPerUploader = 8;  // of those, one token's
inline constexpr int kCommitAttempts = 8;  // a commit without parentCommit, rebased on concurrent ones

enum class Kind {
  kNone, kCreate, kDelete, kMove, kSettings, kPreupload, kCommit, kBranch, kTag, kLfsBatch, kLfsPut, kLfsComplete,
  kValidateYaml,
  kApprove,
  kRefuse,         // POST /api/models/{repo}/refuse/{branch}
  kDiscussions,
  kGitInfoRefs,    // GET /{repo}[.git]/info/refs?service=...
  kGitUploadPack,  // POST /{repo}[.git]/git-upload-pack
  kGitReceivePack, // POST /{repo}[.git]/git-receive-pack
  kLfsGet,         // GET /api/lfs/objects/{oid} (a signed download URL)
};

struct WRoute {
  Kind kind = Kind::kNone;
  std::string type = "model";
  std::string repo;
  std::string rest;  // rev, branch or tag name, or the LFS oid
};

WRoute ParseWrite(const std::string& method, std::string_view target);

// Asks git and git-lfs for credentials (Basic; the token is the password).
void GitAuthChallenge(httplib::Response& res);

// Reads a whole (small) body. false when it is over `max`.
bool ReadBody(const httplib::ContentReader& reader, size_t max, std::string* out);

std::string Namespace(const std::string& repo);

std::string HmacHex(const std::string& key, const std::string& data);

bool ParseU64(std::string_view s, uint64_t* out);

std::string BranchRefName(const std::string& rev);

json ErrorList(const std::vector<std::string>& messages);

// A store error met while writing: a full disk (ResourceExhausted) is 507 InsufficientStorage
// with Retry-After (nothing was kept; writes work again once space is back); any other error is
// `http` with `code`, or the one Status table when `http` is 0.
void SendWriteError(httplib::Response& res, const Status& s, int http = 0, std::string_view code = "");

// One multipart upload in progress: a content writer fed part by part, in order. A part that
// arrives out of order (or while another streams) waits on disk until its turn.
struct PartSession {
  std::mutex mu;  // held while a part streams into the writer
  std::unique_ptr<store::ContentWriter> writer;
  uint64_t next = 1;  // the part the writer wants next
  uint64_t chunk = 0;
  bool failed = false;
  std::string dir;       // where its parts wait on disk
  std::string uploader;  // the token that asked for the upload URLs
  int64_t expires = 0;   // when its URLs expire (unix seconds): the session goes with them
};

struct UploadStat {
  uint64_t new_raw = 0, new_stored = 0;
};

}  // namespace wapi

struct WriteApi::Impl {
  Impl(store::Store* st, WriteOptions o)
      : store(st), options(std::move(o)), matcher(verify::LicenseMatcher::FromDirectory(options.common_licenses)) {}

  store::Store* store;
  WriteOptions options;
  verify::LicenseMatcher matcher;
  std::mutex stats_mu;
  std::map<Sha256Digest, wapi::UploadStat> upload_stats;  // new bytes of recent uploads, for commits
  // (repo, oid) of recent uploads: objects a repo may commit though it did not hold them before.
  std::set<std::pair<std::string, Sha256Digest>> uploaded;
  std::deque<std::pair<std::string, Sha256Digest>> uploaded_order;
  std::mutex pr_mu;                                 // serialises picking the next refs/pr/N
  std::mutex branch_mu;  // held while a branch's refs (refs/heads/X, refs/held/X) move together
  std::mutex sessions_mu;
  std::map<std::string, std::shared_ptr<wapi::PartSession>> sessions;  // multipart uploads in progress
  int64_t next_sweep = 0;  // when ExpireSessions next looks for expired part folders (sessions_mu)

  std::string Base(const httplib::Request& req) const { return BaseUrl(req, options.public_url); }

  // ---- access --------------------------------------------------------------------------------

  // The repo for a write, checked: RepoNotFound for a missing repo or one the caller cannot
  // see; 401/403 when the caller may read but not write.
  // The repo a route names, or the error sent: RepoNotFound when it is missing or the caller may
  // not read it (only when it is private, with `private_only`: writes check rights separately).
  std::optional<store::RepoInfo> FindRepo(const wapi::WRoute& r, const std::optional<Principal>& who, bool private_only,
                                          httplib::Response& res);
  // The repo for a contribution: its writers (`writer` set), or any write-scope token that may
  // read it, when it is not private; the error is sent otherwise.
  std::optional<store::RepoInfo> ContributableRepo(const wapi::WRoute& r, const std::optional<Principal>& who,
                                                   bool* writer, httplib::Response& res);
  std::optional<store::RepoInfo> WritableRepo(const wapi::WRoute& r, const std::optional<Principal>& who,
                                              httplib::Response& res);

  bool Authorized(const std::optional<Principal>& who, const store::RepoId& id, httplib::Response& res);

  std::optional<json> JsonBody(const httplib::ContentReader& reader, httplib::Response& res);

  // The policy's verdict on `commit` as it would be served from repo `as` (its namespace's policy
  // and signature requirement), with the bases `who` may read.
  TrustReport Assess(const store::RepoId& as, const GitOid& commit, const std::optional<Principal>& who);
  // Refuses (403 PolicyRefused, naming the ref and the rules) when a branch or tag head of `from`
  // would be denied as repo `as`; true when none would. For moves and visibility changes, which
  // put released revisions under another policy or audience. (Review is not refusal: downloads
  // stop only at deny.)
  bool HeadsAllowed(const store::RepoId& from, const store::RepoId& as, const std::optional<Principal>& who,
                    httplib::Response& res);

  // ---- repos ---------------------------------------------------------------------------------

  static bool Bool(const json& j, const char* key);

  static std::string Str(const json& j, const char* key);

  // A branch as its readers see it (`released`) and as its writers do (`held`, a commit staged
  // for review on refs/held/<branch>, when there is one).
  struct BranchState {
    std::optional<GitOid> released, held;
    std::optional<GitOid> head() const { return held ? held : released; }
  };
  Status ReadBranch(const store::RepoId& repo, const std::string& ref, BranchState* out);
  std::optional<GitOid> Released(const store::RepoId& repo, const std::string& ref);
  // POST /api/models/{repo}/approve/{branch}: an operator releases what is staged there.
  void Approve(const wapi::WRoute& r, httplib::Response& res, const std::optional<Principal>& who);
  // POST /api/models/{repo}/refuse/{branch}: an operator drops what is staged there.
  void Refuse(const wapi::WRoute& r, httplib::Response& res, const std::optional<Principal>& who);
  // Forgets what is staged on a branch (deleted, or overwritten with a released commit).
  void DropHeld(const store::RepoId& repo, const std::string& branch);
  // Stores a small regular (non-LFS) file's bytes; the change that puts them at `path`.
  Result<store::ContentInfo> PutRegularFile(const std::string& path, std::string_view bytes);
  static store::FileChange RegularFileChange(const std::string& path, const store::ContentInfo& info);
  // The first commit of a new repo (the default .gitattributes), on its default branch.
  Status InitialCommit(const store::RepoId& id, const Principal& who);
  void Create(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
              const std::optional<Principal>& who);

  std::optional<store::RepoId> RepoFromBody(const json& body, const char* name_key, const char* org_key,
                                            httplib::Response& res);

  void Delete(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who);

  void Move(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who);

  void Settings(const wapi::WRoute& r, httplib::Response& res, const httplib::ContentReader& reader,
                const std::optional<Principal>& who);

  // ---- preupload -----------------------------------------------------------------------------

  static bool Ignored(const std::string& path, const std::string& gitignore);

  void Preupload(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader, const std::optional<Principal>& who);

  // ---- LFS -----------------------------------------------------------------------------------

  // What an upload URL is signed for: one object of one size, for one repo and the token that
  // asked for it, in parts of `chunk`, until `exp`.
  struct Signed {
    std::string repo;
    uint64_t size = 0, chunk = 0;
    int part = 0;
    std::string uploader;
    int64_t exp = 0;
  };

  std::string Signature(const char* what, const std::string& oid, const Signed& s, int64_t exp) const;

  std::string SignUrl(const std::string& base, const char* what, const std::string& oid, const Signed& s,
                      int64_t exp) const;

  // Checks a signed URL's query; what it was signed for, or sends 403.
  std::optional<Signed> CheckSigned(const httplib::Request& req, const char* what, const std::string& oid,
                                    httplib::Response& res);

  // The object of an upload URL and what the URL was signed for; or the error is sent.
  std::optional<std::pair<Sha256Digest, Signed>> SignedTarget(const wapi::WRoute& r, const httplib::Request& req,
                                                              const char* what, httplib::Response& res);

  // ---- possession: an object counts for a repo once it is in the repo or was uploaded to it ----

  // The LFS objects of every ref of a repo.
  std::set<Sha256Digest> RepoObjects(const store::RepoId& repo);

  void RecordUpload(const std::string& repo, const Sha256Digest& oid);

  bool Uploaded(const std::string& repo, const Sha256Digest& oid);

  // The batch API's download operation: signed URLs for the objects the caller can see.
  void LfsDownloadBatch(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res, const json& body,
                        const std::optional<Principal>& who);
  void LfsBatch(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader, const std::optional<Principal>& who);

  void Remember(const store::ContentInfo& info);

  wapi::UploadStat TakeStat(const Sha256Digest& d);

  // One multipart upload: of one object, for one repo, by one uploader. Its parts and session are
  // keyed by all of these, so nobody else's batch reaches them.
  std::string UploadKey(const std::string& oid, const Signed& sg) const;
  std::string PartsDir(const std::string& oid, const Signed& sg) const { return options.uploads_dir + "/" + UploadKey(oid, sg); }

  void LfsPut(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader);

  // ---- multipart: parts that arrive in order stream straight into the store ----------------

  std::shared_ptr<wapi::PartSession> Session(const std::string& oid, const Signed& sg, bool create);

  void EndSession(const std::string& oid, const Signed& sg);

  // Drops sessions whose URLs have expired, with their parts. REQUIRES: sessions_mu held.
  void ExpireSessions(int64_t now);

  // Feeds parts waiting on disk into the writer while they are next. REQUIRES: s.mu held.
  void DrainParts(wapi::PartSession& s);

  void PutPart(const std::string& oid, const Signed& sg, int part, uint64_t expect, httplib::Response& res,
               const httplib::ContentReader& reader);

  void WritePartFile(const std::string& dir, int part, uint64_t expect, int64_t exp, httplib::Response& res,
                     const httplib::ContentReader& reader);

  void LfsComplete(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader);

  // ---- commits -------------------------------------------------------------------------------

  struct CommitBody {
    std::string summary, description;
    std::optional<std::string> parent;
    std::vector<store::FileChange> changes;
    uint64_t bytes = 0, new_raw = 0, new_stored = 0;
    bool saw_header = false;
    std::string repo;                             // the repo committed to
    std::optional<std::set<Sha256Digest>> own;    // its LFS objects, looked up once when needed
  };

  // Applies one operation of a commit body; the content of an inline file goes into the store now.
  Status CommitOp(const std::string& key, const json& v, CommitBody* cb);

  // As the Hub does: an LFS file whose path the default LFS patterns do not cover (a large .txt)
  // is added to .gitattributes, unless the commit writes .gitattributes itself.
  Status TrackLfsPaths(const std::optional<GitOid>& head, CommitBody* cb);

  // Reads an NDJSON commit body line by line (never whole), or a JSON object body.
  Status ReadCommitBody(const httplib::Request& req, const httplib::ContentReader& reader, CommitBody* cb,
                        bool* too_big);

  void Commit(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader, const std::optional<Principal>& who);

  // ---- branches and tags ---------------------------------------------------------------------

  void BranchOrTag(const wapi::WRoute& r, bool tag, const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader, const std::optional<Principal>& who);

  // ---- discussions and pull requests (discussions.cc) ----------------------------------------

  // Moves branch `ref` from the state read in `branch` to `commit`: onto the branch itself,
  // releasing what was staged there, or (`stage`) onto refs/held/<branch> for its writers only.
  // FailedPrecondition when the branch moved since `branch` was read.
  Status LandOnBranch(const store::RepoId& repo, const std::string& ref, const BranchState& branch, const GitOid& commit,
                      bool stage);
  // The next free number of a repo's discussions and pull requests. REQUIRES: pr_mu held.
  Result<int> NextDiscussionNumber(const store::RepoId& repo);
  Result<json> LoadDiscussion(const store::RepoId& repo, int num);
  // FailedPrecondition when the record would be over its size (less a reserve for writers).
  Status SaveDiscussion(const store::RepoId& repo, const json& d, bool writer);
  // Whether refs/pr/N's pull request takes commits (open or draft).
  bool PrOpen(const store::RepoId& repo, const std::string& pr_ref);
  // Who opened refs/pr/N's pull request ("" when it has no record).
  std::string PrAuthor(const store::RepoId& repo, const std::string& pr_ref);
  // The record of a pull request opened by a commit (create_pr). REQUIRES: pr_mu held.
  Status RecordPullRequest(const store::RepoId& repo, int num, const std::string& title, const std::string& description,
                           const std::string& author, const std::string& base, const GitOid& commit,
                           const std::string& subject);
  // A commit pushed to refs/pr/N, as an event of its pull request.
  void RecordPrCommit(const store::RepoId& repo, const std::string& pr_ref, const GitOid& commit,
                      const std::string& subject, const std::string& author);
  // The repo for a read: RepoNotFound when it is missing or the caller may not read it.
  std::optional<store::RepoInfo> ReadableRepo(const wapi::WRoute& r, const std::optional<Principal>& who,
                                              httplib::Response& res);
  json DiscussionSummary(const store::RepoInfo& repo, const json& d);
  void Discussions(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader, const std::optional<Principal>& who);
  void ListDiscussions(const store::RepoInfo& repo, const httplib::Request& req, httplib::Response& res);
  void OpenDiscussion(const store::RepoInfo& repo, httplib::Response& res, const httplib::ContentReader& reader,
                      const std::optional<Principal>& who);
  void DiscussionDetails(const store::RepoInfo& repo, int num, const httplib::Request& req, httplib::Response& res,
                         const std::optional<Principal>& who);
  // How a pull request's head merges into its target: fast-forward, or the file changes to apply
  // on the target (three-way, by path, against their merge base) and the paths changed on both.
  struct MergePlan {
    bool fast_forward = false;
    GitOid base;
    std::vector<store::FileChange> changes;
    std::vector<std::string> conflicts;
  };
  Result<MergePlan> PlanMerge(const GitOid& target, const GitOid& head);
  // A unified diff between two commits (whole-file hunks; LFS files by pointer), cut at 1 MiB.
  Result<std::string> Diff(const GitOid& from, const GitOid& to);
  // REQUIRES: pr_mu held (the discussion record is rewritten).
  void MergePullRequest(const store::RepoInfo& repo, json& disc, const json& body, httplib::Response& res,
                        const std::optional<Principal>& who);

  // ---- git (write_git.cc) --------------------------------------------------------------------

  // The repo of a git route if the caller may read it; otherwise 401 with a Basic challenge for
  // anonymous callers (git then asks for the token) and 404 for others, for missing and hidden
  // repos alike.
  std::optional<store::RepoInfo> GitRepo(const wapi::WRoute& r, const std::optional<Principal>& who,
                                         httplib::Response& res);
  // The refs git shows the caller: branches, tags and pull requests; the repo's writers see
  // branches at their staged heads.
  // `fetch`: drop refs whose head today's policy denies (as downloads answer them 451).
  git::RepoView GitView(const store::RepoInfo& repo, const std::optional<Principal>& who, bool fetch = true);
  // Whether today's policy denies `commit` as `repo` serves it to `who` (cached 30 s per trust
  // store contents).
  bool DeniedNow(const store::RepoInfo& repo, const GitOid& commit, const std::optional<Principal>& who);
  std::mutex verdict_mu;
  std::map<std::string, std::pair<bool, std::chrono::steady_clock::time_point>> verdicts;
  std::atomic<int> git_fetches{0};  // upload-packs streaming now
  void GitInfoRefs(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                   const std::optional<Principal>& who);
  void GitUploadPack(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader, const std::optional<Principal>& who);
  void GitReceivePack(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader, const std::optional<Principal>& who);
  // GET of a signed LFS download URL: the object's bytes, streamed from the store.
  void LfsGet(const wapi::WRoute& r, const httplib::Request& req, httplib::Response& res);

  // ---- validate-yaml -------------------------------------------------------------------------

  void ValidateYaml(httplib::Response& res, const httplib::ContentReader& reader);
};

}  // namespace hubnode::hub

#include "hub/write/write_api.h"

#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <fnmatch.h>

#include "base/file.h"
#include "base/hex.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "hub/http/router.h"
#include "hub/write/write_api_impl.h"

namespace hubnode::hub {

using namespace wapi;

namespace wapi {

WRoute ParseWrite(const std::string& method, std::string_view target) {
  WRoute r;
  if (target.empty() || target[0] != '/') return r;
  const std::vector<std::string> s = SplitTarget(target);
  const std::string decoded = JoinSegments(s, 0, s.size());
  std::string_view path = decoded;
  auto is = [&](Kind k, const char* m) {
    if (method == m) r.kind = k;
    return r;
  };
  if (path == "api/repos/create") return is(Kind::kCreate, "POST");
  if (path == "api/repos/delete") return is(Kind::kDelete, "DELETE");
  if (path == "api/repos/move") return is(Kind::kMove, "POST");
  if (path == "api/validate-yaml") return is(Kind::kValidateYaml, "POST");
  // Git's smart HTTP routes: /{repo}[.git]/info/refs, /git-upload-pack, /git-receive-pack.
  if (!path.starts_with("api/")) {
    auto git_route = [&](std::string_view suffix, Kind k, const char* m) -> bool {
      if (path.size() <= suffix.size() + 1 || !path.ends_with(suffix) || path[path.size() - suffix.size() - 1] != '/') {
        return false;
      }
      std::string_view repo = path.substr(0, path.size() - suffix.size() - 1);
      if (repo.ends_with(".git")) repo.remove_suffix(4);
      r.repo = std::string(repo);
      if (method == m) r.kind = k;
      return true;
    };
    if (git_route("info/refs", Kind::kGitInfoRefs, "GET") || git_route("git-upload-pack", Kind::kGitUploadPack, "POST") ||
        git_route("git-receive-pack", Kind::kGitReceivePack, "POST")) {
      return r;
    }
  }
  constexpr std::string_view kBatch = ".git/info/lfs/objects/batch";
  if (path.size() > kBatch.size() && path.ends_with(kBatch)) {
    std::string_view repo = path.substr(0, path.size() - kBatch.size());
    if (repo.starts_with("datasets/") || repo.starts_with("spaces/")) {
      r.type = std::string(repo.substr(0, repo.find('/') - 1));
      repo.remove_prefix(repo.find('/') + 1);
    }
    r.repo = std::string(repo);
    return is(Kind::kLfsBatch, "POST");
  }
  if (s.size() == 4 && s[0] == "api" && s[1] == "lfs" && s[2] == "download") {
    r.rest = std::string(s[3]);
    return is(Kind::kLfsGet, "GET");
  }
  if (s.size() == 4 && s[0] == "api" && s[1] == "lfs" && (s[2] == "objects" || s[2] == "complete")) {
    r.rest = std::string(s[3]);
    return s[2] == "objects" ? is(Kind::kLfsPut, "PUT") : is(Kind::kLfsComplete, "POST");
  }
  if (s.size() < 4 || s[0] != "api" || (s[1] != "models" && s[1] != "datasets" && s[1] != "spaces")) return r;
  r.type = std::string(s[1].substr(0, s[1].size() - 1));
  auto marker = [](std::string_view m) {
    return m == "settings" || m == "preupload" || m == "commit" || m == "branch" || m == "tag" || m == "approve" ||
           m == "refuse" || m == "discussions";
  };
  size_t i = (s.size() > 4 && marker(s[4])) ? 4 : marker(s[3]) ? 3 : 0;
  if (i == 0) return r;
  r.repo = JoinSegments(s, 2, i);
  r.rest = JoinSegments(s, i + 1, s.size());
  std::string_view m = s[i];
  if (m == "settings" && r.rest.empty()) return is(Kind::kSettings, "PUT");
  if (m == "discussions") return method == "GET" || method == "POST" ? (r.kind = Kind::kDiscussions, r) : r;
  if (r.rest.empty()) return r;
  if (m == "preupload") return is(Kind::kPreupload, "POST");
  if (m == "commit") return is(Kind::kCommit, "POST");
  if (m == "approve") return is(Kind::kApprove, "POST");
  if (m == "refuse") return is(Kind::kRefuse, "POST");
  if (m == "branch") return method == "POST" || method == "DELETE" ? (r.kind = Kind::kBranch, r) : r;
  if (m == "tag") return method == "POST" || method == "DELETE" ? (r.kind = Kind::kTag, r) : r;
  return r;
}

bool ReadBody(const httplib::ContentReader& reader, size_t max, std::string* out) {
  bool too_big = false;
  reader([&](const char* data, size_t n) {
    if (out->size() + n > max) {
      too_big = true;
      return false;
    }
    out->append(data, n);
    return true;
  });
  return !too_big;
}

std::string Namespace(const std::string& repo) {
  size_t slash = repo.find('/');
  return slash == std::string::npos ? "" : repo.substr(0, slash);
}

std::string HmacHex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(out), len));
}

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string BranchRefName(const std::string& rev) {
  if (rev.starts_with("refs/")) return rev;
  return "refs/heads/" + rev;
}

void SendWriteError(httplib::Response& res, const Status& s, int http, std::string_view code) {
  if (s.code() == StatusCode::kResourceExhausted) {
    res.set_header("Retry-After", "300");
    return SendError(res, 507, "InsufficientStorage", s.message());
  }
  if (http == 0) return SendStatus(res, s);
  SendError(res, http, code, s.message());
}

json ErrorList(const std::vector<std::string>& messages) {
  json a = json::array();
  for (const auto& m : messages) a.push_back({{"message", m}});
  return a;
}

}  // namespace wapi

Result<std::string> LoadOrCreateUrlKey(const std::string& data_dir) {
  const std::string path = data_dir + "/upload.key";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    ASSIGN_OR_RETURN(std::string hex, ReadFileToString(path, 1024));
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) hex.pop_back();
    if (hex.size() < 64) return DataLossError(path + " is not a 32-byte hex key");
    return hex;
  }
  fs::create_directories(data_dir, ec);
  unsigned char buf[32];
  if (RAND_bytes(buf, sizeof buf) != 1) return InternalError("no randomness for the upload key");
  std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(buf), sizeof buf));
  const mode_t old = ::umask(077);
  Status s = WriteFileAtomic(path, hex + "\n");
  ::umask(old);
  RETURN_IF_ERROR(s);
  return hex;
}

std::optional<store::RepoInfo> WriteApi::Impl::FindRepo(const WRoute& r, const std::optional<Principal>& who,
                                                        bool private_only, httplib::Response& res) {
  if (r.type != "model") {
    SendError(res, 400, "UnsupportedRepoType", "this node stores model repos only");
    return std::nullopt;
  }
  auto id = store::RepoId::Parse(r.repo);
  if (!id.ok()) {
    SendError(res, 400, "BadRequest", id.status().message());
    return std::nullopt;
  }
  auto info = store->GetRepo(*id);
  if (!info.ok() && info.status().code() != StatusCode::kNotFound) {
    SendStatus(res, info.status());
    return std::nullopt;
  }
  const bool hidden = info.ok() && (private_only ? info->visibility == store::Visibility::kPrivate : true) &&
                      !CanRead(who, *info);
  if (!info.ok() || hidden) {
    SendError(res, 404, "RepoNotFound", "Repository not found");
    return std::nullopt;
  }
  return *info;
}

std::optional<store::RepoInfo> WriteApi::Impl::ContributableRepo(const WRoute& r, const std::optional<Principal>& who,
                                                                 bool* writer, httplib::Response& res) {
  auto info = FindRepo(r, who, /*private_only=*/false, res);
  if (!info) return std::nullopt;
  *writer = CanWrite(who, info->id);
  if (*writer) return info;
  if (!who) {
    SendError(res, 401, "Unauthorized", "a write token is required (Authorization: Bearer hf_...)");
    return std::nullopt;
  }
  if (who->scope != Scope::kWrite || info->visibility == store::Visibility::kPrivate) {
    SendError(res, 403, "Forbidden",
              who->scope != Scope::kWrite ? "this token is read-only" : "this token may not write to the namespace of " + info->id.str());
    return std::nullopt;
  }
  return info;
}

std::optional<store::RepoInfo> WriteApi::Impl::WritableRepo(const WRoute& r, const std::optional<Principal>& who,
                                            httplib::Response& res) {
  auto info = FindRepo(r, who, /*private_only=*/true, res);
  if (!info || !Authorized(who, info->id, res)) return std::nullopt;
  return info;
}

bool WriteApi::Impl::Authorized(const std::optional<Principal>& who, const store::RepoId& id, httplib::Response& res) {
  if (!who) {
    SendError(res, 401, "Unauthorized", "a write token is required (Authorization: Bearer hf_...)");
    return false;
  }
  if (!CanWrite(who, id)) {
    SendError(res, 403, "Forbidden",
              who->scope != Scope::kWrite ? "this token is read-only"
                                          : "this token may not write to the namespace of " + id.str());
    return false;
  }
  return true;
}

std::optional<json> WriteApi::Impl::JsonBody(const httplib::ContentReader& reader, httplib::Response& res) {
  std::string body;
  if (!ReadBody(reader, options.max_body, &body)) {
    SendError(res, 413, "PayloadTooLarge", "request body over " + std::to_string(options.max_body) + " bytes");
    return std::nullopt;
  }
  json j = (JsonDepthWithin(body) ? json::parse(body, nullptr, false) : json(json::value_t::discarded));
  if (!j.is_object()) {
    SendError(res, 400, "BadRequest", "the body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

bool WriteApi::Impl::Bool(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::string WriteApi::Impl::Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void WriteApi::Impl::Create(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
            const std::optional<Principal>& who) {
  auto body = JsonBody(reader, res);
  if (!body) return;
  std::string type = Str(*body, "type");
  if (!type.empty() && type != "model") {
    return SendError(res, 400, "UnsupportedRepoType", "this node stores model repos only");
  }
  if (body->contains("files") && (*body)["files"].is_array() && !(*body)["files"].empty()) {
    return SendError(res, 400, "BadRequest",
                     "files in a create request are not supported here: create the repo, then commit them");
  }
  std::string name = Str(*body, "name"), org = Str(*body, "organization");
  if (org.empty() && who && !who->ns.empty()) org = who->ns;
  auto id = store::RepoId::Parse(org.empty() ? name : org + "/" + name);
  if (!id.ok()) return SendError(res, 400, "BadRequest", id.status().message());
  if (!Authorized(who, *id, res)) return;
  store::Visibility vis = store::Visibility::kPublic;
  std::string v = Str(*body, "visibility");
  if (v == "private" || (body->contains("private") && (*body)["private"] == true)) {
    vis = store::Visibility::kPrivate;
  } else if (!v.empty() && v != "public") {
    return SendError(res, 400, "BadRequest", "visibility must be public or private");
  }
  std::string url = Base(req) + "/" + id->str();
  Status s = store->CreateRepo(*id, vis);
  if (s.code() == StatusCode::kAlreadyExists) {
    auto existing = store->GetRepo(*id);
    // Somebody else's private repo answers like any taken name, without saying more.
    return SendJson(res, {{"error", "You already created this model repo"}, {"url", url}}, 409);
  }
  if (!s.ok()) return SendWriteError(res, s);
  // As on the Hub, a new repo starts with one commit: the default .gitattributes. Clients read
  // the repo (repo_info, repoExists, the parent of their first upload) right after creating it.
  if (Status init = InitialCommit(*id, *who); !init.ok()) {
    (void)store->DeleteRepo(*id);
    return SendWriteError(res, init);
  }
  LOG(Info) << "created repo " << id->str() << (vis == store::Visibility::kPrivate ? " (private)" : "");
  SendJson(res, {{"url", url}, {"name", id->str()}, {"id", id->str()}});
}

namespace {

// Whether held ref `r` is what `branch_or_commit` names: its branch (BRANCH, refs/heads/BRANCH,
// refs/held/BRANCH) or its staged commit's 40 hex digits.
bool NamesStaged(const store::RefInfo& r, const std::string& branch_or_commit) {
  const std::string spec = branch_or_commit.starts_with("refs/held/")    ? branch_or_commit.substr(10)
                           : branch_or_commit.starts_with("refs/heads/") ? branch_or_commit.substr(11)
                                                                         : branch_or_commit;
  return r.name.starts_with("refs/held/") && (r.name.substr(10) == spec || r.commit.hex() == spec);
}

}  // namespace

Result<GitOid> ReleaseStaged(store::Store& store, const store::RepoId& repo, const std::string& branch_or_commit) {
  ASSIGN_OR_RETURN(auto refs, store.ListRefs(repo));
  for (const auto& r : refs) {
    if (!NamesStaged(r, branch_or_commit)) continue;
    const std::string branch = "refs/heads/" + r.name.substr(10);
    auto cur = store.Resolve(repo, branch);
    if (!cur.ok() && cur.status().code() != StatusCode::kNotFound) return cur.status();
    if (cur.ok()) {
      // What is staged must sit on what is released: if the branch moved on since, releasing
      // would rewind it.
      bool on_top = false;
      std::vector<GitOid> stack = {r.commit};
      std::set<GitOid> seen;
      while (!stack.empty() && seen.size() < 100000 && !on_top) {
        GitOid c = stack.back();
        stack.pop_back();
        if (!seen.insert(c).second) continue;
        if (c == *cur) on_top = true;
        ASSIGN_OR_RETURN(store::CommitInfo ci, store.GetCommit(c));
        for (const auto& p : ci.parents) stack.push_back(p);
      }
      if (!on_top) {
        return FailedPreconditionError("the branch moved on since these commits were staged; commit them again on top of it");
      }
    }
    RETURN_IF_ERROR(store.UpdateRef(repo, branch, cur.ok() ? *cur : GitOid(), r.commit));
    RETURN_IF_ERROR(store.UpdateRef(repo, r.name, r.commit, GitOid()));
    return r.commit;
  }
  return NotFoundError("nothing is staged for review at " + repo.str() + "@" + branch_or_commit.substr(0, 200));
}

Result<GitOid> RefuseStaged(store::Store& store, const store::RepoId& repo, const std::string& branch_or_commit) {
  ASSIGN_OR_RETURN(auto refs, store.ListRefs(repo));
  for (const auto& r : refs) {
    if (!NamesStaged(r, branch_or_commit)) continue;
    // Compare-and-swap: a commit staged on top meanwhile is not dropped unseen.
    Status s = store.UpdateRef(repo, r.name, r.commit, GitOid());
    if (s.code() == StatusCode::kFailedPrecondition) {
      return FailedPreconditionError("what is staged on " + r.name.substr(10) + " moved on since; look at it again");
    }
    RETURN_IF_ERROR(s);
    return r.commit;
  }
  return NotFoundError("nothing is staged for review at " + repo.str() + "@" + branch_or_commit.substr(0, 200));
}

// The .gitattributes the Hub writes into every new model repo.
constexpr std::string_view kDefaultGitattributes =
    "*.7z filter=lfs diff=lfs merge=lfs -text\n"
    "*.arrow filter=lfs diff=lfs merge=lfs -text\n"
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.bz2 filter=lfs diff=lfs merge=lfs -text\n"
    "*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    "*.ftz filter=lfs diff=lfs merge=lfs -text\n"
    "*.gz filter=lfs diff=lfs merge=lfs -text\n"
    "*.h5 filter=lfs diff=lfs merge=lfs -text\n"
    "*.joblib filter=lfs diff=lfs merge=lfs -text\n"
    "*.lfs.* filter=lfs diff=lfs merge=lfs -text\n"
    "*.mlmodel filter=lfs diff=lfs merge=lfs -text\n"
    "*.model filter=lfs diff=lfs merge=lfs -text\n"
    "*.msgpack filter=lfs diff=lfs merge=lfs -text\n"
    "*.npy filter=lfs diff=lfs merge=lfs -text\n"
    "*.npz filter=lfs diff=lfs merge=lfs -text\n"
    "*.onnx filter=lfs diff=lfs merge=lfs -text\n"
    "*.ot filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    "*.pb filter=lfs diff=lfs merge=lfs -text\n"
    "*.pickle filter=lfs diff=lfs merge=lfs -text\n"
    "*.pkl filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.pth filter=lfs diff=lfs merge=lfs -text\n"
    "*.rar filter=lfs diff=lfs merge=lfs -text\n"
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n"
    "*.tar.* filter=lfs diff=lfs merge=lfs -text\n"
    "*.tar filter=lfs diff=lfs merge=lfs -text\n"
    "*.tflite filter=lfs diff=lfs merge=lfs -text\n"
    "*.tgz filter=lfs diff=lfs merge=lfs -text\n"
    "*.wasm filter=lfs diff=lfs merge=lfs -text\n"
    "*.xz filter=lfs diff=lfs merge=lfs -text\n"
    "*.zip filter=lfs diff=lfs merge=lfs -text\n"
    "*.zst filter=lfs diff=lfs merge=lfs -text\n"
    "*tfevents* filter=lfs diff=lfs merge=lfs -text\n";

Result<store::ContentInfo> WriteApi::Impl::PutRegularFile(const std::string& path, std::string_view bytes) {
  store::ContentSpec spec;
  spec.path = path;
  spec.size = bytes.size();
  spec.git_blob = true;
  ASSIGN_OR_RETURN(auto w, store->NewContentWriter(spec));
  RETURN_IF_ERROR(w->Write(bytes));
  return w->Finish();
}

store::FileChange WriteApi::Impl::RegularFileChange(const std::string& path, const store::ContentInfo& info) {
  store::FileChange c;
  c.path = path;
  c.sha256 = info.sha256;
  c.size = info.size;
  c.git_blob = info.git_blob;
  return c;
}

Status WriteApi::Impl::InitialCommit(const store::RepoId& id, const Principal& who) {
  ASSIGN_OR_RETURN(store::ContentInfo info, PutRegularFile(".gitattributes", kDefaultGitattributes));
  store::CommitSpec commit;
  commit.changes.push_back(RegularFileChange(".gitattributes", info));
  commit.author.name = who.token_name;
  commit.author.email = who.token_name + "@hubnode";
  commit.message = "initial commit";
  ASSIGN_OR_RETURN(store::WrittenCommit written, store->WriteCommit(commit));
  ASSIGN_OR_RETURN(store::RepoInfo info_repo, store->GetRepo(id));
  return store->UpdateRef(id, "refs/heads/" + info_repo.default_branch, GitOid(), written.commit);
}

std::optional<store::RepoId> WriteApi::Impl::RepoFromBody(const json& body, const char* name_key, const char* org_key,
                                          httplib::Response& res) {
  std::string name = Str(body, name_key), org = org_key ? Str(body, org_key) : "";
  auto id = store::RepoId::Parse(org.empty() ? name : org + "/" + name);
  if (!id.ok()) {
    SendError(res, 400, "BadRequest", id.status().message());
    return std::nullopt;
  }
  return *id;
}

void WriteApi::Impl::Delete(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  auto body = JsonBody(reader, res);
  if (!body) return;
  auto id = RepoFromBody(*body, "name", "organization", res);
  if (!id) return;
  WRoute r;
  r.repo = id->str();
  if (!WritableRepo(r, who, res)) return;
  Status s = store->DeleteRepo(*id);
  if (!s.ok()) return SendWriteError(res, s);
  LOG(Info) << "deleted repo " << id->str();
  SendJson(res, json::object());
}

void WriteApi::Impl::Move(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  auto body = JsonBody(reader, res);
  if (!body) return;
  auto from = RepoFromBody(*body, "fromRepo", nullptr, res);
  if (!from) return;
  auto to = RepoFromBody(*body, "toRepo", nullptr, res);
  if (!to) return;
  WRoute r;
  r.repo = from->str();
  if (!WritableRepo(r, who, res)) return;
  if (!Authorized(who, *to, res)) return;
  // The destination's policy (a namespace may require signatures or refuse a license) applies to
  // what arrives there, as a commit there would.
  if (!HeadsAllowed(*from, *to, who, res)) return;
  Status s = store->MoveRepo(*from, *to);
  if (s.code() == StatusCode::kAlreadyExists) return SendError(res, 409, "Conflict", s.message());
  if (!s.ok()) return SendWriteError(res, s);
  LOG(Info) << "moved repo " << from->str() << " to " << to->str();
  SendJson(res, json::object());
}

void WriteApi::Impl::Settings(const WRoute& r, httplib::Response& res, const httplib::ContentReader& reader,
              const std::optional<Principal>& who) {
  auto repo = WritableRepo(r, who, res);
  if (!repo) return;
  auto body = JsonBody(reader, res);
  if (!body) return;
  store::Visibility vis = repo->visibility;
  if (body->contains("private")) {
    if (!(*body)["private"].is_boolean()) return SendError(res, 400, "BadRequest", "private must be a boolean");
    vis = (*body)["private"].get<bool>() ? store::Visibility::kPrivate : store::Visibility::kPublic;
  }
  std::string v = Str(*body, "visibility");
  if (v == "private") vis = store::Visibility::kPrivate;
  if (v == "public") vis = store::Visibility::kPublic;
  if (body->contains("gated")) {
    const json& g = (*body)["gated"];
    if (g == false) {
      if (vis == store::Visibility::kGated) vis = store::Visibility::kPublic;
    } else if (g == "auto" || g == "manual") {
      vis = store::Visibility::kGated;
    } else {
      return SendError(res, 400, "BadRequest", "gated must be false, \"auto\" or \"manual\"");
    }
  }
  // A wider audience sees the revisions as they are judged now.
  if (vis != repo->visibility && !HeadsAllowed(repo->id, repo->id, who, res)) return;
  Status s = store->SetVisibility(repo->id, vis);
  if (!s.ok()) return SendWriteError(res, s);
  SendJson(res, json::object());
}

bool WriteApi::Impl::Ignored(const std::string& path, const std::string& gitignore) {
  if (path == ".git" || path.starts_with(".git/")) return true;
  std::string_view rest = gitignore;
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string line(rest.substr(0, nl));
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#' || line[0] == '!') continue;
    bool dir = line.back() == '/';
    if (dir) line.pop_back();
    if (line.empty()) continue;
    bool anchored = line[0] == '/' || line.find('/') != std::string::npos;
    if (line[0] == '/') line.erase(0, 1);
    if (dir) {
      if (path.starts_with(line + "/") || path.find("/" + line + "/") != std::string::npos) return true;
      continue;
    }
    if (anchored ? fnmatch(line.c_str(), path.c_str(), FNM_PATHNAME) == 0
                 : fnmatch(line.c_str(), base.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

void WriteApi::Impl::Preupload(const WRoute& r, const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  // Contributors (write tokens of other namespaces) preupload for their pull requests.
  bool writer = false;
  auto repo = ContributableRepo(r, who, &writer, res);
  if (!repo) return;
  if (!writer && !QueryFlag(req, "create_pr", false) && !BranchRefName(r.rest).starts_with("refs/pr/")) {
    return SendError(res, 403, "Forbidden", "this token may only open pull requests on " + repo->id.str());
  }
  auto body = JsonBody(reader, res);
  if (!body) return;
  if (!body->contains("files") || !(*body)["files"].is_array()) {
    return SendError(res, 400, "BadRequest", "files must be an array");
  }
  const json& files = (*body)["files"];
  if (files.size() > kMaxPreuploadFiles) {
    return SendError(res, 400, "BadRequest", "at most " + std::to_string(kMaxPreuploadFiles) + " files per call");
  }
  std::string gitignore = Str(*body, "gitIgnore");
  std::optional<GitOid> head;
  if (auto c = writer ? store->ResolveStaged(repo->id, r.rest) : store->Resolve(repo->id, r.rest); c.ok()) head = *c;
  json out = json::array();
  for (const auto& f : files) {
    if (!f.is_object() || !f.contains("path") || !f["path"].is_string() || !f.contains("size") ||
        !f["size"].is_number_unsigned()) {
      return SendError(res, 400, "BadRequest", "each file needs a path and a size");
    }
    std::string path = f["path"].get<std::string>();
    uint64_t size = f["size"].get<uint64_t>();
    bool binary = false;
    if (f.contains("sample") && f["sample"].is_string()) {
      auto sample = verify::Base64Decode(f["sample"].get<std::string>());
      binary = sample.ok() && sample->find('\0') != std::string::npos;
    }
    bool lfs = size > 0 && (store::StoresAsLfs(path, size) || binary);
    json e = {{"path", path}, {"uploadMode", lfs ? "lfs" : "regular"}, {"shouldIgnore", Ignored(path, gitignore)}};
    if (head) {
      if (auto fe = store->StatFile(*head, path); fe.ok()) {
        e["oid"] = fe->lfs ? fe->sha256.hex() : fe->blob.hex();
      }
    }
    out.push_back(std::move(e));
  }
  SendJson(res, {{"files", out}, {"commitOid", head ? json(head->hex()) : json(nullptr)}});
}

void WriteApi::Impl::BranchOrTag(const WRoute& r, bool tag, const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  auto repo = WritableRepo(r, who, res);
  if (!repo) return;
  if (req.method == "DELETE") {
    std::string ref = (tag ? "refs/tags/" : "refs/heads/") + r.rest;
    if (!tag && r.rest == repo->default_branch) {
      return SendError(res, 403, "Forbidden", "the default branch cannot be deleted");
    }
    auto cur = store->Resolve(repo->id, ref);
    auto staged = store->ResolveStaged(repo->id, ref);
    if (!staged.ok()) return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + r.rest.substr(0, 200));
    if (cur.ok()) {
      Status s = store->UpdateRef(repo->id, ref, *cur, GitOid());
      if (!s.ok()) return SendWriteError(res, s);
    }
    if (!tag) DropHeld(repo->id, r.rest);
    return SendJson(res, json::object());
  }
  auto body = JsonBody(reader, res);
  if (!body) return;
  std::string name, start;
  if (tag) {
    name = Str(*body, "tag");  // POST /tag/{revision} {"tag": name}
    start = r.rest;
  } else {
    name = r.rest;
    start = Str(*body, "startingPoint");
  }
  std::string ref = (tag ? "refs/tags/" : "refs/heads/") + name;
  // Names git refuses for a branch (HEAD, a leading '-') or that would nest refs/ under refs/.
  if (name.empty() || name.find("..") != std::string::npos || name == "HEAD" || name[0] == '-' ||
      name.starts_with("refs/")) {
    return SendError(res, 400, "BadRequest", "invalid " + std::string(tag ? "tag" : "branch") + " name");
  }
  GitOid target;
  bool staged_only = false;   // the target is held for review: it goes to refs/held/<name>
  GitOid released_target;     // ...and the branch itself to what readers see there (or nowhere)
  if (!tag && Bool(*body, "emptyBranch")) {
    store::CommitSpec spec;
    spec.message = "Empty branch";
    auto w = store->WriteCommit(spec);
    if (!w.ok()) return SendWriteError(res, w.status());
    target = w->commit;
  } else {
    // From the starting point as its writers see it: a commit staged there for review stays
    // staged on the new branch (and a tag cannot name one).
    auto c = store->ResolveStaged(repo->id, start.empty() ? "HEAD" : start);
    if (!c.ok()) return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + start.substr(0, 200));
    target = *c;
    auto released = store->Resolve(repo->id, start.empty() ? "HEAD" : start);
    if (!released.ok() || *released != target) {
      TrustReport report = Assess(repo->id, target, who);
      if (report.verdict == verify::Verdict::kReview) {
        if (tag) {
          return SendError(res, 409, "HeldForReview",
                           "Cannot tag " + target.hex() + ": it is held for review by this node's policy: " +
                               report.Summary());
        }
        staged_only = true;
        released_target = released.ok() ? *released : GitOid();
      }
    }
    // A new branch or tag serves its revision as it is judged now (an old commit may be denied
    // by today's policy). An empty branch serves nothing and needs no verdict.
    TrustReport report = Assess(repo->id, target, who);
    if (report.verdict == verify::Verdict::kDeny) {
      const std::string why = "Refused by this node's policy: " + std::string(tag ? "tag " : "branch ") + name +
                              " at " + target.hex() + ": " + report.Summary();
      SendJson(res, {{"error", why}, {"rules", report.refusals}, {"trust", report.ToJson()}}, 403);
      res.set_header("X-Error-Code", "PolicyRefused");
      res.set_header("X-Error-Message", why.substr(0, 1000));
      return;
    }
  }
  auto cur = store->ResolveStaged(repo->id, ref);
  if (cur.ok() && !(Bool(*body, "overwrite") && !tag)) {
    return SendError(res, 409, "Conflict", std::string(tag ? "tag " : "branch ") + name + " already exists");
  }
  if (staged_only) {
    auto cur_released = store->Resolve(repo->id, ref);
    auto cur_held = store->ResolveStaged(repo->id, "refs/held/" + name);
    Status s = store->UpdateRef(repo->id, "refs/held/" + name, cur_held.ok() ? *cur_held : GitOid(), target);
    if (s.ok() && (cur_released.ok() || !released_target.IsZero())) {
      s = store->UpdateRef(repo->id, ref, cur_released.ok() ? *cur_released : GitOid(), released_target);
    }
    if (s.code() == StatusCode::kInvalidArgument) return SendError(res, 400, "BadRequest", s.message());
    if (!s.ok()) return SendWriteError(res, s);
    res.set_header("X-Hubnode-Held", "the branch starts at a commit held for review");
    return SendJson(res, {{"held", {{"ref", "refs/held/" + name}}}});
  }
  auto cur_released = store->Resolve(repo->id, ref);
  Status s = store->UpdateRef(repo->id, ref, cur_released.ok() ? *cur_released : GitOid(), target);
  if (s.code() == StatusCode::kInvalidArgument) return SendError(res, 400, "BadRequest", s.message());
  if (!s.ok()) return SendWriteError(res, s);
  if (!tag) DropHeld(repo->id, name);
  SendJson(res, json::object());
}

void WriteApi::Impl::Approve(const WRoute& r, httplib::Response& res, const std::optional<Principal>& who) {
  // An operator's act: a token for every namespace, as `hubnode approve` is for the store's owner.
  if (!who) return SendError(res, 401, "Unauthorized", "a write token is required (Authorization: Bearer hf_...)");
  if (who->scope != Scope::kWrite || !who->ns.empty()) {
    return SendError(res, 403, "Forbidden", "releasing a staged commit needs a node-wide write token");
  }
  auto repo = WritableRepo(r, who, res);
  if (!repo) return;
  auto released = [&] {
    std::lock_guard<std::mutex> lock(branch_mu);
    return ReleaseStaged(*store, repo->id, r.rest);
  }();
  if (!released.ok()) {
    if (released.status().code() == StatusCode::kFailedPrecondition) {
      return SendError(res, 409, "Conflict", released.status().message());
    }
    if (released.status().code() == StatusCode::kNotFound) return SendError(res, 404, "NotHeld", released.status().message());
    return SendWriteError(res, released.status(), 0, "");
  }
  LOG(Info) << "released " << released->hex() << " onto " << repo->id.str() << " (approved by " << who->token_name << ")";
  SendJson(res, {{"commitOid", released->hex()}, {"released", true}});
}

void WriteApi::Impl::Refuse(const WRoute& r, httplib::Response& res, const std::optional<Principal>& who) {
  // The operator's other answer to a staged commit, with approve's rights.
  if (!who) return SendError(res, 401, "Unauthorized", "a write token is required (Authorization: Bearer hf_...)");
  if (who->scope != Scope::kWrite || !who->ns.empty()) {
    return SendError(res, 403, "Forbidden", "refusing a staged commit needs a node-wide write token");
  }
  auto repo = WritableRepo(r, who, res);
  if (!repo) return;
  auto refused = [&] {
    std::lock_guard<std::mutex> lock(branch_mu);
    return RefuseStaged(*store, repo->id, r.rest);
  }();
  if (!refused.ok()) {
    if (refused.status().code() == StatusCode::kFailedPrecondition) {
      return SendError(res, 409, "Conflict", refused.status().message());
    }
    if (refused.status().code() == StatusCode::kNotFound) return SendError(res, 404, "NotHeld", refused.status().message());
    return SendWriteError(res, refused.status(), 0, "");
  }
  LOG(Info) << "refused " << refused->hex() << " staged on " << repo->id.str() << "@" << r.rest.substr(0, 200)
            << " (refused by " << who->token_name << "); its objects go at the next gc";
  SendJson(res, {{"commitOid", refused->hex()}, {"refused", true}});
}

void WriteApi::Impl::DropHeld(const store::RepoId& repo, const std::string& branch) {
  std::lock_guard<std::mutex> lock(branch_mu);
  auto held = store->ResolveStaged(repo, "refs/held/" + branch);
  if (held.ok()) (void)store->UpdateRef(repo, "refs/held/" + branch, *held, GitOid());
}

void WriteApi::Impl::ValidateYaml(httplib::Response& res, const httplib::ContentReader& reader) {
  auto body = JsonBody(reader, res);
  if (!body) return;
  std::string content = Str(*body, "content");
  verify::ModelCard card = verify::ReadModelCard(content);
  std::vector<std::string> errors, warnings;
  for (const std::string& f : card.findings) {
    // A card without metadata is valid, as on the Hub: it is only worth a warning.
    if (f == "README.md has no YAML front matter") {
      warnings.push_back("empty or missing yaml metadata in repo card");
    } else {
      errors.push_back(f);
    }
  }
  for (const auto& b : card.base_model) {
    if (!store::RepoId::Parse(b).ok()) errors.push_back("base_model " + b.substr(0, 200) + " is not a repo id");
  }
  if (card.license) {
    std::string spdx = verify::SpdxForCard(*card.license, card.license_name.value_or(""));
    if (!verify::ParseSpdx(spdx).ok()) warnings.push_back("license " + card.license->substr(0, 100) + " is not a known SPDX id");
  }
  json out = {{"errors", ErrorList(errors)}, {"warnings", ErrorList(warnings)}};
  if (!errors.empty()) {
    std::string why = "Invalid metadata in README.md.";
    for (const auto& e : errors) why += "\n- " + e;
    out["error"] = why;
  }
  SendJson(res, out, errors.empty() ? 200 : 400);
}

WriteApi::WriteApi(store::Store* store, WriteOptions options) : impl_(new Impl(store, std::move(options))) {
  // Parts of multipart uploads abandoned over a day ago (their URLs expired long since).
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : fs::directory_iterator(impl_->options.uploads_dir, ec)) {
    std::error_code tec;
    if (e.last_write_time(tec) < cutoff && !tec) fs::remove_all(e.path(), tec);
  }
}
WriteApi::~WriteApi() = default;

bool WriteApi::Handles(const httplib::Request& req) { return ParseWrite(req.method, req.target).kind != Kind::kNone; }

bool WriteApi::Reads(const httplib::Request& req) {
  switch (ParseWrite(req.method, req.target).kind) {
    case Kind::kGitInfoRefs:
      // A push starts with this GET: refused (or redirected) here, git moves to the writer at
      // once instead of failing on the POST that follows.
      return req.get_param_value("service") != "git-receive-pack";
    case Kind::kGitUploadPack:
    case Kind::kLfsGet:
    case Kind::kLfsBatch:
    case Kind::kValidateYaml:
      return true;
    default:
      return req.method == "GET";
  }
}

void WriteApi::Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
                      const std::optional<Principal>& who) {
  WRoute r = ParseWrite(req.method, req.target);
  Impl& m = *impl_;
  switch (r.kind) {
    case Kind::kCreate: return m.Create(req, res, reader, who);
    case Kind::kDelete: return m.Delete(res, reader, who);
    case Kind::kMove: return m.Move(res, reader, who);
    case Kind::kSettings: return m.Settings(r, res, reader, who);
    case Kind::kPreupload: return m.Preupload(r, req, res, reader, who);
    case Kind::kCommit: return m.Commit(r, req, res, reader, who);
    case Kind::kBranch: return m.BranchOrTag(r, false, req, res, reader, who);
    case Kind::kTag: return m.BranchOrTag(r, true, req, res, reader, who);
    case Kind::kLfsBatch: return m.LfsBatch(r, req, res, reader, who);
    case Kind::kLfsPut: return m.LfsPut(r, req, res, reader);
    case Kind::kLfsComplete: return m.LfsComplete(r, req, res, reader);
    case Kind::kValidateYaml: return m.ValidateYaml(res, reader);
    case Kind::kApprove: return m.Approve(r, res, who);
    case Kind::kRefuse: return m.Refuse(r, res, who);
    case Kind::kDiscussions: return m.Discussions(r, req, res, reader, who);
    case Kind::kGitInfoRefs: return m.GitInfoRefs(r, req, res, who);
    case Kind::kGitUploadPack: return m.GitUploadPack(r, req, res, reader, who);
    case Kind::kGitReceivePack: return m.GitReceivePack(r, req, res, reader, who);
    case Kind::kLfsGet: return m.LfsGet(r, req, res);
    case Kind::kNone: break;
  }
  SendError(res, 404, "NotFound", "no such route");
}

}  // namespace hubnode::hub

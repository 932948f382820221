#include "hub/write_api.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <ctime>
#include <deque>
#include <set>
#include <filesystem>
#include <fnmatch.h>

#include "base/file.h"
#include "base/hex.h"
#include "base/log.h"
#include "hub/http_util.h"
#include "hub/trust_gate.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxBatchObjects = 1000;
constexpr size_t kMaxPreuploadFiles = 1000;
constexpr size_t kMaxCommitOps = 100000;
constexpr size_t kMaxUploadStats = 10000;
constexpr int kMaxPrNumber = 1000000;
constexpr uint64_t kMaxParts = 10000;        // parts of one multipart upload (S3's limit)
constexpr uint64_t kMaxPartUrls = 100000;    // signed part URLs in one batch answer
constexpr size_t kMaxSessions = 64;          // multipart uploads streaming at once (others: disk)
constexpr int kCommitAttempts = 8;  // a commit without parentCommit, rebased on concurrent ones

enum class Kind {
  kNone, kCreate, kDelete, kMove, kSettings, kPreupload, kCommit, kBranch, kTag, kLfsBatch, kLfsPut, kLfsComplete,
  kValidateYaml,
};

struct WRoute {
  Kind kind = Kind::kNone;
  std::string type = "model";
  std::string repo;
  std::string rest;  // rev, branch or tag name, or the LFS oid
};

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
  if (s.size() == 4 && s[0] == "api" && s[1] == "lfs" && (s[2] == "objects" || s[2] == "complete")) {
    r.rest = std::string(s[3]);
    return s[2] == "objects" ? is(Kind::kLfsPut, "PUT") : is(Kind::kLfsComplete, "POST");
  }
  if (s.size() < 4 || s[0] != "api" || (s[1] != "models" && s[1] != "datasets" && s[1] != "spaces")) return r;
  r.type = std::string(s[1].substr(0, s[1].size() - 1));
  auto marker = [](std::string_view m) {
    return m == "settings" || m == "preupload" || m == "commit" || m == "branch" || m == "tag";
  };
  size_t i = marker(s[3]) ? 3 : (s.size() > 4 && marker(s[4])) ? 4 : 0;
  if (i == 0) return r;
  r.repo = JoinSegments(s, 2, i);
  r.rest = JoinSegments(s, i + 1, s.size());
  std::string_view m = s[i];
  if (m == "settings" && r.rest.empty()) return is(Kind::kSettings, "PUT");
  if (r.rest.empty()) return r;
  if (m == "preupload") return is(Kind::kPreupload, "POST");
  if (m == "commit") return is(Kind::kCommit, "POST");
  if (m == "branch") return method == "POST" || method == "DELETE" ? (r.kind = Kind::kBranch, r) : r;
  if (m == "tag") return method == "POST" || method == "DELETE" ? (r.kind = Kind::kTag, r) : r;
  return r;
}

// Reads a whole (small) body. false when it is over `max`.
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

json ErrorList(const std::vector<std::string>& messages) {
  json a = json::array();
  for (const auto& m : messages) a.push_back({{"message", m}});
  return a;
}

// One multipart upload in progress: a content writer fed part by part, in order. A part that
// arrives out of order (or while another streams) waits on disk until its turn.
struct PartSession {
  std::mutex mu;  // held while a part streams into the writer
  std::unique_ptr<store::ContentWriter> writer;
  uint64_t next = 1;  // the part the writer wants next
  uint64_t chunk = 0;
  bool failed = false;
};

struct UploadStat {
  uint64_t new_raw = 0, new_stored = 0;
};

}  // namespace

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

bool CanWrite(const std::optional<Principal>& who, const store::RepoId& repo) {
  if (!who || who->scope != Scope::kWrite) return false;
  if (who->ns.empty()) return true;
  return Namespace(repo.str()) == who->ns;
}

struct WriteApi::Impl {
  Impl(store::Store* st, WriteOptions o)
      : store(st), options(std::move(o)), matcher(verify::LicenseMatcher::FromDirectory(options.common_licenses)) {}

  store::Store* store;
  WriteOptions options;
  verify::LicenseMatcher matcher;
  std::mutex stats_mu;
  std::map<Sha256Digest, UploadStat> upload_stats;  // new bytes of recent uploads, for commits
  // (repo, oid) of recent uploads: objects a repo may commit though it did not hold them before.
  std::set<std::pair<std::string, Sha256Digest>> uploaded;
  std::deque<std::pair<std::string, Sha256Digest>> uploaded_order;
  std::mutex pr_mu;                                 // serialises picking the next refs/pr/N
  std::mutex sessions_mu;
  std::map<std::string, std::shared_ptr<PartSession>> sessions;  // multipart uploads in progress

  std::string Base(const httplib::Request& req) const { return BaseUrl(req, options.public_url); }

  // ---- access --------------------------------------------------------------------------------

  // The repo for a write, checked: RepoNotFound for a missing repo or one the caller cannot
  // see; 401/403 when the caller may read but not write.
  std::optional<store::RepoInfo> WritableRepo(const WRoute& r, const std::optional<Principal>& who,
                                              httplib::Response& res) {
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
    if (!info.ok() || (info->visibility == store::Visibility::kPrivate && !CanRead(who, *info))) {
      SendError(res, 404, "RepoNotFound", "Repository not found");
      return std::nullopt;
    }
    if (!Authorized(who, *id, res)) return std::nullopt;
    return *info;
  }

  bool Authorized(const std::optional<Principal>& who, const store::RepoId& id, httplib::Response& res) {
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

  std::optional<json> JsonBody(const httplib::ContentReader& reader, httplib::Response& res) {
    std::string body;
    if (!ReadBody(reader, options.max_body, &body)) {
      SendError(res, 413, "PayloadTooLarge", "request body over " + std::to_string(options.max_body) + " bytes");
      return std::nullopt;
    }
    json j = json::parse(body, nullptr, false);
    if (!j.is_object()) {
      SendError(res, 400, "BadRequest", "the body must be a JSON object");
      return std::nullopt;
    }
    return j;
  }

  // ---- repos ---------------------------------------------------------------------------------

  static bool Bool(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_boolean() && it->get<bool>();
  }

  static std::string Str(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  void Create(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader,
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
    if (!s.ok()) return SendStatus(res, s);
    LOG(Info) << "created repo " << id->str() << (vis == store::Visibility::kPrivate ? " (private)" : "");
    SendJson(res, {{"url", url}, {"name", id->str()}, {"id", id->str()}});
  }

  std::optional<store::RepoId> RepoFromBody(const json& body, const char* name_key, const char* org_key,
                                            httplib::Response& res) {
    std::string name = Str(body, name_key), org = org_key ? Str(body, org_key) : "";
    auto id = store::RepoId::Parse(org.empty() ? name : org + "/" + name);
    if (!id.ok()) {
      SendError(res, 400, "BadRequest", id.status().message());
      return std::nullopt;
    }
    return *id;
  }

  void Delete(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who) {
    auto body = JsonBody(reader, res);
    if (!body) return;
    auto id = RepoFromBody(*body, "name", "organization", res);
    if (!id) return;
    WRoute r;
    r.repo = id->str();
    if (!WritableRepo(r, who, res)) return;
    Status s = store->DeleteRepo(*id);
    if (!s.ok()) return SendStatus(res, s);
    LOG(Info) << "deleted repo " << id->str();
    SendJson(res, json::object());
  }

  void Move(httplib::Response& res, const httplib::ContentReader& reader, const std::optional<Principal>& who) {
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
    Status s = store->MoveRepo(*from, *to);
    if (s.code() == StatusCode::kAlreadyExists) return SendError(res, 409, "Conflict", s.message());
    if (!s.ok()) return SendStatus(res, s);
    LOG(Info) << "moved repo " << from->str() << " to " << to->str();
    SendJson(res, json::object());
  }

  void Settings(const WRoute& r, httplib::Response& res, const httplib::ContentReader& reader,
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
    Status s = store->SetVisibility(repo->id, vis);
    if (!s.ok()) return SendStatus(res, s);
    SendJson(res, json::object());
  }

  // ---- preupload -----------------------------------------------------------------------------

  static bool Ignored(const std::string& path, const std::string& gitignore) {
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

  void Preupload(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader, const std::optional<Principal>& who) {
    auto repo = WritableRepo(r, who, res);
    if (!repo) return;
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
    if (auto c = store->Resolve(repo->id, r.rest); c.ok()) head = *c;
    (void)req;
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

  // ---- LFS -----------------------------------------------------------------------------------

  // What an upload URL is signed for: one object of one size, for one repo, in parts of `chunk`.
  struct Signed {
    std::string repo;
    uint64_t size = 0, chunk = 0;
    int part = 0;
  };

  std::string Signature(const char* what, const std::string& oid, const Signed& s, int64_t exp) const {
    return HmacHex(options.url_key, std::string(what) + "\n" + s.repo + "\n" + oid + "\n" + std::to_string(s.size) +
                                        "\n" + std::to_string(s.chunk) + "\n" + std::to_string(exp) + "\n" +
                                        std::to_string(s.part));
  }

  std::string SignUrl(const std::string& base, const char* what, const std::string& oid, const Signed& s,
                      int64_t exp) const {
    std::string url = base + "/api/lfs/" + what + "/" + oid + "?repo=" + UrlEncode(s.repo, false) +
                      "&size=" + std::to_string(s.size) + "&chunk=" + std::to_string(s.chunk) +
                      "&exp=" + std::to_string(exp) + "&sig=" + Signature(what, oid, s, exp);
    if (s.part > 0) url += "&part=" + std::to_string(s.part);
    return url;
  }

  // Checks a signed URL's query; what it was signed for, or sends 403.
  std::optional<Signed> CheckSigned(const httplib::Request& req, const char* what, const std::string& oid,
                                    httplib::Response& res) {
    Signed s;
    uint64_t exp = 0, part = 0;
    s.repo = req.get_param_value("repo");
    if (!ParseU64(req.get_param_value("size"), &s.size) || !ParseU64(req.get_param_value("chunk"), &s.chunk) ||
        !ParseU64(req.get_param_value("exp"), &exp) ||
        (req.has_param("part") && (!ParseU64(req.get_param_value("part"), &part) || part > kMaxParts))) {
      SendError(res, 403, "InvalidSignature", "malformed upload URL");
      return std::nullopt;
    }
    s.part = static_cast<int>(part);
    std::string want = Signature(what, oid, s, static_cast<int64_t>(exp));
    std::string sig = req.get_param_value("sig");
    if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0) {
      SendError(res, 403, "InvalidSignature", "the upload URL's signature does not match");
      return std::nullopt;
    }
    if (static_cast<int64_t>(exp) < static_cast<int64_t>(std::time(nullptr))) {
      SendError(res, 403, "ExpiredSignature", "the upload URL has expired; ask the batch API for a new one");
      return std::nullopt;
    }
    if (s.chunk == 0) {
      SendError(res, 403, "InvalidSignature", "malformed upload URL");
      return std::nullopt;
    }
    return s;
  }

  // The object of an upload URL and what the URL was signed for; or the error is sent.
  std::optional<std::pair<Sha256Digest, Signed>> SignedTarget(const WRoute& r, const httplib::Request& req,
                                                              const char* what, httplib::Response& res) {
    auto digest = Sha256Digest::FromHex(r.rest);
    if (!digest.ok()) {
      SendError(res, 404, "NotFound", "no such upload");
      return std::nullopt;
    }
    auto sg = CheckSigned(req, what, r.rest, res);
    if (!sg) return std::nullopt;
    return std::make_pair(*digest, *sg);
  }

  // ---- possession: an object counts for a repo once it is in the repo or was uploaded to it ----

  // The LFS objects of every ref of a repo.
  std::set<Sha256Digest> RepoObjects(const store::RepoId& repo) {
    std::set<Sha256Digest> out;
    auto refs = store->ListRefs(repo);
    if (!refs.ok()) return out;
    for (const auto& rf : *refs) {
      if (rf.name.starts_with("refs/held/")) continue;
      auto files = store->ListFiles(rf.commit);
      if (!files.ok()) continue;
      for (const auto& f : *files) {
        if (f.lfs) out.insert(f.sha256);
      }
    }
    return out;
  }

  void RecordUpload(const std::string& repo, const Sha256Digest& oid) {
    std::lock_guard<std::mutex> lock(stats_mu);
    auto key = std::make_pair(repo, oid);
    if (uploaded.insert(key).second) uploaded_order.push_back(key);
    while (uploaded_order.size() > kMaxUploadStats) {
      uploaded.erase(uploaded_order.front());
      uploaded_order.pop_front();
    }
  }

  bool Uploaded(const std::string& repo, const Sha256Digest& oid) {
    std::lock_guard<std::mutex> lock(stats_mu);
    return uploaded.count(std::make_pair(repo, oid)) > 0;
  }

  void LfsBatch(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                const httplib::ContentReader& reader, const std::optional<Principal>& who) {
    auto repo = WritableRepo(r, who, res);
    if (!repo) return;
    auto body = JsonBody(reader, res);
    if (!body) return;
    if (Str(*body, "operation") != "upload") {
      return SendError(res, 400, "BadRequest", "only the upload operation is served here (downloads use /resolve/)");
    }
    if (!body->contains("objects") || !(*body)["objects"].is_array() ||
        (*body)["objects"].size() > kMaxBatchObjects) {
      return SendError(res, 400, "BadRequest", "objects must be an array of at most " +
                                                   std::to_string(kMaxBatchObjects));
    }
    bool multipart_ok = false;
    if (body->contains("transfers") && (*body)["transfers"].is_array()) {
      for (const auto& t : (*body)["transfers"]) multipart_ok |= t == "multipart";
    }
    std::string base = Base(req);
    int64_t exp = static_cast<int64_t>(std::time(nullptr)) + options.url_lifetime_s;
    json objects = json::array();
    bool any_multipart = false;
    uint64_t part_urls = 0;
    // As on the Hub, "already stored" means stored for this repo: an object held only for other
    // repos must be uploaded (its bytes are hashed, so the uploader proves it has them; the store
    // still keeps its chunks once).
    const std::set<Sha256Digest> own = RepoObjects(repo->id);
    for (const auto& o : (*body)["objects"]) {
      std::string oid = o.is_object() ? Str(o, "oid") : "";
      auto digest = Sha256Digest::FromHex(oid);
      if (!digest.ok() || !o.contains("size") || !o["size"].is_number_unsigned()) {
        return SendError(res, 422, "BadRequest", "each object needs a 64-hex sha256 oid and a size");
      }
      uint64_t size = o["size"].get<uint64_t>();
      json e = {{"oid", oid}, {"size", size}, {"authenticated", true}};
      if (size > options.max_object) {
        e["error"] = {{"code", 413}, {"message", "object larger than this node accepts (" +
                                                     std::to_string(options.max_object) + " bytes)"}};
        objects.push_back(std::move(e));
        continue;
      }
      auto held = store->HasContent(*digest, size);
      if (!held.ok()) return SendStatus(res, held.status());
      if (!*held || !(own.count(*digest) || Uploaded(repo->id.str(), *digest))) {
        // At most kMaxParts parts per object (larger parts for huge objects, as S3 does), and
        // kMaxPartUrls signed part URLs per answer (the rest go basic).
        Signed sg{repo->id.str(), size, std::max(options.multipart_chunk, (size + kMaxParts - 1) / kMaxParts), 0};
        uint64_t parts = (size + sg.chunk - 1) / sg.chunk;
        if (multipart_ok && size >= options.multipart_threshold && parts > 1 && part_urls + parts <= kMaxPartUrls) {
          any_multipart = true;
          part_urls += parts;
          json header = {{"chunk_size", std::to_string(sg.chunk)}};
          for (uint64_t p = 1; p <= parts; ++p) {
            char key[16];
            std::snprintf(key, sizeof key, "%05llu", static_cast<unsigned long long>(p));
            Signed ps = sg;
            ps.part = static_cast<int>(p);
            header[key] = SignUrl(base, "objects", oid, ps, exp);
          }
          e["actions"] = {{"upload", {{"href", SignUrl(base, "complete", oid, sg, exp)}, {"header", header},
                                      {"expires_in", options.url_lifetime_s}}}};
        } else {
          sg.chunk = size == 0 ? 1 : size;
          e["actions"] = {{"upload", {{"href", SignUrl(base, "objects", oid, sg, exp)},
                                      {"expires_in", options.url_lifetime_s}}}};
        }
      }
      objects.push_back(std::move(e));
    }
    res.set_content(json{{"transfer", any_multipart ? "multipart" : "basic"}, {"objects", objects}}.dump(),
                     "application/vnd.git-lfs+json");
  }

  void Remember(const store::ContentInfo& info) {
    std::lock_guard<std::mutex> lock(stats_mu);
    if (upload_stats.size() >= kMaxUploadStats) upload_stats.erase(upload_stats.begin());
    upload_stats[info.sha256] = UploadStat{info.new_raw_bytes, info.new_stored_bytes};
  }

  UploadStat TakeStat(const Sha256Digest& d) {
    std::lock_guard<std::mutex> lock(stats_mu);
    auto it = upload_stats.find(d);
    if (it == upload_stats.end()) return {};
    UploadStat s = it->second;
    upload_stats.erase(it);
    return s;
  }

  std::string PartsDir(const std::string& oid) const { return options.uploads_dir + "/" + oid; }

  void LfsPut(const WRoute& r, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader) {
    auto target = SignedTarget(r, req, "objects", res);
    if (!target) return;
    const Sha256Digest& digest = target->first;
    const Signed& sg = target->second;
    const uint64_t size = sg.size, chunk = sg.chunk;
    const int part = sg.part;
    uint64_t expect = size;
    if (part > 0) {
      uint64_t parts = (size + chunk - 1) / chunk;
      if (static_cast<uint64_t>(part) > parts) return SendError(res, 400, "BadRequest", "no such part");
      uint64_t begin = (static_cast<uint64_t>(part) - 1) * chunk;
      expect = std::min(chunk, size - begin);
    }
    if (req.has_header("Content-Length")) {
      uint64_t cl = 0;
      if (!ParseU64(req.get_header_value("Content-Length"), &cl) || cl != expect) {
        return SendError(res, 400, "SizeMismatch",
                         "Content-Length must be " + std::to_string(expect) + " for this upload");
      }
    }
    if (part > 0) return PutPart(r.rest, sg, part, expect, res, reader);
    // Even when the store holds the object (for another repo), the bytes are read and hashed: that
    // is what makes it this repo's to commit. The store keeps no chunk twice.
    store::ContentSpec spec;
    spec.path = "lfs/" + r.rest;
    spec.size = size;
    spec.sha256 = digest;
    auto w = store->NewContentWriter(spec);
    if (!w.ok()) return SendStatus(res, w.status());
    Status st;
    bool read_ok = reader([&](const char* data, size_t n) {
      st = (*w)->Write(std::string_view(data, n));
      return st.ok();
    });
    if (!st.ok()) return SendError(res, 400, "BadContent", st.message());
    if (!read_ok) return SendError(res, 400, "BadRequest", "the upload was cut short");
    auto info = (*w)->Finish();
    if (!info.ok()) return SendError(res, 400, "BadContent", info.status().message());
    Remember(*info);
    RecordUpload(sg.repo, digest);
    LOG(Info) << "stored LFS object " << r.rest.substr(0, 12) << " (" << size << " bytes, " << info->new_chunks
              << " new chunks of " << info->chunks << ")";
    SendJson(res, json::object());
  }

  // ---- multipart: parts that arrive in order stream straight into the store ----------------

  std::shared_ptr<PartSession> Session(const std::string& oid, const Signed& sg, bool create) {
    const std::string key = oid + "/" + std::to_string(sg.size) + "/" + std::to_string(sg.chunk);
    std::lock_guard<std::mutex> lock(sessions_mu);
    auto it = sessions.find(key);
    if (it != sessions.end()) return it->second;
    if (!create || sessions.size() >= kMaxSessions) return nullptr;
    auto digest = Sha256Digest::FromHex(oid);
    store::ContentSpec spec;
    spec.path = "lfs/" + oid;
    spec.size = sg.size;
    spec.sha256 = *digest;
    auto w = store->NewContentWriter(spec);
    if (!w.ok()) return nullptr;
    auto s = std::make_shared<PartSession>();
    s->writer = std::move(*w);
    s->chunk = sg.chunk;
    sessions[key] = s;
    return s;
  }

  void EndSession(const std::string& oid, const Signed& sg) {
    std::lock_guard<std::mutex> lock(sessions_mu);
    sessions.erase(oid + "/" + std::to_string(sg.size) + "/" + std::to_string(sg.chunk));
  }

  // Feeds parts waiting on disk into the writer while they are next. REQUIRES: s.mu held.
  void DrainParts(const std::string& oid, PartSession& s) {
    std::string buf;
    while (!s.failed) {
      const std::string path = PartsDir(oid) + "/" + std::to_string(s.next);
      auto file = ReadFile::Open(path);
      if (!file.ok()) return;
      buf.resize(1 << 20);
      for (uint64_t off = 0; off < file->size() && !s.failed;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), file->size() - off));
        s.failed = !file->ReadAt(off, n, buf.data()).ok() || !s.writer->Write(std::string_view(buf.data(), n)).ok();
        off += n;
      }
      std::error_code ec;
      fs::remove(path, ec);
      ++s.next;
    }
  }

  void PutPart(const std::string& oid, const Signed& sg, int part, uint64_t expect, httplib::Response& res,
               const httplib::ContentReader& reader) {
    auto session = Session(oid, sg, /*create=*/true);
    if (session) {
      std::unique_lock<std::mutex> lock(session->mu, std::try_to_lock);
      if (lock.owns_lock() && !session->failed && static_cast<uint64_t>(part) == session->next) {
        uint64_t got = 0;
        bool too_long = false;
        Status st;
        bool read_ok = reader([&](const char* data, size_t n) {
          if (got + n > expect) {
            too_long = true;
            return false;
          }
          got += n;
          st = session->writer->Write(std::string_view(data, n));
          return st.ok();
        });
        if (!read_ok || too_long || got != expect || !st.ok()) {
          // Part of this part is in the writer: the upload cannot be completed any more.
          session->failed = true;
          if (!st.ok()) return SendError(res, 400, "BadContent", st.message());
          return SendError(res, 400, "SizeMismatch", "part " + std::to_string(part) + " must be " +
                                                         std::to_string(expect) + " bytes");
        }
        ++session->next;
        DrainParts(oid, *session);
        res.set_header("ETag", "\"" + std::to_string(part) + "-" + std::to_string(expect) + "\"");
        return SendJson(res, json::object());
      }
    }
    WritePartFile(oid, part, expect, res, reader);
    if (session && res.status == 200) {
      std::unique_lock<std::mutex> lock(session->mu, std::try_to_lock);
      if (lock.owns_lock()) DrainParts(oid, *session);
    }
  }

  void WritePartFile(const std::string& oid, int part, uint64_t expect, httplib::Response& res,
                     const httplib::ContentReader& reader) {
    std::error_code ec;
    fs::create_directories(PartsDir(oid), ec);
    if (ec) return SendError(res, 500, "InternalError", "cannot create the upload folder");
    std::string final_path = PartsDir(oid) + "/" + std::to_string(part);
    std::string tmp = final_path + ".tmp." + std::to_string(reinterpret_cast<uintptr_t>(&res));
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return SendError(res, 500, "InternalError", "cannot write the upload part");
    uint64_t got = 0;
    bool write_ok = true, too_long = false;
    bool read_ok = reader([&](const char* data, size_t n) {
      if (got + n > expect) {
        too_long = true;
        return false;
      }
      got += n;
      write_ok = std::fwrite(data, 1, n, f) == n;
      return write_ok;
    });
    write_ok = std::fclose(f) == 0 && write_ok;
    if (!read_ok || !write_ok || too_long || got != expect) {
      fs::remove(tmp, ec);
      if (!write_ok) return SendError(res, 500, "InternalError", "cannot write the upload part");
      return SendError(res, 400, "SizeMismatch", "part " + std::to_string(part) + " must be " +
                                                     std::to_string(expect) + " bytes");
    }
    fs::rename(tmp, final_path, ec);
    if (ec) return SendError(res, 500, "InternalError", "cannot keep the upload part");
    res.set_header("ETag", "\"" + std::to_string(part) + "-" + std::to_string(expect) + "\"");
    res.status = 200;
    SendJson(res, json::object());
  }

  void LfsComplete(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader) {
    auto target = SignedTarget(r, req, "complete", res);
    if (!target) return;
    const auto& [digest, sg] = *target;
    auto body = JsonBody(reader, res);
    if (!body) return;
    if (Str(*body, "oid") != r.rest) return SendError(res, 400, "BadRequest", "oid does not match the URL");
    const uint64_t parts = (sg.size + sg.chunk - 1) / sg.chunk;
    // Parts not in the writer yet wait on disk: fed in order now. Without a session (the node
    // restarted since the parts came) one is made here and takes every part from disk.
    auto session = Session(r.rest, sg, /*create=*/true);
    if (!session) {
      res.set_header("Retry-After", "30");
      return SendError(res, 503, "TooManyUploads", "too many multipart uploads in progress; retry later");
    }
    std::lock_guard<std::mutex> lock(session->mu);
    DrainParts(r.rest, *session);
    std::error_code ec;
    if (session->failed) {
      EndSession(r.rest, sg);
      fs::remove_all(PartsDir(r.rest), ec);
      return SendError(res, 400, "IncompleteUpload", "a part failed; upload the object again");
    }
    if (session->next != parts + 1) {
      return SendError(res, 400, "IncompleteUpload",
                       "part " + std::to_string(session->next) + " of " + std::to_string(parts) + " is missing");
    }
    auto info = session->writer->Finish();
    EndSession(r.rest, sg);
    fs::remove_all(PartsDir(r.rest), ec);
    if (!info.ok()) return SendError(res, 400, "BadContent", info.status().message());
    Remember(*info);
    RecordUpload(sg.repo, digest);
    LOG(Info) << "stored LFS object " << r.rest.substr(0, 12) << " from " << parts << " parts (" << sg.size << " bytes)";
    SendJson(res, json::object());
  }

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
  Status CommitOp(const std::string& key, const json& v, CommitBody* cb) {
    if (!v.is_object()) return InvalidArgumentError("\"value\" must be an object");
    if (cb->changes.size() >= kMaxCommitOps) return InvalidArgumentError("too many operations in one commit");
    if (key == "header") {
      cb->saw_header = true;
      cb->summary = Str(v, "summary");
      cb->description = Str(v, "description");
      if (v.contains("parentCommit") && v["parentCommit"].is_string()) cb->parent = v["parentCommit"].get<std::string>();
      return OkStatus();
    }
    std::string path = Str(v, "path");
    if (path.empty()) return InvalidArgumentError(key + " needs a path");
    store::FileChange c;
    c.path = path;
    if (key == "file") {
      std::string encoding = Str(v, "encoding");
      std::string content = Str(v, "content");
      std::string raw;
      if (encoding == "base64") {
        ASSIGN_OR_RETURN(raw, verify::Base64Decode(content));
      } else if (encoding.empty() || encoding == "utf-8") {
        raw = content;
      } else {
        return InvalidArgumentError("unknown encoding " + encoding.substr(0, 40));
      }
      store::ContentSpec spec;
      spec.path = path;
      spec.size = raw.size();
      spec.git_blob = true;
      ASSIGN_OR_RETURN(auto w, store->NewContentWriter(spec));
      RETURN_IF_ERROR(w->Write(raw));
      ASSIGN_OR_RETURN(store::ContentInfo info, w->Finish());
      c.sha256 = info.sha256;
      c.size = info.size;
      c.git_blob = info.git_blob;
      cb->bytes += info.size;
      cb->new_raw += info.new_raw_bytes;
      cb->new_stored += info.new_stored_bytes;
    } else if (key == "lfsFile") {
      std::string algo = Str(v, "algo");
      if (!algo.empty() && algo != "sha256") return InvalidArgumentError("LFS oids must be sha256");
      ASSIGN_OR_RETURN(c.sha256, Sha256Digest::FromHex(Str(v, "oid")));
      if (v.contains("size") && v["size"].is_number_unsigned()) {
        c.size = v["size"].get<uint64_t>();
      } else {
        return InvalidArgumentError(path + ": lfsFile needs a size");
      }
      c.lfs = true;
      ASSIGN_OR_RETURN(bool held, store->HasContent(c.sha256, c.size));
      if (held && !Uploaded(cb->repo, c.sha256)) {
        if (!cb->own) cb->own = RepoObjects(*store::RepoId::Parse(cb->repo));
        held = cb->own->count(c.sha256) > 0;
      }
      if (!held) {
        return FailedPreconditionError("LFS object " + c.sha256.hex() + " for " + path +
                                       " has not been uploaded to this repo (use the LFS batch API first)");
      }
      UploadStat s = TakeStat(c.sha256);
      cb->bytes += c.size;
      cb->new_raw += s.new_raw;
      cb->new_stored += s.new_stored;
    } else if (key == "deletedFile") {
      c.kind = store::FileChange::Kind::kDelete;
    } else if (key == "deletedFolder") {
      c.kind = store::FileChange::Kind::kDeleteFolder;
    } else {
      return InvalidArgumentError("unknown operation " + key.substr(0, 40));
    }
    cb->changes.push_back(std::move(c));
    return OkStatus();
  }

  // As the Hub does: an LFS file whose path the default LFS patterns do not cover (a large .txt)
  // is added to .gitattributes, unless the commit writes .gitattributes itself.
  Status TrackLfsPaths(const std::optional<GitOid>& head, CommitBody* cb) {
    std::vector<std::string> extra;
    for (const auto& c : cb->changes) {
      if (c.kind != store::FileChange::Kind::kPut) continue;
      if (c.path == ".gitattributes") return OkStatus();
      if (c.lfs && !store::StoresAsLfs(c.path, 0)) extra.push_back(c.path);
    }
    if (extra.empty()) return OkStatus();
    std::string attrs;
    if (head) {
      if (auto f = store->StatFile(*head, ".gitattributes"); f.ok() && f->size <= options.max_line) {
        ASSIGN_OR_RETURN(auto reader, store->OpenFile(*f));
        ASSIGN_OR_RETURN(attrs, reader->ReadToString(0, f->size));
      }
    }
    bool changed = false;
    for (std::string p : extra) {
      std::string escaped;
      for (char ch : p) escaped += ch == ' ' ? std::string("[[:space:]]") : std::string(1, ch);
      std::string line = escaped + " filter=lfs diff=lfs merge=lfs -text";
      if (attrs.find(line) != std::string::npos) continue;
      if (!attrs.empty() && attrs.back() != '\n') attrs += '\n';
      attrs += line + "\n";
      changed = true;
    }
    if (!changed) return OkStatus();
    store::ContentSpec spec;
    spec.path = ".gitattributes";
    spec.size = attrs.size();
    spec.git_blob = true;
    ASSIGN_OR_RETURN(auto w, store->NewContentWriter(spec));
    RETURN_IF_ERROR(w->Write(attrs));
    ASSIGN_OR_RETURN(store::ContentInfo info, w->Finish());
    store::FileChange c;
    c.path = ".gitattributes";
    c.sha256 = info.sha256;
    c.size = info.size;
    c.git_blob = info.git_blob;
    cb->changes.push_back(std::move(c));
    return OkStatus();
  }

  // Reads an NDJSON commit body line by line (never whole), or a JSON object body.
  Status ReadCommitBody(const httplib::Request& req, const httplib::ContentReader& reader, CommitBody* cb,
                        bool* too_big) {
    bool ndjson = req.get_header_value("Content-Type").find("json") == std::string::npos ||
                  req.get_header_value("Content-Type").find("ndjson") != std::string::npos;
    if (!ndjson) {
      std::string body;
      if (!ReadBody(reader, options.max_body, &body)) {
        *too_big = true;
        return ResourceExhaustedError("request body over " + std::to_string(options.max_body) + " bytes");
      }
      json j = json::parse(body, nullptr, false);
      if (!j.is_object()) return InvalidArgumentError("the body must be NDJSON or a JSON object");
      RETURN_IF_ERROR(CommitOp("header", j, cb));
      for (const auto& [field, key] : {std::pair{"files", "file"}, {"lfsFiles", "lfsFile"},
                                       {"deletedFiles", "deletedFile"}, {"deletedFolders", "deletedFolder"}}) {
        if (!j.contains(field)) continue;
        if (!j[field].is_array()) return InvalidArgumentError(std::string(field) + " must be an array");
        for (const auto& v : j[field]) RETURN_IF_ERROR(CommitOp(key, v, cb));
      }
      return OkStatus();
    }
    std::string line;
    Status st;
    auto process = [&](std::string_view l) -> Status {
      while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.remove_suffix(1);
      if (l.empty()) return OkStatus();
      json j = json::parse(l, nullptr, false);
      if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("value")) {
        return InvalidArgumentError("each line must be {\"key\": ..., \"value\": {...}}");
      }
      return CommitOp(j["key"].get<std::string>(), j["value"], cb);
    };
    const bool complete = reader([&](const char* data, size_t n) {
      std::string_view chunk(data, n);
      while (!chunk.empty()) {
        size_t nl = chunk.find('\n');
        size_t take = nl == std::string_view::npos ? chunk.size() : nl;
        if (line.size() + take > options.max_line) {
          *too_big = true;
          st = ResourceExhaustedError("a commit line is over " + std::to_string(options.max_line) + " bytes");
          return false;
        }
        line.append(chunk.substr(0, take));
        if (nl == std::string_view::npos) break;
        chunk.remove_prefix(nl + 1);
        st = process(line);
        line.clear();
        if (!st.ok()) return false;
      }
      return true;
    });
    RETURN_IF_ERROR(st);
    // A body cut short (connection lost, read timeout) is never committed in part.
    if (!complete) return InvalidArgumentError("the commit body was cut short");
    return process(line);
  }

  void Commit(const WRoute& r, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader, const std::optional<Principal>& who) {
    auto repo = WritableRepo(r, who, res);
    if (!repo) return;
    bool create_pr = QueryFlag(req, "create_pr", false);
    std::string rev = r.rest == "HEAD" ? repo->default_branch : r.rest;
    std::string ref = BranchRefName(rev);
    if (!ref.starts_with("refs/heads/") && !ref.starts_with("refs/pr/")) {
      return SendError(res, 400, "BadRequest", "commits go to a branch or a refs/pr/N");
    }
    // Where the branch is now; an empty repo takes a root commit on its default branch.
    std::optional<GitOid> head;
    auto resolved = store->Resolve(repo->id, ref);
    if (resolved.ok()) {
      head = *resolved;
    } else if (resolved.status().code() == StatusCode::kNotFound) {
      auto refs = store->ListRefs(repo->id);
      // A commit held for review (refs/held/...) is not served, so it leaves the repo empty.
      bool empty = refs.ok() && std::all_of(refs->begin(), refs->end(), [](const store::RefInfo& rf) {
                     return rf.name.starts_with("refs/held/");
                   });
      if (!empty || create_pr || ref != "refs/heads/" + repo->default_branch) {
        return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + rev.substr(0, 200));
      }
    } else {
      return SendError(res, 400, "BadRequest", resolved.status().message());
    }

    CommitBody cb;
    cb.repo = repo->id.str();
    bool too_big = false;
    Status read = ReadCommitBody(req, reader, &cb, &too_big);
    if (!read.ok()) {
      if (too_big) return SendError(res, 413, "PayloadTooLarge", read.message());
      if (read.code() == StatusCode::kNotFound) return SendError(res, 404, "EntryNotFound", read.message());
      return SendError(res, read.code() == StatusCode::kFailedPrecondition ? 422 : 400, "BadRequest", read.message());
    }
    if (!cb.saw_header) return SendError(res, 400, "BadRequest", "the commit has no header line");
    if (cb.summary.empty()) cb.summary = "Upload files with hubnode";
    if (cb.parent) {
      // 5 to 40 hex digits, as huggingface_hub allows (REGEX_COMMIT_OID): a prefix of the head.
      std::string want = *cb.parent;
      bool hex = want.size() >= 5 && want.size() <= 40 &&
                 std::all_of(want.begin(), want.end(), [](unsigned char ch) { return std::isxdigit(ch); });
      if (!hex) return SendError(res, 400, "BadRequest", "parentCommit must be a commit id (5 to 40 hex digits)");
      std::transform(want.begin(), want.end(), want.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (!head || !head->hex().starts_with(want)) {
        return SendError(res, 412, "PreconditionFailed",
                         "A commit has happened since. Please refresh and try again. (" + rev.substr(0, 200) +
                             " is at " + (head ? head->hex() : std::string("no commit")) + ")");
      }
    }

    if (Status s = TrackLfsPaths(head, &cb); !s.ok()) return SendError(res, 400, "BadRequest", s.message());

    // Without parentCommit a commit lands on wherever the branch is then, as on the Hub: when a
    // concurrent commit moves the branch first, the same changes are applied again on top of it.
    const bool rebase = !cb.parent && !create_pr;
    store::CommitSpec spec;
    spec.changes = std::move(cb.changes);
    spec.author.name = who->token_name;
    spec.author.email = who->token_name + "@hubnode";
    spec.message = cb.summary + (cb.description.empty() ? "" : "\n\n" + cb.description);
    json bytes = {{"total", cb.bytes}, {"new", cb.new_raw}, {"newStored", cb.new_stored},
                  {"held", cb.bytes >= cb.new_raw ? cb.bytes - cb.new_raw : 0}};
    std::string base = Base(req) + "/" + repo->id.str();
    for (int attempt = 1;; ++attempt) {
      spec.parent = head;
      auto written = store->WriteCommit(spec);
      if (!written.ok()) {
        const Status& s = written.status();
        if (s.code() == StatusCode::kNotFound) return SendError(res, 404, "EntryNotFound", s.message());
        return SendError(res, 400, "BadRequest", s.message());
      }
      if (!written->changed && !create_pr) {
        return SendJson(res, {{"commitUrl", base + "/commit/" + written->commit.hex()},
                              {"commitOid", written->commit.hex()}, {"success", true}, {"changed", false},
                              {"bytes", bytes}});
      }

      // Policy before visibility: the new revision is assessed as it would be served.
      auto trust = options.trust_path.empty() ? Result<verify::TrustStore>(verify::TrustStore{})
                                              : TrustFile(options.trust_path).Load();
      if (!trust.ok()) return SendError(res, 500, "InternalError", "the trust store is unreadable");
      TrustReport report = Assess(CommitView(*store, repo->id, written->commit), repo->id.str(),
                                  NodeContext(*trust, &matcher, store));
      if (report.verdict == verify::Verdict::kDeny) {
        LOG(Info) << "refused commit to " << repo->id.str() << ": " << report.Summary();
        SendJson(res, {{"error", "Refused by this node's policy: " + report.Summary()},
                       {"rules", report.refusals}, {"trust", report.ToJson()}}, 403);
        res.set_header("X-Error-Code", "PolicyRefused");
        return;
      }
      if (report.verdict == verify::Verdict::kReview && (create_pr || !ref.starts_with("refs/heads/"))) {
        // A pull request is a proposal: one that needs review is refused, not held over a branch.
        SendJson(res, {{"error", "Refused pending review by this node's policy: " + report.Summary()},
                       {"trust", report.ToJson()}}, 403);
        res.set_header("X-Error-Code", "PolicyReview");
        return;
      }
      if (report.verdict == verify::Verdict::kReview) {
        std::string held = "refs/held/" + ref.substr(11);
        // Held refs never resolve: find the current one among the refs.
        GitOid cur;
        if (auto refs = store->ListRefs(repo->id); refs.ok()) {
          for (const auto& rf : *refs) {
            if (rf.name == held) cur = rf.commit;
          }
        }
        if (Status s = store->UpdateRef(repo->id, held, cur, written->commit); !s.ok()) return SendStatus(res, s);
        LOG(Info) << "held commit " << written->commit.hex() << " to " << repo->id.str() << " for review";
        SendJson(res, {{"error", "Held for review by this node's policy: " + report.Summary() +
                                     ". An operator releases it with: hubnode approve " + repo->id.str() + "@" + held},
                       {"commitOid", written->commit.hex()}, {"trust", report.ToJson()}}, 403);
        res.set_header("X-Error-Code", "HeldForReview");
        return;
      }

      std::string target = ref;
      std::string pr_url;
      if (create_pr) {
        std::lock_guard<std::mutex> lock(pr_mu);
        int next = 1;
        auto refs = store->ListRefs(repo->id);
        if (!refs.ok()) return SendStatus(res, refs.status());
        for (const auto& rf : *refs) {
          if (!rf.name.starts_with("refs/pr/")) continue;
          int n = 0;
          std::string num = rf.name.substr(8);
          auto p = std::from_chars(num.data(), num.data() + num.size(), n);
          if (p.ec == std::errc() && n >= next) next = n + 1;
        }
        if (next > kMaxPrNumber) return SendError(res, 409, "Conflict", "too many pull requests");
        target = "refs/pr/" + std::to_string(next);
        Status s = store->UpdateRef(repo->id, target, GitOid(), written->commit);
        if (!s.ok()) return SendStatus(res, s);
        pr_url = base + "/discussions/" + std::to_string(next);
      } else {
        Status s = store->UpdateRef(repo->id, ref, head.value_or(GitOid()), written->commit);
        if (s.code() == StatusCode::kFailedPrecondition) {
          if (rebase && attempt < kCommitAttempts) {
            if (auto moved = store->Resolve(repo->id, ref); moved.ok()) {
              head = *moved;
              continue;
            }
          }
          return SendError(res, 412, "PreconditionFailed",
                           "A commit has happened since. Please refresh and try again.");
        }
        if (!s.ok()) return SendStatus(res, s);
      }
      LOG(Info) << "commit " << written->commit.hex() << " to " << repo->id.str() << " " << target << ": "
                << cb.bytes << " bytes, " << cb.new_raw << " new";
      json out = {{"commitUrl", base + "/commit/" + written->commit.hex()},
                  {"commitOid", written->commit.hex()},
                  {"success", true},
                  {"changed", written->changed},
                  {"bytes", bytes}};
      if (!pr_url.empty()) {
        out["pullRequestUrl"] = pr_url;
        out["ref"] = target;
      }
      return SendJson(res, out);
    }
  }

  // ---- branches and tags ---------------------------------------------------------------------

  void BranchOrTag(const WRoute& r, bool tag, const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader, const std::optional<Principal>& who) {
    auto repo = WritableRepo(r, who, res);
    if (!repo) return;
    if (req.method == "DELETE") {
      std::string ref = (tag ? "refs/tags/" : "refs/heads/") + r.rest;
      if (!tag && r.rest == repo->default_branch) {
        return SendError(res, 403, "Forbidden", "the default branch cannot be deleted");
      }
      auto cur = store->Resolve(repo->id, ref);
      if (!cur.ok()) return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + r.rest.substr(0, 200));
      Status s = store->UpdateRef(repo->id, ref, *cur, GitOid());
      if (!s.ok()) return SendStatus(res, s);
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
    if (!tag && Bool(*body, "emptyBranch")) {
      store::CommitSpec spec;
      spec.message = "Empty branch";
      auto w = store->WriteCommit(spec);
      if (!w.ok()) return SendStatus(res, w.status());
      target = w->commit;
    } else {
      auto c = store->Resolve(repo->id, start.empty() ? "HEAD" : start);
      if (!c.ok()) return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + start.substr(0, 200));
      target = *c;
    }
    auto cur = store->Resolve(repo->id, ref);
    if (cur.ok() && !(Bool(*body, "overwrite") && !tag)) {
      return SendError(res, 409, "Conflict", std::string(tag ? "tag " : "branch ") + name + " already exists");
    }
    Status s = store->UpdateRef(repo->id, ref, cur.ok() ? *cur : GitOid(), target);
    if (s.code() == StatusCode::kInvalidArgument) return SendError(res, 400, "BadRequest", s.message());
    if (!s.ok()) return SendStatus(res, s);
    SendJson(res, json::object());
  }

  // ---- validate-yaml -------------------------------------------------------------------------

  void ValidateYaml(httplib::Response& res, const httplib::ContentReader& reader) {
    auto body = JsonBody(reader, res);
    if (!body) return;
    std::string content = Str(*body, "content");
    verify::ModelCard card = verify::ReadModelCard(content);
    std::vector<std::string> errors = card.findings, warnings;
    for (const auto& b : card.base_model) {
      if (!store::RepoId::Parse(b).ok()) errors.push_back("base_model " + b.substr(0, 200) + " is not a repo id");
    }
    if (card.license) {
      std::string spdx = verify::SpdxForCard(*card.license, card.license_name.value_or(""));
      if (!verify::ParseSpdx(spdx).ok()) warnings.push_back("license " + card.license->substr(0, 100) + " is not a known SPDX id");
    }
    SendJson(res, {{"errors", ErrorList(errors)}, {"warnings", ErrorList(warnings)}}, errors.empty() ? 200 : 400);
  }
};

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
    case Kind::kNone: break;
  }
  SendError(res, 404, "NotFound", "no such route");
}

}  // namespace hubnode::hub

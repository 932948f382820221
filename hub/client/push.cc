#include "hub/client/push.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "base/json_limits.h"
#include "base/file.h"
#include "base/hash.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr size_t kMaxResponse = 64 << 20;

struct HttpResult {
  long status = 0;
  std::string body;
  std::string etag;
};

size_t CollectBody(char* p, size_t size, size_t n, void* ud) {
  auto* out = static_cast<std::string*>(ud);
  if (out->size() + size * n > kMaxResponse) return 0;
  out->append(p, size * n);
  return size * n;
}

size_t CollectHeader(char* p, size_t size, size_t n, void* ud) {
  std::string_view h(p, size * n);
  if (h.size() > 5 && (h.substr(0, 5) == "ETag:" || h.substr(0, 5) == "etag:")) {
    std::string v(h.substr(5));
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    static_cast<HttpResult*>(ud)->etag = v;
  }
  return size * n;
}

struct FileSlice {
  FILE* f = nullptr;
  uint64_t left = 0;
  std::function<void(uint64_t)> progress;
};

size_t ReadSlice(char* buf, size_t size, size_t n, void* ud) {
  auto* s = static_cast<FileSlice*>(ud);
  size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, s->left));
  size_t got = want == 0 ? 0 : std::fread(buf, 1, want, s->f);
  s->left -= got;
  if (s->progress) s->progress(got);
  return got;
}

// One HTTP request. `body` for POST; `slice` for a PUT streamed from a file.
Result<HttpResult> Request(const std::string& method, const std::string& url, const std::string& token,
                           const std::string& content_type, const std::string* body, FileSlice* slice) {
  CURL* c = curl_easy_init();
  if (!c) return InternalError("curl_easy_init failed");
  HttpResult r;
  curl_slist* headers = nullptr;
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  if (!content_type.empty()) headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (slice) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadSlice);
    curl_easy_setopt(c, CURLOPT_READDATA, slice);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(slice->left));
  } else if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  if (method != "GET" && method != "POST" && !slice) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) return UnavailableError(method + " " + url.substr(0, url.find('?')) + ": " + curl_easy_strerror(rc));
  return r;
}

std::string ErrorOf(const HttpResult& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string msg = j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                                   : r.body.substr(0, 300);
  return "HTTP " + std::to_string(r.status) + ": " + msg;
}

Result<json> JsonCall(const std::string& method, const std::string& url, const std::string& token, const json& body,
                      const char* what) {
  std::string b = body.dump();
  ASSIGN_OR_RETURN(HttpResult r, Request(method, url, token, "application/json", &b, nullptr));
  if (r.status / 100 != 2) return FailedPreconditionError(std::string(what) + " failed: " + ErrorOf(r));
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) return DataLossError(std::string(what) + ": the node's answer is not JSON");
  return j;
}

struct LocalFile {
  std::string rel, abs;
  uint64_t size = 0;
  Sha256Digest sha256;
  GitOid blob;
  bool lfs = false;
  std::string inline_content;  // a generated file (model.sig)
};

Status Collect(const std::string& root, const std::string& rel, std::vector<LocalFile>* out) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(rel.empty() ? fs::path(root) : fs::path(root) / rel, ec)) {
    std::string name = e.path().filename().string();
    std::string child = rel.empty() ? name : rel + "/" + name;
    auto st = e.symlink_status(ec);
    if (fs::is_symlink(st)) return InvalidArgumentError("symlinks are not pushed: " + child);
    if (fs::is_directory(st)) {
      if (name == ".git" || name == ".cache") continue;
      RETURN_IF_ERROR(Collect(root, child, out));
    } else if (fs::is_regular_file(st)) {
      LocalFile f;
      f.rel = child;
      f.abs = e.path().string();
      f.size = static_cast<uint64_t>(e.file_size(ec));
      out->push_back(std::move(f));
    }
  }
  if (ec) return InvalidArgumentError("cannot read " + root + ": " + ec.message());
  return OkStatus();
}

Status HashFile(LocalFile* f, const std::function<void(uint64_t)>& progress) {
  Sha256 sha;
  Sha1 sha1;
  sha1.Update(std::string("blob ") + std::to_string(f->size) + std::string(1, '\0'));
  if (!f->inline_content.empty() || f->abs.empty()) {
    sha.Update(f->inline_content);
    sha1.Update(f->inline_content);
  } else {
    ASSIGN_OR_RETURN(ReadFile file, ReadFile::Open(f->abs));
    std::string buf(4 << 20, '\0');
    for (uint64_t off = 0; off < file.size();) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), file.size() - off));
      RETURN_IF_ERROR(file.ReadAt(off, n, buf.data()));
      sha.Update(std::string_view(buf.data(), n));
      sha1.Update(std::string_view(buf.data(), n));
      off += n;
      progress(n);
    }
  }
  f->sha256 = sha.Finish();
  f->blob = sha1.Finish();
  return OkStatus();
}

Result<std::string> ReadAll(const LocalFile& f) {
  if (f.abs.empty()) return f.inline_content;
  return ReadFileToString(f.abs, f.size + 1);
}

Result<PushResult> PushUnchecked(const PushOptions& a, const PushProgress& progress) {
  std::string base = a.to;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string token = a.token;
  if (token.empty()) {
    const char* env = std::getenv("HF_TOKEN");
    if (env) token = env;
  }
  if (token.empty()) return InvalidArgumentError("a write token is required: --token T or $HF_TOKEN");
  auto id = store::RepoId::Parse(a.repo);
  if (!id.ok()) return id.status();
  std::vector<LocalFile> files;
  if (Status s = Collect(a.dir, "", &files); !s.ok()) return s;
  if (!a.sign_key.empty()) {
    auto pem = ReadFileToString(a.sign_key, 1 << 20);
    if (!pem.ok()) return pem.status();
    auto key = verify::PrivateKey::FromPem(*pem);
    if (!key.ok()) return key.status().WithContext(a.sign_key);
    verify::Serialization ser;
    ser.ignore_paths = verify::DefaultIgnorePaths();
    auto m = verify::HashDirectory(a.dir, ser);
    if (!m.ok()) return m.status();
    auto bundle = verify::SignBundle(*m, *key);
    if (!bundle.ok()) return bundle.status();
    std::erase_if(files, [](const LocalFile& f) { return f.rel == "model.sig"; });
    LocalFile sig;
    sig.rel = "model.sig";
    sig.size = bundle->size();
    sig.inline_content = *bundle;
    files.push_back(std::move(sig));
  }
  if (files.empty()) return InvalidArgumentError(a.dir + " has no files");
  std::sort(files.begin(), files.end(), [](const LocalFile& x, const LocalFile& y) { return x.rel < y.rel; });
  PushResult result;
  result.repo = id->str();
  result.files = files.size();
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;

  // 1. The repo (created when missing) and where its branch is now.
  std::string ns = id->str().find('/') == std::string::npos ? "" : id->str().substr(0, id->str().find('/'));
  std::string name = id->str().substr(ns.empty() ? 0 : ns.size() + 1);
  json create = {{"name", name}, {"type", "model"}, {"visibility", a.is_private ? "private" : "public"}};
  if (!ns.empty()) create["organization"] = ns;
  std::string cb = create.dump();
  auto created = Request("POST", base + "/api/repos/create", token, "application/json", &cb, nullptr);
  if (!created.ok()) return created.status();
  if (created->status != 200 && created->status != 409) {
    return FailedPreconditionError("creating " + id->str() + " failed: " + ErrorOf(*created));
  }
  std::string api = base + "/api/models/" + id->str();
  std::optional<std::string> parent;
  auto info = Request("GET", api + "/revision/" + a.branch, token, "", nullptr, nullptr);
  if (!info.ok()) return info.status();
  if (info->status == 200) {
    json j = json::parse(info->body, nullptr, false);
    if (j.is_object() && j.contains("sha") && j["sha"].is_string()) parent = j["sha"].get<std::string>();
  }

  // 2. Hash, then ask which files the node wants and how.
  uint64_t hashed = 0;
  for (auto& f : files) {
    if (Status s = HashFile(&f, [&](uint64_t n) { progress.update(hashed += n, total, "hashing " + f.rel); }); !s.ok()) {
      return s;
    }
  }
  progress.finish();
  std::vector<LocalFile*> changed;
  for (size_t i = 0; i < files.size(); i += 256) {
    json req = {{"files", json::array()}};
    for (size_t k = i; k < std::min(files.size(), i + 256); ++k) {
      std::string sample;
      if (files[k].abs.empty()) {
        sample = files[k].inline_content.substr(0, 512);
      } else if (auto rf = ReadFile::Open(files[k].abs); rf.ok()) {
        sample.resize(static_cast<size_t>(std::min<uint64_t>(512, files[k].size)));
        if (!rf->ReadAt(0, sample.size(), sample.data()).ok()) sample.clear();
      }
      req["files"].push_back({{"path", files[k].rel}, {"size", files[k].size}, {"sample", verify::Base64Encode(sample)}});
    }
    auto pre = JsonCall("POST", api + "/preupload/" + a.branch, token, req, "preupload");
    if (!pre.ok()) return pre.status();
    if (!pre->contains("files") || !(*pre)["files"].is_array()) return DataLossError("preupload: no files");
    for (const auto& e : (*pre)["files"]) {
      std::string path = e.value("path", "");
      auto it = std::find_if(files.begin(), files.end(), [&](const LocalFile& f) { return f.rel == path; });
      if (it == files.end() || e.value("shouldIgnore", false)) continue;
      it->lfs = e.value("uploadMode", "regular") == "lfs";
      std::string remote = e.contains("oid") && e["oid"].is_string() ? e["oid"].get<std::string>() : "";
      if (remote == (it->lfs ? it->sha256.hex() : it->blob.hex())) continue;  // unchanged
      changed.push_back(&*it);
    }
  }
  if (changed.empty()) {
    result.up_to_date = true;
    result.commit_oid = parent.value_or("");
    return result;
  }

  // 3. LFS objects the node does not hold.
  uint64_t to_send = 0, sent = 0;
  std::vector<std::pair<LocalFile*, json>> uploads;
  std::vector<LocalFile*> lfs;
  for (auto* f : changed) {
    if (f->lfs) lfs.push_back(f);
  }
  for (size_t i = 0; i < lfs.size(); i += 100) {
    json req = {{"operation", "upload"}, {"transfers", {"basic", "multipart"}}, {"hash_algo", "sha256"},
                {"ref", {{"name", a.branch}}}, {"objects", json::array()}};
    for (size_t k = i; k < std::min(lfs.size(), i + 100); ++k) {
      req["objects"].push_back({{"oid", lfs[k]->sha256.hex()}, {"size", lfs[k]->size}});
    }
    auto batch = JsonCall("POST", base + "/" + id->str() + ".git/info/lfs/objects/batch", token, req, "LFS batch");
    if (!batch.ok()) return batch.status();
    for (const auto& o : batch->value("objects", json::array())) {
      if (o.contains("error")) return FailedPreconditionError("LFS batch: " + o["error"].dump());
      if (!o.contains("actions")) continue;
      auto it = std::find_if(lfs.begin(), lfs.end(), [&](LocalFile* f) { return f->sha256.hex() == o.value("oid", ""); });
      if (it == lfs.end()) continue;
      to_send += (*it)->size;
      uploads.emplace_back(*it, o["actions"]["upload"]);
    }
  }
  for (auto& [f, up] : uploads) {
    auto put = [&](const std::string& url, uint64_t offset, uint64_t length) -> Result<HttpResult> {
      FILE* fp = std::fopen(f->abs.c_str(), "rb");
      if (!fp) return NotFoundError("cannot open " + f->abs);
      std::fseek(fp, static_cast<long>(offset), SEEK_SET);
      FileSlice slice{fp, length, [&](uint64_t n) { progress.update(sent += n, to_send, "uploading " + f->rel); }};
      auto r = Request("PUT", url, "", "", nullptr, &slice);
      std::fclose(fp);
      if (r.ok() && r->status / 100 != 2) return FailedPreconditionError("upload of " + f->rel + ": " + ErrorOf(*r));
      return r;
    };
    std::string href = up.value("href", "");
    if (up.contains("header") && up["header"].contains("chunk_size")) {
      uint64_t chunk = std::stoull(up["header"]["chunk_size"].get<std::string>());
      json complete = {{"oid", f->sha256.hex()}, {"parts", json::array()}};
      for (const auto& [key, url] : up["header"].items()) {
        if (key == "chunk_size") continue;
        uint64_t part = std::stoull(key);
        uint64_t off = (part - 1) * chunk;
        auto r = put(url.get<std::string>(), off, std::min(chunk, f->size - off));
        if (!r.ok()) return r.status();
        complete["parts"].push_back({{"partNumber", part}, {"etag", r->etag}});
      }
      std::string body = complete.dump();
      auto r = Request("POST", href, "", "application/vnd.git-lfs+json", &body, nullptr);
      if (!r.ok()) return r.status();
      if (r->status / 100 != 2) return FailedPreconditionError("completing " + f->rel + ": " + ErrorOf(*r));
    } else {
      auto r = put(href, 0, f->size);
      if (!r.ok()) return r.status();
    }
  }
  progress.finish();

  // 4. The commit.
  std::string ndjson;
  json header = {{"summary", a.message.empty() ? "Push " + fs::path(a.dir).filename().string() : a.message}};
  if (parent) header["parentCommit"] = *parent;
  ndjson += json{{"key", "header"}, {"value", header}}.dump() + "\n";
  for (auto* f : changed) {
    if (f->lfs) {
      ndjson += json{{"key", "lfsFile"}, {"value", {{"path", f->rel}, {"algo", "sha256"}, {"oid", f->sha256.hex()}, {"size", f->size}}}}.dump() + "\n";
    } else {
      auto content = ReadAll(*f);
      if (!content.ok()) return content.status();
      ndjson += json{{"key", "file"}, {"value", {{"path", f->rel}, {"encoding", "base64"}, {"content", verify::Base64Encode(*content)}}}}.dump() + "\n";
    }
  }
  auto r = Request("POST", api + "/commit/" + a.branch, token, "application/x-ndjson", &ndjson, nullptr);
  if (!r.ok()) return r.status();
  if (r->status / 100 != 2) return FailedPreconditionError("commit failed: " + ErrorOf(*r));
  json j = json::parse(r->body, nullptr, false);
  result.commit_oid = j.value("commitOid", "");
  result.changed = changed.size();
  result.uploaded = to_send;
  result.bytes = j.value("bytes", json::object());
  if (j.is_object() && j.contains("held") && j["held"].is_object()) {
    result.held_reason = j["held"].value("reason", "held for review");
    result.held_release = j["held"].value("release", "");
  }
  return result;
}

}  // namespace

Result<json> CallNode(const std::string& method, const std::string& url, const std::string& token, const json& body,
                      const char* what) {
  if (method != "GET") return JsonCall(method, url, token, body, what);
  ASSIGN_OR_RETURN(HttpResult r, Request(method, url, token, "", nullptr, nullptr));
  if (r.status / 100 != 2) return FailedPreconditionError(std::string(what) + " failed: " + ErrorOf(r));
  json j = JsonDepthWithin(r.body) ? json::parse(r.body, nullptr, false) : json(json::value_t::discarded);
  if (j.is_discarded()) return DataLossError(std::string(what) + ": the node's answer is not JSON");
  return j;
}

Result<PushResult> Push(const PushOptions& options, const PushProgress& progress) {
  try {
    return PushUnchecked(options, progress);
  } catch (const std::exception& e) {  // a JSON answer of an unexpected shape
    return DataLossError(std::string("unexpected answer from the node: ") + e.what());
  }
}

}  // namespace hubnode::hub

#include "hub/client/upstream.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hex.h"
#include "base/json_limits.h"
#include "store/store.h"

namespace hubnode::hub {
namespace {

using json = nlohmann::json;
// What an upstream's JSON answers may weigh, and how many files a repo may list: a DOM costs
// several times its text, and a hostile upstream must not make a pull take gigabytes.
constexpr size_t kMaxJson = 16 << 20;
constexpr size_t kMaxFiles = 100'000;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Status TransportError(CURLcode code, const std::string& what) {
  std::string m = what + ": " + curl_easy_strerror(code);
  if (code == CURLE_OPERATION_TIMEDOUT) return Status(StatusCode::kDeadlineExceeded, "upstream timed out: " + m);
  return UnavailableError("upstream unreachable: " + m);
}

Status HttpError(long status, const std::string& code, const std::string& what) {
  if (code == "RepoNotFound" || code == "RevisionNotFound" || code == "EntryNotFound" || status == 404) {
    return NotFoundError("upstream: " + (code.empty() ? std::string("not found") : code) + ": " + what);
  }
  if (status == 401 || status == 403) return PermissionDeniedError("upstream refused access (" + std::to_string(status) + "): " + what);
  if (status == 504) return Status(StatusCode::kDeadlineExceeded, "upstream timed out: " + what);
  if (status >= 500 || status == 429) return UnavailableError("upstream answered " + std::to_string(status) + ": " + what);
  return InvalidArgumentError("upstream answered " + std::to_string(status) + ": " + what);
}

struct HeaderState {
  std::string error_code;
  std::string link;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<HeaderState*>(user);
  std::string line(data, size * n);
  auto value = [&](const char* name) -> std::optional<std::string> {
    size_t len = std::strlen(name);
    if (line.size() <= len || strncasecmp(line.c_str(), name, len) != 0) return std::nullopt;
    std::string v = line.substr(len);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  };
  if (auto v = value("X-Error-Code:")) h->error_code = *v;
  if (auto v = value("Link:")) {
    // <url>; rel="next"
    size_t lt = v->find('<'), gt = v->find('>');
    if (lt != std::string::npos && gt != std::string::npos && v->find("rel=\"next\"") != std::string::npos) {
      h->link = v->substr(lt + 1, gt - lt - 1);
    }
  }
  return size * n;
}

}  // namespace

// A curl handle with the options every upstream request shares; `headers` and `hs` must outlive it.
static std::unique_ptr<CURL, CurlDeleter> NewHandle(const UpstreamOptions& o, const std::string& url,
                                                    std::unique_ptr<curl_slist, SlistDeleter>* headers,
                                                    HeaderState* hs) {
  std::unique_ptr<CURL, CurlDeleter> c(curl_easy_init());
  if (!c) return c;
  if (!o.token.empty()) headers->reset(curl_slist_append(nullptr, ("Authorization: Bearer " + o.token).c_str()));
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers->get());
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c.get(), CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, hs);
  return c;
}

Upstream::Upstream(UpstreamOptions options) : options_(std::move(options)) {
  GlobalInit();
  while (!options_.url.empty() && options_.url.back() == '/') options_.url.pop_back();
}

Result<Upstream::Response> Upstream::Get(const std::string& url, size_t max_body, const std::string& range,
                                         const std::vector<std::string>& extra_headers) {
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  HeaderState hs;
  auto c = NewHandle(options_, url, &headers, &hs);
  if (!c) return InternalError("curl_easy_init failed");
  if (!extra_headers.empty()) {
    curl_slist* list = headers.release();
    for (const std::string& h : extra_headers) list = curl_slist_append(list, h.c_str());
    headers.reset(list);
    curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  }
  if (!range.empty()) curl_easy_setopt(c.get(), CURLOPT_RANGE, range.c_str());
  Response r;
  struct Body {
    std::string* out;
    size_t max;
    bool overflow = false;
  } body{&r.body, max_body};
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* u) -> size_t {
    auto* b = static_cast<Body*>(u);
    if (b->out->size() + s * n > b->max) {
      b->overflow = true;
      return 0;
    }
    b->out->append(d, s * n);
    return s * n;
  });
  CURLcode rc = curl_easy_perform(c.get());
  if (body.overflow) return ResourceExhaustedError("upstream answer larger than " + std::to_string(max_body) + " bytes");
  if (rc != CURLE_OK) return TransportError(rc, url);
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &r.status);
  r.error_code = hs.error_code;
  r.link_next = hs.link;
  return r;
}

Result<std::string> Upstream::GetRange(const std::string& repo, const std::string& sha, const std::string& path,
                                       uint64_t offset, uint64_t length) {
  if (length == 0) return std::string();
  std::string url = options_.url + "/" + repo + "/resolve/" + sha + "/" + UrlEncode(path, true);
  ASSIGN_OR_RETURN(Response r, Get(url, length, std::to_string(offset) + "-" + std::to_string(offset + length - 1)));
  if (r.status != 206 || r.body.size() != length) {
    return UnavailableError("upstream range of " + path + " answered " + std::to_string(r.status) + " with " +
                            std::to_string(r.body.size()) + " bytes");
  }
  return std::move(r.body);
}

Result<UpstreamRevision> Upstream::ResolveRevision(const std::string& repo, const std::string& rev) {
  std::string url = options_.url + "/api/models/" + repo + "/revision/" + UrlEncode(rev, false);
  ASSIGN_OR_RETURN(Response r, Get(url, kMaxJson));
  if (r.status != 200) return HttpError(r.status, r.error_code, repo + "@" + rev);
  json j = (JsonDepthWithin(r.body) ? json::parse(r.body, nullptr, false) : json(json::value_t::discarded));
  if (j.is_discarded() || !j.is_object() || !j.contains("sha") || !j["sha"].is_string()) {
    return DataLossError("upstream repo info for " + repo + " has no sha");
  }
  UpstreamRevision out;
  out.sha = j["sha"].get<std::string>();
  if (out.sha.size() != 40 || !IsLowerHex(out.sha)) return DataLossError("upstream sha is not a 40-hex commit id");
  out.is_private = j.value("private", false) == true;
  out.gated = j.contains("gated") && !(j["gated"].is_boolean() && !j["gated"].get<bool>());
  return out;
}

Result<std::vector<UpstreamFile>> Upstream::ListFiles(const std::string& repo, const std::string& sha) {
  std::vector<UpstreamFile> out;
  std::string url = options_.url + "/api/models/" + repo + "/tree/" + sha + "?recursive=true";
  for (int page = 0; !url.empty(); ++page) {
    if (page > 10000) return DataLossError("upstream tree pagination does not end");
    ASSIGN_OR_RETURN(Response r, Get(url, kMaxJson));
    if (r.status != 200) return HttpError(r.status, r.error_code, repo + " tree");
    json j = (JsonDepthWithin(r.body) ? json::parse(r.body, nullptr, false) : json(json::value_t::discarded));
    if (j.is_discarded() || !j.is_array()) return DataLossError("upstream tree listing is not a JSON array");
    for (const auto& e : j) {
      if (!e.is_object() || e.value("type", "") != "file") continue;
      UpstreamFile f;
      if (!e.contains("path") || !e["path"].is_string() || !e.contains("oid") || !e["oid"].is_string() ||
          !e.contains("size") || !e["size"].is_number_unsigned()) {
        return DataLossError("upstream tree entry lacks path, oid or size");
      }
      f.path = e["path"].get<std::string>();
      f.size = e["size"].get<uint64_t>();
      ASSIGN_OR_RETURN(f.blob, GitOid::FromHex(e["oid"].get<std::string>()));
      if (e.contains("lfs") && e["lfs"].is_object()) {
        f.lfs = true;
        ASSIGN_OR_RETURN(f.sha256, Sha256Digest::FromHex(e["lfs"].value("oid", "")));
      }
      out.push_back(std::move(f));
      if (out.size() > kMaxFiles) return DataLossError("upstream lists more than 100000 files in " + repo);
    }
    // Follow only links to the same upstream.
    url = r.link_next.rfind(options_.url + "/", 0) == 0 ? r.link_next : "";
  }
  return out;
}

Result<UpstreamCommit> Upstream::Commit(const std::string& repo, const std::string& sha) {
  UpstreamCommit c;
  c.sha = sha;
  ASSIGN_OR_RETURN(Response r, Get(options_.url + "/api/models/" + repo + "/commits/" + sha + "?limit=1", kMaxJson));
  if (r.status != 200) return c;  // optional route upstream: keep the defaults
  json j = (JsonDepthWithin(r.body) ? json::parse(r.body, nullptr, false) : json(json::value_t::discarded));
  if (!j.is_array() || j.empty() || !j[0].is_object()) return c;
  c.title = j[0].value("title", "");
  if (j[0].contains("authors") && j[0]["authors"].is_array() && !j[0]["authors"].empty() &&
      j[0]["authors"][0].is_object()) {
    c.author = j[0]["authors"][0].value("user", "");
  }
  std::string date = j[0].value("date", "");
  std::tm tm{};
  if (date.size() >= 19 && strptime(date.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) c.time = timegm(&tm);
  return c;
}

Status Upstream::Download(const std::string& repo, const std::string& sha, const UpstreamFile& file,
                          const std::string& dest, const std::function<void(uint64_t)>& progress) {
  struct stat st;
  uint64_t have = ::stat(dest.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  if (have > file.size) have = 0;  // wrong leftovers: start again
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (have ? O_APPEND : O_TRUNC), 0644);
  if (fd < 0) return ErrnoStatus("cannot create", dest, errno);
  struct Sink {
    int fd;
    uint64_t written = 0;
    uint64_t limit;
    const std::function<void(uint64_t)>* progress;
    bool failed = false;
  } sink{fd, 0, file.size - have, &progress};
  Status result;
  if (have < file.size) {
    std::unique_ptr<curl_slist, SlistDeleter> headers;
    HeaderState hs;
    std::string url = options_.url + "/" + repo + "/resolve/" + sha + "/" + UrlEncode(file.path, true);
    std::string range = std::to_string(have) + "-";
    auto c = NewHandle(options_, url, &headers, &hs);
    if (!c) {
      ::close(fd);
      return InternalError("curl_easy_init failed");
    }
    if (options_.max_rate > 0) curl_easy_setopt(c.get(), CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)options_.max_rate);
    if (have > 0) curl_easy_setopt(c.get(), CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(c.get(), CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* u) -> size_t {
      auto* k = static_cast<Sink*>(u);
      size_t len = s * n;
      if (k->written + len > k->limit) return 0;  // more than the listed size: refuse
      size_t done = 0;
      while (done < len) {
        ssize_t w = ::write(k->fd, d + done, len - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          k->failed = true;
          return 0;
        }
        done += static_cast<size_t>(w);
      }
      k->written += len;
      if (k->progress && *k->progress) (*k->progress)(len);
      return len;
    });
    CURLcode rc = curl_easy_perform(c.get());
    long status = 0;
    curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      result = HttpError(status, hs.error_code, repo + "/" + file.path);
    } else if (rc != CURLE_OK) {
      result = sink.failed ? ErrnoStatus("cannot write", dest, errno) : TransportError(rc, repo + "/" + file.path);
    } else if (have > 0 && status != 206) {
      result = UnavailableError("upstream ignored the resume range for " + file.path);
      ::ftruncate(fd, 0);
    }
  }
  if (::fsync(fd) != 0 && result.ok()) result = ErrnoStatus("cannot sync", dest, errno);
  ::close(fd);
  RETURN_IF_ERROR(result);

  // Verify the whole file against what the upstream listed.
  ASSIGN_OR_RETURN(ReadFile f, ReadFile::Open(dest));
  if (f.size() != file.size) {
    return UnavailableError("short download of " + file.path + " (" + std::to_string(f.size()) + " of " +
                            std::to_string(file.size) + " bytes)");
  }
  Sha256 sha256;
  Sha1 sha1;
  if (!file.lfs) sha1.Update("blob " + std::to_string(file.size) + std::string(1, '\0'));
  std::string buf(1 << 20, '\0');
  for (uint64_t off = 0; off < f.size(); off += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), f.size() - off));
    RETURN_IF_ERROR(f.ReadAt(off, n, buf.data()));
    (file.lfs ? static_cast<void>(sha256.Update(buf.data(), n)) : static_cast<void>(sha1.Update(std::string_view(buf.data(), n))));
  }
  bool ok = file.lfs ? sha256.Finish() == file.sha256 : sha1.Finish() == file.blob;
  if (!ok) {
    ::unlink(dest.c_str());
    return DataLossError("downloaded " + file.path + " does not match the upstream's digest");
  }
  return OkStatus();
}

std::string Upstream::ChunkTarget(const ChunkId& id, const std::string& repo, const std::string& rev) {
  std::string t = "/api/peer/v1/chunks/" + id.hex();
  if (!repo.empty()) t += "?repo=" + UrlEncode(repo, true) + "&rev=" + UrlEncode(rev.empty() ? "HEAD" : rev, false);
  return t;
}

Result<std::string> Upstream::GetChunk(const ChunkId& id, const std::string& repo, const std::string& rev,
                                       const std::vector<std::string>& headers) {
  ASSIGN_OR_RETURN(Response r, Get(options_.url + ChunkTarget(id, repo, rev), 80u << 20, "", headers));
  if (r.status == 404) return NotFoundError("the peer does not hold chunk " + id.hex());
  if (r.status == 401 || r.status == 403) {
    return PermissionDeniedError("the peer refused chunk " + id.hex() + " (HTTP " + std::to_string(r.status) +
                                 (r.error_code.empty() ? "" : " " + r.error_code) +
                                 "): name a revision you may read (--repo, --rev) or sign as a node it trusts (--sign)");
  }
  if (r.status == 400) return InvalidArgumentError("the peer refused the request for chunk " + id.hex() + " (HTTP 400)");
  if (r.status != 200) return UnavailableError("the peer answered HTTP " + std::to_string(r.status) + " for chunk " + id.hex());
  return store::DecodeVerifiedChunk(id, r.body);
}

Result<std::string> Upstream::GetChunkMap(const std::string& repo, const std::string& sha) {
  ASSIGN_OR_RETURN(Response r, Get(options_.url + "/api/models/" + repo + "/chunk-map/" + sha, 256u << 20));
  if (r.status != 200) return NotFoundError(options_.url + " serves no chunk map for " + repo + "@" + sha);
  return std::move(r.body);
}

Result<std::string> Upstream::Fetch(const std::string& path, size_t max_body) {
  ASSIGN_OR_RETURN(Response r, Get(options_.url + path, max_body));
  if (r.status == 404 || r.status == 401) return NotFoundError(options_.url + path + ": not found");
  if (r.status != 200) return UnavailableError(options_.url + path + ": HTTP " + std::to_string(r.status));
  return std::move(r.body);
}

namespace {

std::string GitPkt(const std::string& payload) {
  char len[5];
  std::snprintf(len, sizeof len, "%04zx", payload.size() + 4);
  return std::string(len, 4) + payload;
}

// Reads a protocol-v2 fetch response as it arrives: sections until "packfile", then side-band
// pkt-lines whose band 1 is the pack (written to `out`).
struct GitFetchParser {
  FILE* out = nullptr;
  uint64_t max_bytes = 0, written = 0;
  std::string buf;
  bool in_pack = false, ended = false;
  Status error;
  bool Feed(const char* data, size_t n) {
    buf.append(data, n);
    size_t pos = 0;
    while (buf.size() - pos >= 4) {
      size_t len = 0;
      for (size_t i = 0; i < 4; ++i) {
        char c = buf[pos + i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return Fail(InvalidArgumentError("the upstream's git answer is not pkt-lines"));
        len = len * 16 + static_cast<size_t>(v);
      }
      if (len < 4) {
        pos += 4;
        if (len == 0 && in_pack) ended = true;
        continue;
      }
      if (len > 65520) return Fail(InvalidArgumentError("pkt-line too long in the upstream's answer"));
      if (buf.size() - pos < len) break;
      std::string_view line(buf.data() + pos + 4, len - 4);
      pos += len;
      if (!in_pack) {
        if (line.starts_with("ERR ")) return Fail(UnavailableError("the upstream's git said: " + std::string(line.substr(4, 200))));
        if (line == "packfile\n" || line == "packfile") in_pack = true;
        continue;
      }
      if (line.empty()) continue;
      const char band = line[0];
      line.remove_prefix(1);
      if (band == 1) {
        written += line.size();
        if (written > max_bytes) return Fail(ResourceExhaustedError("the upstream's pack is over the limit"));
        if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) return Fail(InternalError("pack write failed"));
      } else if (band == 3) {
        return Fail(UnavailableError("the upstream's git failed: " + std::string(line.substr(0, 200))));
      }
    }
    buf.erase(0, pos);
    return true;
  }
  bool Fail(Status s) {
    error = std::move(s);
    return false;
  }
};

}  // namespace

bool Upstream::SpeaksGit(const std::string& repo) {
  auto r = Get(options_.url + "/" + repo + ".git/info/refs?service=git-upload-pack", 64 << 10, "",
               {"Git-Protocol: version=2"});
  return r.ok() && r->status == 200 && r->body.find("version 2") != std::string::npos &&
         r->body.find("fetch") != std::string::npos;
}

Status Upstream::GitFetch(const std::string& repo, const std::vector<std::string>& wants,
                          const std::vector<std::string>& haves, const std::string& pack_path, uint64_t max_bytes) {
  std::string body = GitPkt("command=fetch\n") + GitPkt("agent=hubnode/1\n") + GitPkt("object-format=sha1\n") + "0001" +
                     GitPkt("no-progress\n");
  for (const auto& w : wants) body += GitPkt("want " + w + "\n");
  for (const auto& h : haves) body += GitPkt("have " + h + "\n");
  body += GitPkt("done\n") + "0000";
  std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(pack_path.c_str(), "wb"), &std::fclose);
  if (!out) return InternalError("cannot write " + pack_path);
  const std::string url = options_.url + "/" + repo + ".git/git-upload-pack";
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  HeaderState hs;
  auto c = NewHandle(options_, url, &headers, &hs);
  if (!c) return InternalError("curl_easy_init failed");
  curl_slist* list = headers.release();
  list = curl_slist_append(list, "Git-Protocol: version=2");
  list = curl_slist_append(list, "Content-Type: application/x-git-upload-pack-request");
  list = curl_slist_append(list, "Accept: application/x-git-upload-pack-result");
  headers.reset(list);
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  GitFetchParser parser;
  parser.out = out.get();
  parser.max_bytes = max_bytes;
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &parser);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, +[](char* d, size_t s, size_t n, void* u) -> size_t {
    return static_cast<GitFetchParser*>(u)->Feed(d, s * n) ? s * n : 0;
  });
  CURLcode rc = curl_easy_perform(c.get());
  if (!parser.error.ok()) return parser.error;
  if (rc != CURLE_OK) return TransportError(rc, url);
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return HttpError(status, hs.error_code, url);
  if (!parser.in_pack || !parser.ended) return InvalidArgumentError("the upstream's git answer ended without a whole pack");
  if (std::fflush(out.get()) != 0) return InternalError("pack write failed");
  return OkStatus();
}

}  // namespace hubnode::hub

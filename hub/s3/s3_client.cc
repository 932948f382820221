#include "hub/s3/s3_client.h"

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>

#include "base/log.h"

namespace hubnode::hub::s3 {
namespace {

// Error answers and listings are small; a hostile or broken endpoint must not make us buffer more.
constexpr uint64_t kMaxSmallAnswer = 16 << 20;
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string XmlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    static const std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    bool done = false;
    for (const auto& [name, c] : kEntities) {
      if (s.substr(i, name.size()) == name) {
        out.push_back(c);
        i += name.size() - 1;
        done = true;
        break;
      }
    }
    if (!done) out.push_back('&');
  }
  return out;
}

// The text of the first <tag>...</tag> in `xml` from `from`, and where it ended; nullopt if none.
// S3's answers are flat enough that this is all the XML we need.
std::optional<std::string_view> XmlTag(std::string_view xml, std::string_view tag, size_t* pos = nullptr) {
  std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  size_t from = pos ? *pos : 0;
  size_t a = xml.find(open, from);
  if (a == std::string_view::npos) return std::nullopt;
  a += open.size();
  size_t b = xml.find(close, a);
  if (b == std::string_view::npos) return std::nullopt;
  if (pos) *pos = b + close.size();
  return xml.substr(a, b - a);
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

struct Request {
  std::string method = "GET";
  std::string key;  // raw; "" = the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // signed
  std::string_view body;
  uint64_t max_bytes = kMaxSmallAnswer;
};

struct Response {
  long status = 0;
  std::string body;
  std::string etag;
  std::string content_range;
  std::string retry_after;
  std::string content_length;
};

struct Transfer {
  Response* response;
  uint64_t max_bytes;
  bool over_limit = false;
  std::string_view upload;
  size_t uploaded = 0;
};

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->response->body.size() + len > t->max_bytes) {
    t->over_limit = true;
    return 0;
  }
  t->response->body.append(data, len);
  return len;
}

size_t OnRead(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = std::min(size * n, t->upload.size() - t->uploaded);
  std::memcpy(buffer, t->upload.data() + t->uploaded, len);
  t->uploaded += len;
  return len;
}

std::string Trim(std::string_view v) {
  while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return std::string(v);
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Transfer*>(user)->response;
  std::string_view line(data, size * n);
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name == "etag") r->etag = Trim(line.substr(colon + 1));
  if (name == "content-range") r->content_range = Trim(line.substr(colon + 1));
  if (name == "retry-after") r->retry_after = Trim(line.substr(colon + 1));
  if (name == "content-length") r->content_length = Trim(line.substr(colon + 1));
  return size * n;
}

bool Retryable(long status) { return status == 500 || status == 502 || status == 503 || status == 504 || status == 429; }

// Retry-After in seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3); -1 when absent
// or unreadable. *is_date: the date form, which depends on both clocks agreeing.
int64_t RetryAfterSeconds(const std::string& v, int64_t now, bool* is_date) {
  *is_date = false;
  if (v.empty()) return -1;
  if (v.find_first_not_of("0123456789") == std::string::npos) {
    return v.size() > 9 ? INT64_MAX / 2 : std::stoll(v);
  }
  time_t t = curl_getdate(v.c_str(), nullptr);
  if (t < 0) return -1;
  *is_date = true;
  return std::max<int64_t>(0, static_cast<int64_t>(t) - now);
}

}  // namespace

struct S3Client::Rep {
  S3Options options;
  std::string scheme_host;  // http://host:port, no trailing slash
  std::string host;         // host[:port] as signed
  std::mutex mu;
  std::vector<CURL*> idle;
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> connections{0};

  ~Rep() {
    for (CURL* c : idle) curl_easy_cleanup(c);
  }

  CURL* Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        CURL* c = idle.back();
        idle.pop_back();
        return c;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* c) {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < options.max_idle_handles) {
      idle.push_back(c);
      return;
    }
    curl_easy_cleanup(c);
  }

  std::string Path(const std::string& key) const {
    std::string p = options.path_style ? "/" + options.bucket : "";
    if (!key.empty()) p += "/" + key;
    return p.empty() ? "/" : p;
  }

  std::string What(const Request& req) const { return "S3 " + req.method + " " + options.bucket + "/" + req.key; }

  // One attempt. A transport failure is a non-OK status; any HTTP answer is a Response.
  Result<Response> Once(const Request& req) {
    CURL* c = Acquire();
    if (!c) return InternalError("curl_easy_init failed");
    curl_easy_reset(c);
    Response resp;
    Transfer t{&resp, std::max<uint64_t>(req.max_bytes, 1 << 20)};
    t.upload = req.body;
    int64_t now = options.clock ? options.clock() : static_cast<int64_t>(std::time(nullptr));
    std::string date = AmzDate(now);
    SignedRequestSpec spec;
    spec.method = req.method;
    spec.path = Path(req.key);
    spec.query = req.query;
    spec.payload_sha256 = req.body.empty() ? kEmptySha256 : Sha256Hex(req.body);
    spec.headers = {{"host", host}, {"x-amz-date", date}, {"x-amz-content-sha256", spec.payload_sha256}};
    if (!options.credentials.session_token.empty()) {
      spec.headers.emplace_back("x-amz-security-token", options.credentials.session_token);
    }
    for (const auto& h : req.headers) spec.headers.push_back(h);
    std::string auth = Authorization(options.credentials, options.region, "s3", date, spec);
    curl_slist* headers = nullptr;
    for (const auto& [k, v] : spec.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
    headers = curl_slist_append(headers, ("Authorization: " + auth).c_str());
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    if (req.method == "POST") headers = curl_slist_append(headers, "Content-Type:");
    std::string query = CanonicalQuery(req.query);
    std::string url = scheme_host + UriEncode(spec.path, true) + (query.empty() ? "" : "?" + query);
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWrite);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, options.timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    if (req.method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (req.method == "PUT") {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(c, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(c, CURLOPT_READDATA, &t);
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data() ? req.body.data() : "");
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    } else if (req.method != "GET") {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    attempts.fetch_add(1, std::memory_order_relaxed);
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    long opened = 0;
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &opened);
    connections.fetch_add(static_cast<uint64_t>(opened), std::memory_order_relaxed);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
    Release(c);
    if (t.over_limit) {
      return ResourceExhaustedError(What(req) + ": the answer exceeds " + std::to_string(t.max_bytes) + " bytes");
    }
    if (rc != CURLE_OK) return UnavailableError(What(req) + ": " + curl_easy_strerror(rc));
    return resp;
  }

  // Sends `req` with retries; a non-2xx answer becomes the Status its code maps to.
  Result<Response> Send(const Request& req) {
    Status last = OkStatus();
    std::minstd_rand rng(static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
    int64_t asked_ms = 0;  // the last answer's Retry-After
    for (int attempt = 1; attempt <= std::max(1, options.max_attempts); ++attempt) {
      if (attempt > 1) {
        int64_t ms = int64_t{options.backoff_ms} << std::min(attempt - 2, 10);
        ms += static_cast<int64_t>(rng() % static_cast<unsigned>(ms / 2 + 1));
        std::this_thread::sleep_for(std::chrono::milliseconds(std::max(ms, asked_ms)));
      }
      asked_ms = 0;
      auto r = Once(req);
      if (!r.ok()) {
        if (r.status().code() != StatusCode::kUnavailable) return r.status();
        last = r.status();
        continue;
      }
      if (r->status >= 200 && r->status < 300) return r;
      std::string code(XmlTag(r->body, "Code").value_or(""));
      std::string message = XmlDecode(XmlTag(r->body, "Message").value_or(""));
      std::string what = What(req) + ": HTTP " + std::to_string(r->status) + (code.empty() ? "" : " " + code) +
                         (message.empty() ? "" : " (" + message + ")");
      if (Retryable(r->status)) {
        last = UnavailableError(what);
        const int64_t now = options.clock ? options.clock() : static_cast<int64_t>(std::time(nullptr));
        bool is_date = false;
        int64_t after = RetryAfterSeconds(r->retry_after, now, &is_date);
        // A date far off may be our clock's error, not the store's wish: waited for up to the cap.
        if (is_date) after = std::min<int64_t>(after, options.max_retry_after_s);
        if (after > options.max_retry_after_s) {
          return UnavailableError(what + "; it asks to retry after " + std::to_string(after) + " s");
        }
        if (after > 0) asked_ms = after * 1000;
        continue;
      }
      switch (r->status) {
        case 404: return NotFoundError(what);
        case 401:
        case 403: return PermissionDeniedError(what);
        case 409: return AlreadyExistsError(what);
        case 412: return FailedPreconditionError(what);
        case 416: return OutOfRangeError(what);
        default: return InvalidArgumentError(what);
      }
    }
    return UnavailableError(last.message() + " (after " + std::to_string(options.max_attempts) + " attempts)");
  }
};

Result<S3Url> ParseS3Url(std::string_view url) {
  if (url.substr(0, 5) != "s3://") return InvalidArgumentError("not an s3:// URL: " + std::string(url));
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.prefix = std::string(rest.substr(slash + 1));
  // Bucket names after S3's rules: 3-63 of [a-z0-9.-], starting and ending with a letter or digit.
  bool ok = out.bucket.size() >= 3 && out.bucket.size() <= 63;
  for (char c : out.bucket) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-');
  ok = ok && out.bucket.front() != '-' && out.bucket.front() != '.' && out.bucket.back() != '-' && out.bucket.back() != '.';
  if (!ok) return InvalidArgumentError("bad bucket name in " + std::string(url));
  while (!out.prefix.empty() && out.prefix.front() == '/') out.prefix.erase(0, 1);
  if (!out.prefix.empty() && out.prefix.back() != '/') out.prefix.push_back('/');
  if (out.prefix.find("//") != std::string::npos || out.prefix.find("..") != std::string::npos) {
    return InvalidArgumentError("bad prefix in " + std::string(url));
  }
  return out;
}

Result<S3Options> S3OptionsFromEnv(const std::string& bucket) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  S3Options o;
  o.bucket = bucket;
  o.credentials.access_key_id = env("AWS_ACCESS_KEY_ID");
  o.credentials.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
  o.credentials.session_token = env("AWS_SESSION_TOKEN");
  if (o.credentials.access_key_id.empty() || o.credentials.secret_access_key.empty()) {
    return InvalidArgumentError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set for s3:// chunks");
  }
  std::string region = env("AWS_REGION");
  if (region.empty()) region = env("AWS_DEFAULT_REGION");
  if (!region.empty()) o.region = region;
  o.endpoint = env("AWS_ENDPOINT_URL_S3");
  if (o.endpoint.empty()) o.endpoint = env("AWS_ENDPOINT_URL");
  o.path_style = !o.endpoint.empty();
  std::string style = env("AWS_S3_PATH_STYLE");
  if (style == "0" || style == "false") o.path_style = false;
  if (style == "1" || style == "true") o.path_style = true;
  return o;
}

Result<std::unique_ptr<S3Client>> S3Client::Create(S3Options options) {
  GlobalInit();
  if (options.bucket.empty()) return InvalidArgumentError("S3: no bucket");
  if (options.credentials.access_key_id.empty() || options.credentials.secret_access_key.empty()) {
    return InvalidArgumentError("S3: no access key");
  }
  if (options.endpoint.empty()) options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();
  size_t scheme = options.endpoint.find("://");
  if (scheme == std::string::npos ||
      (options.endpoint.substr(0, scheme) != "http" && options.endpoint.substr(0, scheme) != "https")) {
    return InvalidArgumentError("S3: the endpoint must be an http:// or https:// URL: " + options.endpoint);
  }
  std::string host = options.endpoint.substr(scheme + 3);
  if (host.empty() || host.find('/') != std::string::npos) {
    return InvalidArgumentError("S3: the endpoint must be scheme://host[:port]: " + options.endpoint);
  }
  auto rep = std::make_unique<Rep>();
  if (!options.path_style) host = options.bucket + "." + host;
  rep->scheme_host = options.endpoint.substr(0, scheme + 3) + host;
  rep->host = host;
  rep->options = std::move(options);
  return std::unique_ptr<S3Client>(new S3Client(std::move(rep)));
}

S3Client::S3Client(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
S3Client::~S3Client() = default;
const S3Options& S3Client::options() const { return rep_->options; }
uint64_t S3Client::attempts() const { return rep_->attempts.load(); }
uint64_t S3Client::connections_opened() const { return rep_->connections.load(); }

Status S3Client::CreateBucket() {
  Request req;
  req.method = "PUT";
  std::string body;
  if (rep_->options.region != "us-east-1") {
    body = "<CreateBucketConfiguration><LocationConstraint>" + XmlEscape(rep_->options.region) +
           "</LocationConstraint></CreateBucketConfiguration>";
  }
  req.body = body;
  auto r = rep_->Send(req);
  if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists &&
      r.status().message().find("BucketAlreadyOwnedByYou") != std::string::npos) {
    return OkStatus();
  }
  return r.status();
}

Status S3Client::Put(std::string_view key, std::string_view body) {
  Request req;
  req.method = "PUT";
  req.key = std::string(key);
  req.body = body;
  return rep_->Send(req).status();
}

Result<std::string> S3Client::Get(std::string_view key, uint64_t max_bytes) {
  Request req;
  req.key = std::string(key);
  req.max_bytes = max_bytes;
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  if (r.body.size() > max_bytes) return ResourceExhaustedError(rep_->What(req) + ": larger than " + std::to_string(max_bytes));
  return std::move(r.body);
}

Result<std::string> S3Client::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  if (length == 0) return std::string();
  Request req;
  req.key = std::string(key);
  req.headers = {{"range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)}};
  req.max_bytes = length;
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  // A 200 would be the whole object (the range ignored): fine only when it is exactly the range.
  bool whole_ok = r.status == 200 && offset == 0 && r.body.size() == length;
  if (!(r.status == 206 || whole_ok) || r.body.size() != length) {
    return DataLossError(rep_->What(req) + ": asked for " + std::to_string(length) + " bytes at " +
                         std::to_string(offset) + ", got " + std::to_string(r.body.size()) + " (HTTP " +
                         std::to_string(r.status) + ")");
  }
  return std::move(r.body);
}

Result<ObjectInfo> S3Client::Head(std::string_view key) {
  Request req;
  req.method = "HEAD";
  req.key = std::string(key);
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  ObjectInfo info;
  info.key = std::string(key);
  info.etag = r.etag;
  info.size = std::strtoull(r.content_length.c_str(), nullptr, 10);
  return info;
}

Status S3Client::Delete(std::string_view key) {
  Request req;
  req.method = "DELETE";
  req.key = std::string(key);
  auto r = rep_->Send(req);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return OkStatus();
  return r.status();
}

Result<ListPage> S3Client::List(std::string_view prefix, std::string_view token, int max_keys,
                                std::string_view start_after) {
  Request req;
  req.query = {{"list-type", "2"}, {"prefix", std::string(prefix)}, {"max-keys", std::to_string(max_keys)}};
  if (!token.empty()) req.query.emplace_back("continuation-token", std::string(token));
  if (token.empty() && !start_after.empty()) req.query.emplace_back("start-after", std::string(start_after));
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  ListPage page;
  size_t pos = 0;
  while (auto contents = XmlTag(r.body, "Contents", &pos)) {
    ObjectInfo o;
    o.key = XmlDecode(XmlTag(*contents, "Key").value_or(""));
    o.etag = XmlDecode(XmlTag(*contents, "ETag").value_or(""));
    std::string size(XmlTag(*contents, "Size").value_or("0"));
    o.size = std::strtoull(size.c_str(), nullptr, 10);
    page.objects.push_back(std::move(o));
  }
  if (XmlTag(r.body, "IsTruncated").value_or("false") == "true") {
    page.next_token = XmlDecode(XmlTag(r.body, "NextContinuationToken").value_or(""));
    if (page.next_token.empty()) return DataLossError(rep_->What(req) + ": a truncated listing without a token");
  }
  return page;
}

Result<std::vector<ObjectInfo>> S3Client::ListAll(std::string_view prefix, std::string_view start_after) {
  std::vector<ObjectInfo> all;
  std::string token;
  do {
    ASSIGN_OR_RETURN(ListPage page, List(prefix, token, 1000, start_after));
    for (auto& o : page.objects) all.push_back(std::move(o));
    token = page.next_token;
  } while (!token.empty());
  return all;
}

Result<std::string> S3Client::BeginMultipart(std::string_view key) {
  Request req;
  req.method = "POST";
  req.key = std::string(key);
  req.query = {{"uploads", ""}};
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  auto id = XmlTag(r.body, "UploadId");
  if (!id || id->empty()) return DataLossError(rep_->What(req) + ": no UploadId in the answer");
  return XmlDecode(*id);
}

Result<std::string> S3Client::UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                                         std::string_view body) {
  Request req;
  req.method = "PUT";
  req.key = std::string(key);
  req.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}};
  req.body = body;
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  if (r.etag.empty()) return DataLossError(rep_->What(req) + ": no ETag for part " + std::to_string(part_number));
  return r.etag;
}

Status S3Client::CompleteMultipart(std::string_view key, std::string_view upload_id,
                                   const std::vector<std::string>& etags) {
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" + XmlEscape(etags[i]) +
            "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  Request req;
  req.method = "POST";
  req.key = std::string(key);
  req.query = {{"uploadId", std::string(upload_id)}};
  req.body = body;
  ASSIGN_OR_RETURN(Response r, rep_->Send(req));
  // S3 may answer 200 and put the error in the body.
  if (r.body.find("<Error>") != std::string::npos) {
    return UnavailableError(rep_->What(req) + ": completion failed: " +
                            std::string(XmlTag(r.body, "Code").value_or("unknown")));
  }
  return OkStatus();
}

Status S3Client::AbortMultipart(std::string_view key, std::string_view upload_id) {
  Request req;
  req.method = "DELETE";
  req.key = std::string(key);
  req.query = {{"uploadId", std::string(upload_id)}};
  auto r = rep_->Send(req);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return OkStatus();
  return r.status();
}

Status S3Client::PutLarge(std::string_view key, std::string_view body, uint64_t part_size) {
  if (part_size < (uint64_t{5} << 20)) return InvalidArgumentError("S3 multipart parts must be at least 5 MiB");
  if (body.size() <= part_size) return Put(key, body);
  ASSIGN_OR_RETURN(std::string upload_id, BeginMultipart(key));
  std::vector<std::string> etags;
  Status s = OkStatus();
  for (uint64_t off = 0; off < body.size() && s.ok(); off += part_size) {
    auto etag = UploadPart(key, upload_id, static_cast<int>(etags.size() + 1), body.substr(off, part_size));
    if (!etag.ok()) {
      s = etag.status();
      break;
    }
    etags.push_back(std::move(*etag));
  }
  if (s.ok()) s = CompleteMultipart(key, upload_id, etags);
  if (!s.ok()) AbortMultipart(key, upload_id).IgnoreError();
  return s;
}

}  // namespace hubnode::hub::s3

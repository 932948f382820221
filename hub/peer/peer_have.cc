#include "hub/peer/peer_have.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "base/hex.h"
#include "base/json_limits.h"
#include "hub/peer/peer_auth.h"

namespace hubnode::hub {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxRevs = 4;
constexpr size_t kMaxAnswer = 64u << 20;
constexpr size_t kMaxCached = 256;

struct Sink {
  std::string body;
  size_t cap = 0;
  bool over = false;
  std::string error_code;  // the answer's X-Error-Code
};

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  if (s->body.size() + size * n > s->cap) {
    s->over = true;
    return 0;  // aborts the transfer
  }
  s->body.append(data, size * n);
  return size * n;
}

size_t Header(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "x-error-code:";
  if (line.size() > kName.size() && line.size() < 200) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i) match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    if (match) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
      s->error_code = v;
    }
  }
  return size * n;
}

// The largest answer a faithful peer sends for the query, with room to spare: per file its path
// (escaped at worst), its count and its base64 bitmap.
size_t AnswerCap(const HaveQuery& q) {
  uint64_t n = 64 << 10;
  for (const auto& [path, chunks] : q.files) n += 2 * (6 * path.size() + 128 + ((chunks + 7) / 8 + 2) / 3 * 4);
  return static_cast<size_t>(std::min<uint64_t>(n, kMaxAnswer));
}

}  // namespace

PeerHoldings::PeerHoldings(PeerHoldingsOptions options) : options_(std::move(options)) {
  for (std::string url : options_.peers) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.empty() || std::find(urls_.begin(), urls_.end(), url) != urls_.end()) continue;
    if (urls_.size() >= options_.max_peers) break;
    urls_.push_back(std::move(url));
  }
}

Status PeerHoldings::ParseHave(const HaveQuery& q, const std::string& asked, std::string_view body, PeerHolding* out) {
  if (!JsonDepthWithin(body)) return DataLossError("the answer nests too deep");
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return DataLossError("the answer is not a JSON object");
  auto str = [&](const char* k) -> const std::string* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get_ptr<const std::string*>() : nullptr;
  };
  const std::string* repo = str("repo");
  if (repo == nullptr || *repo != q.repo) return DataLossError("the answer names another repo");
  const std::string* commit = str("commit");
  if (commit == nullptr || commit->size() != 40 || !IsLowerHex(*commit)) {
    return DataLossError("the answer's commit is not a commit id");
  }
  // A peer that mirrors the asked upstream commit under its own id says so.
  const std::string* mirrors = str("mirrors");
  if (*commit != asked && (mirrors == nullptr || *mirrors != asked)) return DataLossError("the answer is for another commit");
  auto files = j.find("files");
  if (files == j.end() || !files->is_array()) return DataLossError("the answer has no file list");
  if (files->size() != q.files.size()) return DataLossError("the answer lists other files than the revision's");
  std::unordered_map<std::string_view, size_t> index;
  for (size_t i = 0; i < q.files.size(); ++i) index.emplace(q.files[i].first, i);
  std::vector<std::vector<bool>> have(q.files.size());
  std::vector<bool> seen(q.files.size(), false);
  uint64_t total = 0, held = 0;
  for (const json& f : *files) {
    if (!f.is_object()) return DataLossError("a file entry of the answer is not an object");
    auto path = f.find("path"), chunks = f.find("chunks"), bits = f.find("have");
    if (path == f.end() || !path->is_string() || chunks == f.end() || !chunks->is_number_unsigned() ||
        bits == f.end() || !bits->is_string()) {
      return DataLossError("a file entry of the answer is malformed");
    }
    auto it = index.find(path->get_ref<const std::string&>());
    if (it == index.end()) return DataLossError("the answer lists a file the revision lacks");
    const size_t i = it->second;
    if (seen[i]) return DataLossError("the answer lists a file twice");
    seen[i] = true;
    const uint64_t n = chunks->get<uint64_t>();
    if (n != q.files[i].second) return DataLossError("the answer's chunk count of a file differs from the revision's");
    const std::string& text = bits->get_ref<const std::string&>();
    const uint64_t bytes = (n + 7) / 8;
    if (text.size() > (bytes + 2) / 3 * 4 + 4) return DataLossError("a bitmap of the answer is larger than its file's chunks");
    auto raw = verify::Base64Decode(text);
    if (!raw.ok()) return DataLossError("a bitmap of the answer is not base64");
    if (raw->size() != bytes) return DataLossError("a bitmap of the answer does not match its file's chunk count");
    std::vector<bool> v(n);
    for (uint64_t k = 0; k < n; ++k) {
      v[k] = (static_cast<uint8_t>((*raw)[k / 8]) >> (k % 8)) & 1;
      held += v[k];
    }
    total += n;
    have[i] = std::move(v);
  }
  auto count = [&](const char* k) -> std::optional<uint64_t> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  if (count("chunks") != total || count("held") != held) return DataLossError("the answer's counts disagree with its bitmaps");
  auto trusted = j.find("nodeTrusted");
  out->commit = *commit;
  out->trusted = trusted != j.end() && trusted->is_boolean() && trusted->get<bool>();
  out->have = std::move(have);
  return OkStatus();
}

std::vector<PeerHolding> PeerHoldings::Query(const HaveQuery& q) {
  std::vector<PeerHolding> out(urls_.size());
  for (size_t i = 0; i < urls_.size(); ++i) out[i].url = urls_[i];
  if (q.revs.empty()) {
    for (PeerHolding& h : out) h.error = "nothing to ask";
    return out;
  }
  const size_t revs = std::min(q.revs.size(), kMaxRevs);
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  const size_t cap = AnswerCap(q);
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(), curl_multi_cleanup);
  struct Transfer {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy{nullptr, curl_easy_cleanup};
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers{nullptr, curl_slist_free_all};
    size_t peer = 0, rev = 0;
    Sink sink;
  };
  std::map<CURL*, std::unique_ptr<Transfer>> active;
  const std::string timeout_error =
      "no answer within " + std::to_string(options_.timeout_ms) + " ms";
  // Starts asking peer `p` by revision id `r`; false when the deadline leaves no time.
  auto start = [&](size_t p, size_t r) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left < 50) return false;
    auto t = std::make_unique<Transfer>();
    t->easy.reset(curl_easy_init());
    if (!t->easy) return false;
    t->peer = p;
    t->rev = r;
    t->sink.cap = cap;
    const std::string target = "/api/peer/v1/have/" + q.repo + "?rev=" + q.revs[r];
    const std::string url = urls_[p] + target;
    curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
    for (const std::string& h : PeerGetHeadersNow(options_.node_key, urls_[p], target)) {
      headers = curl_slist_append(headers, h.c_str());
    }
    t->headers.reset(headers);
    CURL* e = t->easy.get();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->sink);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, Header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t->sink);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(left));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(left));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_multi_add_handle(multi.get(), e);
    active.emplace(e, std::move(t));
    return true;
  };
  for (size_t p = 0; p < urls_.size(); ++p) {
    if (!start(p, 0)) out[p].error = timeout_error;
  }
  while (!active.empty()) {
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    std::vector<std::pair<size_t, size_t>> next;  // peers to ask by their next revision id
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = active.find(msg->easy_handle);
      if (it == active.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      curl_multi_remove_handle(multi.get(), t->easy.get());
      PeerHolding& h = out[t->peer];
      const CURLcode code = msg->data.result;
      long status = 0;
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
      if (t->sink.over) {
        h.reachable = true;
        h.error = "the answer is over " + std::to_string(cap) + " bytes";
        continue;
      }
      if (code != CURLE_OK) {
        h.reachable = status > 0;
        h.error = code == CURLE_OPERATION_TIMEDOUT ? timeout_error : std::string("unreachable: ") + curl_easy_strerror(code);
        continue;
      }
      h.reachable = true;
      const std::string& ec = t->sink.error_code;
      if ((status == 401 || status == 404) && ec == "RepoNotFound") continue;  // holds no such repo it shows this node
      if (status == 404) {
        // Not this revision id: the next one, if any; else the peer holds no such revision.
        if (t->rev + 1 < revs) next.emplace_back(t->peer, t->rev + 1);
        continue;
      }
      if (status == 401 || status == 403) {
        h.error = "refused (HTTP " + std::to_string(status) + ")";
        continue;
      }
      if (status != 200) {
        h.error = "HTTP " + std::to_string(status);
        continue;
      }
      if (Status s = ParseHave(q, q.revs[t->rev], t->sink.body, &h); !s.ok()) {
        h.error = s.message();
        h.commit.clear();
        h.trusted = false;
        h.have.clear();
      }
    }
    for (auto [p, r] : next) {
      if (!start(p, r)) out[p].error = timeout_error;
    }
    if (!active.empty() && running > 0) curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
  }
  return out;
}

Result<std::shared_ptr<const std::vector<PeerHolding>>> PeerHoldings::Ask(const HaveQuery& q) {
  std::string key = q.repo;
  for (const std::string& r : q.revs) key += "\n" + r;
  const auto wait_until = Clock::now() + std::chrono::milliseconds(options_.timeout_ms + 2000);
  std::unique_lock lock(mu_);
  for (;;) {
    auto it = cache_.find(key);
    if (it != cache_.end() && Clock::now() - it->second.second < std::chrono::seconds(options_.cache_s)) {
      return it->second.first;
    }
    // The same query in flight: wait for its answer rather than ask again.
    if (!in_flight_.count(key) && running_ < options_.max_queries) break;
    if (Clock::now() >= wait_until) return ResourceExhaustedError("too many peer queries at once; retry shortly");
    cv_.wait_until(lock, wait_until);
  }
  in_flight_.insert(key);
  ++running_;
  lock.unlock();
  std::shared_ptr<const std::vector<PeerHolding>> result;
  try {
    result = std::make_shared<const std::vector<PeerHolding>>(Query(q));
  } catch (...) {
    lock.lock();
    --running_;
    in_flight_.erase(key);
    cv_.notify_all();
    throw;
  }
  lock.lock();
  --running_;
  in_flight_.erase(key);
  const auto now = Clock::now();
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = now - it->second.second >= std::chrono::seconds(options_.cache_s) ? cache_.erase(it) : std::next(it);
  }
  if (cache_.size() >= kMaxCached) {
    auto oldest = std::min_element(cache_.begin(), cache_.end(),
                                   [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
    cache_.erase(oldest);
  }
  cache_[key] = {result, now};
  cv_.notify_all();
  return result;
}

}  // namespace hubnode::hub

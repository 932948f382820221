#include "hub/peer/peer_fetch.h"

#include <curl/curl.h>

#include <deque>
#include <map>
#include <memory>
#include <thread>

#include <ctime>
#include <nlohmann/json.hpp>

#include "base/hex.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "hub/client/upstream.h"
#include "hub/peer/peer_auth.h"
#include "store/store.h"

namespace hubnode::hub {
namespace {

constexpr size_t kMaxRecord = 80u << 20;  // a chunk record is at most 64 MiB raw plus headers

size_t Append(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxRecord) return 0;  // aborts the transfer
  body->append(data, size * n);
  return size * n;
}

void MarkTried(std::vector<bool>& tried, int peer) {
  if (static_cast<size_t>(peer) >= tried.size()) tried.resize(peer + 1, false);
  tried[peer] = true;
}

}  // namespace

ChunkFetcher::ChunkFetcher(PeerFetchOptions options) : options_(std::move(options)) {
  for (const std::string& url : options_.peers) {
    Peer p;
    p.stats.url = url;
    while (!p.stats.url.empty() && p.stats.url.back() == '/') p.stats.url.pop_back();
    peers_.push_back(std::move(p));
  }
}

ChunkFetcher::~ChunkFetcher() {
  for (void* m : idle_multis_) curl_multi_cleanup(static_cast<CURLM*>(m));
}

std::vector<PeerStats> ChunkFetcher::stats() const {
  std::lock_guard lock(mu_);
  std::vector<PeerStats> out;
  for (const Peer& p : peers_) out.push_back(p.stats);
  return out;
}

void ChunkFetcher::Discover() {
  std::vector<std::string> configured;
  {
    std::lock_guard lock(mu_);
    if (discovered_ || !options_.discover) return;
    discovered_ = true;
    for (const Peer& p : peers_) configured.push_back(p.stats.url);
  }
  for (const std::string& url : configured) {
    UpstreamOptions uo;
    uo.url = url;
    uo.token = options_.token;
    uo.connect_timeout_s = options_.connect_timeout_s;
    auto body = Upstream(uo).Fetch("/api/peer/v1/catalog", 16 << 20);
    if (!body.ok()) continue;
    auto j = (JsonDepthWithin(*body) ? nlohmann::json::parse(*body, nullptr, false) : nlohmann::json(nlohmann::json::value_t::discarded));
    if (j.is_discarded() || !j.is_object() || !j.contains("peers") || !j["peers"].is_array()) continue;
    std::lock_guard lock(mu_);
    for (const auto& p : j["peers"]) {
      if (!p.is_string()) continue;
      std::string u = p.get<std::string>();
      while (!u.empty() && u.back() == '/') u.pop_back();
      if (!(u.starts_with("http://") || u.starts_with("https://")) || u.size() > 2048) continue;
      if (static_cast<int>(peers_.size()) >= options_.max_peers) break;
      bool known = false;
      for (const Peer& q : peers_) known = known || q.stats.url == u;
      if (known) continue;
      Peer added;
      added.stats.url = u;
      peers_.push_back(std::move(added));
      LOG(Info) << "learned peer " << u << " from " << url;
    }
  }
}

int ChunkFetcher::Pick(const std::vector<bool>& tried) const {
  const auto now = Clock::now();
  int best = -1;
  double best_rate = -1;
  bool any_usable = false;
  for (size_t i = 0; i < peers_.size(); ++i) {
    const Peer& p = peers_[i];
    // Peers learned by a concurrent Discover() may be newer than this fetch's `tried` vectors.
    if (p.stats.demoted || (i < tried.size() && tried[i])) continue;
    any_usable = true;
    if (p.in_flight >= options_.max_per_peer || now < p.retry_after) continue;
    // Unmeasured peers first (to measure them), then by bytes per second.
    const double rate = p.stats.seconds > 0 ? p.stats.bytes / p.stats.seconds : 1e18;
    if (rate > best_rate) {
      best_rate = rate;
      best = static_cast<int>(i);
    }
  }
  return best >= 0 ? best : (any_usable ? -1 : -2);
}

Status ChunkFetcher::Fetch(const std::vector<ChunkId>& ids, const std::function<Status(size_t, std::string&&)>& sink,
                           const ChunkScope& scope) {
  if (ids.empty()) return OkStatus();
  if (peers_.empty()) return UnavailableError("no peers to fetch chunks from");
  Discover();
  // A multi handle from the pool (its connections to the peers stay open between fetches).
  CURLM* handle = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!idle_multis_.empty()) {
      handle = static_cast<CURLM*>(idle_multis_.back());
      idle_multis_.pop_back();
    }
  }
  if (handle == nullptr) handle = curl_multi_init();
  auto give_back = [this](CURLM* m) {
    std::lock_guard lock(mu_);
    idle_multis_.push_back(m);
  };
  std::unique_ptr<CURLM, decltype(give_back)> multi(handle, give_back);
  struct Transfer {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy{nullptr, curl_easy_cleanup};
    size_t index = 0;
    int peer = 0;
    std::string body;
    Clock::time_point start;
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers{nullptr, curl_slist_free_all};
  };
  std::map<CURL*, std::unique_ptr<Transfer>> active;
  std::deque<size_t> queue;
  for (size_t i = 0; i < ids.size(); ++i) queue.push_back(i);
  std::vector<std::vector<bool>> tried(ids.size(), std::vector<bool>(peers_.size(), false));
  const std::string query =
      scope.repo.empty() ? "" : "?repo=" + UrlEncode(scope.repo, true) + "&rev=" + UrlEncode(scope.commit, false);
  size_t done = 0, unobtainable = 0;
  Status failure;
  while (done + unobtainable < ids.size() && failure.ok()) {
    {
      std::lock_guard lock(mu_);
      while (!queue.empty()) {
        const size_t index = queue.front();
        const int p = Pick(tried[index]);
        if (p == -2) {  // no peer left for this chunk
          queue.pop_front();
          ++unobtainable;
          continue;
        }
        if (p == -1) break;
        queue.pop_front();
        auto t = std::make_unique<Transfer>();
        t->easy.reset(curl_easy_init());
        t->index = index;
        t->peer = p;
        t->start = Clock::now();
        const std::string target = "/api/peer/v1/chunks/" + ids[index].hex() + query;
        const std::string url = peers_[p].stats.url + target;
        curl_slist* headers = nullptr;
        if (!options_.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.token).c_str());
        for (const std::string& h : PeerGetHeadersNow(options_.node_key ? &*options_.node_key : nullptr, peers_[p].stats.url, target)) {
          headers = curl_slist_append(headers, h.c_str());
        }
        t->headers.reset(headers);
        CURL* e = t->easy.get();
        curl_easy_setopt(e, CURLOPT_URL, url.c_str());
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, Append);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &t->body);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout_s));
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 16384L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.low_speed_s));
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        ++peers_[p].in_flight;
        curl_multi_add_handle(multi.get(), e);
        active.emplace(e, std::move(t));
      }
    }
    if (active.empty()) {
      if (queue.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // every peer backing off
      continue;
    }
    int running = 0;
    curl_multi_perform(multi.get(), &running);
    int left = 0;
    bool finished_any = false;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      finished_any = true;
      auto it = active.find(msg->easy_handle);
      if (it == active.end()) continue;
      std::unique_ptr<Transfer> t = std::move(it->second);
      active.erase(it);
      curl_multi_remove_handle(multi.get(), t->easy.get());
      long status = 0;
      curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
      const CURLcode code = msg->data.result;
      const double seconds = std::chrono::duration<double>(Clock::now() - t->start).count();
      Result<std::string> raw = UnavailableError("unset");
      if (code == CURLE_OK && status == 200) raw = store::DecodeVerifiedChunk(ids[t->index], t->body);
      const bool good = code == CURLE_OK && status == 200 && raw.ok();
      if (good) {
        // The sink writes (a file, a tensor buffer): outside the lock, so that concurrent
        // fetches do not wait on each other's writes.
        ++done;
        if (Status s = sink(t->index, std::move(*raw)); !s.ok()) failure = s;
      }
      std::lock_guard lock(mu_);
      Peer& peer = peers_[t->peer];
      --peer.in_flight;
      if (good) {
        peer.stats.chunks += 1;
        peer.stats.bytes += t->body.size();
        peer.stats.seconds += seconds;
      } else if (code == CURLE_OK && status == 200) {
        // A chunk that does not hash to its id: the peer is not to be trusted again.
        ++peer.stats.bad_chunks;
        peer.stats.demoted = true;
        LOG(Warning) << "peer " << peer.stats.url << " sent a bad chunk " << ids[t->index].hex().substr(0, 16)
                     << " (" << raw.status().message() << "); demoted";
        MarkTried(tried[t->index], t->peer);
        queue.push_front(t->index);
      } else if (code == CURLE_OK && (status == 404 || status == 401 || status == 403)) {
        // It lacks this chunk, or will not give it to this caller; others may.
        MarkTried(tried[t->index], t->peer);
        queue.push_front(t->index);
      } else {
        ++peer.stats.failures;
        peer.retry_after = Clock::now() + std::chrono::milliseconds(100 << std::min<uint64_t>(peer.stats.failures, 6));
        if (peer.stats.failures >= static_cast<uint64_t>(options_.max_failures)) {
          peer.stats.demoted = true;
          LOG(Warning) << "peer " << peer.stats.url << " failed " << peer.stats.failures << " times ("
                       << (code != CURLE_OK ? curl_easy_strerror(code) : ("HTTP " + std::to_string(status)).c_str())
                       << "); demoted";
        }
        queue.push_front(t->index);
      }
    }
    // Wait for socket activity only when nothing finished (a finished transfer frees a slot).
    if (!finished_any && running > 0) curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
  }
  for (auto& [easy, t] : active) {
    curl_multi_remove_handle(multi.get(), easy);
    std::lock_guard lock(mu_);
    --peers_[t->peer].in_flight;
  }
  RETURN_IF_ERROR(failure);
  if (unobtainable > 0) {
    return UnavailableError(std::to_string(unobtainable) + " of " + std::to_string(ids.size()) +
                            " chunks could not be fetched from any peer");
  }
  return OkStatus();
}

store::ChunkSource PeerChunkSource(std::shared_ptr<ChunkFetcher> fetcher) {
  return [fetcher](const ChunkId& id, uint32_t) -> Result<std::string> {
    std::string out;
    RETURN_IF_ERROR(fetcher->Fetch({id}, [&](size_t, std::string&& raw) {
      out = std::move(raw);
      return OkStatus();
    }));
    return out;
  };
}

}  // namespace hubnode::hub

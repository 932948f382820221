#include "hub/peer/remote_source.h"

#include <ctime>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <unordered_map>

#include "base/json_limits.h"
#include "hub/client/upstream.h"

namespace hubnode::hub {
namespace {

using nlohmann::json;

constexpr size_t kMaxSmallFile = 64 << 20;

class PeerSource final : public runtime::TensorSource {
 public:
  PeerSource(const PeerFetchOptions& options, verify::ChunkMap map, std::shared_ptr<RemoteSourceStats> stats)
      : fetcher_(options), map_(std::move(map)), stats_(std::move(stats)) {}

  Status AddTensor(const json& t) {
    if (!t.is_object() || !t.value("name", json()).is_string() || !t.value("dtype", json()).is_string() ||
        !t.value("path", json()).is_string() || !t.value("shape", json()).is_array() ||
        !t.value("begin", json()).is_number_unsigned() || !t.value("end", json()).is_number_unsigned()) {
      return DataLossError("the peer's tensor list is malformed");
    }
    runtime::TensorDesc d;
    d.name = t["name"].get<std::string>();
    const std::string dtype = t["dtype"].get<std::string>();
    if (dtype == "BF16") {
      d.dtype = runtime::DType::kBF16;
    } else if (dtype == "F16") {
      d.dtype = runtime::DType::kF16;
    } else if (dtype == "F32") {
      d.dtype = runtime::DType::kF32;
    } else if (dtype == "F8_E4M3") {
      d.dtype = runtime::DType::kF8E4M3;
    } else {
      return InvalidArgumentError("tensor " + d.name + " has dtype " + dtype + " (supported: BF16, F16, F32, F8_E4M3)");
    }
    for (const json& s : t["shape"]) {
      if (!s.is_number_unsigned()) return DataLossError("the peer's tensor list is malformed");
      d.shape.push_back(s.get<int64_t>());
    }
    Where w{t["path"].get<std::string>(), t["begin"].get<uint64_t>(), t["end"].get<uint64_t>()};
    // The range must lie in a file of the signed map and match the shape: the peer's listing is
    // untrusted, the map is not.
    auto file = map_.File(w.path);
    if (!file.ok() || w.end < w.begin || w.end > (*file)->size || w.end - w.begin != d.bytes()) {
      return DataLossError("tensor " + d.name + ": its byte range does not fit the signed chunk map");
    }
    where_[d.name] = w;
    descs_.push_back(std::move(d));
    return OkStatus();
  }

  Result<std::string> ReadFile(std::string_view path) override {
    ASSIGN_OR_RETURN(const verify::ChunkMapFile* f, map_.File(path));
    if (f->size > kMaxSmallFile) return InvalidArgumentError(std::string(path) + " is larger than 64 MiB");
    std::string out(f->size, '\0');
    RETURN_IF_ERROR(ReadRange(*f, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size())));
    return out;
  }

  Result<std::vector<runtime::TensorDesc>> ListTensors() override { return descs_; }

  Status ReadTensor(std::string_view name, std::span<uint8_t> out) override {
    auto it = where_.find(std::string(name));
    if (it == where_.end()) return NotFoundError("no tensor " + std::string(name));
    ASSIGN_OR_RETURN(const verify::ChunkMapFile* f, map_.File(it->second.path));
    if (out.size() != it->second.end - it->second.begin) return InvalidArgumentError("wrong buffer size");
    return ReadRange(*f, it->second.begin, out);
  }

  // Fetches the chunks of every non-expert tensor in one batch (all peers at once), kept until
  // the load reads them: the engine loads those tensors one by one, which would otherwise be one
  // round trip after another. Experts are fetched on their cache misses.
  Status Warm() {
    std::vector<ChunkId> ids;
    std::set<ChunkId> seen;
    for (const runtime::TensorDesc& d : descs_) {
      if (d.name.find(".experts.") != std::string::npos) continue;
      const Where& w = where_[d.name];
      ASSIGN_OR_RETURN(const verify::ChunkMapFile* f, map_.File(w.path));
      uint64_t at = 0;
      for (const auto& c : f->chunks) {
        if (at < w.end && at + c.size > w.begin && seen.insert(c.id).second) ids.push_back(c.id);
        at += c.size;
      }
    }
    return fetcher_.Fetch(ids, [&](size_t i, std::string&& raw) {
      std::lock_guard lock(mu_);
      stats_->chunks += 1;
      stats_->raw_bytes += raw.size();
      warm_[ids[i]] = std::move(raw);
      return OkStatus();
    }, Scope());
  }

 private:
  struct Where {
    std::string path;
    uint64_t begin, end;
  };

  // Fetches the chunks covering [offset, offset + out.size()) of `f` and copies the range.
  Status ReadRange(const verify::ChunkMapFile& f, uint64_t offset, std::span<uint8_t> out) {
    std::vector<ChunkId> ids;
    std::vector<uint64_t> starts;
    uint64_t at = 0;
    for (const auto& c : f.chunks) {
      if (at < offset + out.size() && at + c.size > offset) {
        ids.push_back(c.id);
        starts.push_back(at);
      }
      at += c.size;
    }
    uint64_t copied = 0;
    auto place = [&](size_t i, const std::string& raw) {
      const uint64_t lo = std::max(offset, starts[i]), hi = std::min(offset + out.size(), starts[i] + raw.size());
      if (hi > lo) {
        std::memcpy(out.data() + (lo - offset), raw.data() + (lo - starts[i]), hi - lo);
        copied += hi - lo;
      }
    };
    // Warmed chunks first (each used once: a warmed chunk belongs to one tensor's load).
    std::vector<ChunkId> fetch;
    std::vector<size_t> fetch_index;
    for (size_t i = 0; i < ids.size(); ++i) {
      std::string raw;
      {
        std::lock_guard lock(mu_);
        auto w = warm_.find(ids[i]);
        if (w != warm_.end()) {
          raw = std::move(w->second);
          warm_.erase(w);
        }
      }
      if (raw.empty()) {
        fetch.push_back(ids[i]);
        fetch_index.push_back(i);
      } else {
        place(i, raw);
      }
    }
    ids = std::move(fetch);
    RETURN_IF_ERROR(fetcher_.Fetch(ids, [&](size_t k, std::string&& raw) -> Status {
      const size_t i = fetch_index[k];
      place(i, raw);
      std::lock_guard lock(mu_);
      stats_->chunks += 1;
      stats_->raw_bytes += raw.size();
      return OkStatus();
    }, Scope()));
    if (copied != out.size()) return DataLossError(f.path + ": the chunks do not cover the range");
    return OkStatus();
  }

  ChunkScope Scope() const { return ChunkScope{map_.repo, map_.commit}; }

  ChunkFetcher fetcher_;
  verify::ChunkMap map_;
  std::shared_ptr<RemoteSourceStats> stats_;
  std::mutex mu_;
  std::vector<runtime::TensorDesc> descs_;
  std::unordered_map<std::string, Where> where_;
  std::map<ChunkId, std::string> warm_;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<runtime::TensorSource>> OpenPeerSource(const PeerFetchOptions& peers, const std::string& repo,
                                                              const std::string& rev, const verify::TrustStore& trust,
                                                              std::shared_ptr<RemoteSourceStats> stats) {
  if (peers.peers.empty()) return InvalidArgumentError("no peers");
  UpstreamOptions uo;
  uo.url = peers.peers[0];
  uo.token = peers.token;
  Upstream first(uo);
  ASSIGN_OR_RETURN(UpstreamRevision resolved, first.ResolveRevision(repo, rev));
  std::optional<verify::ChunkMap> map;
  Status why = PermissionDeniedError("no peer serves a chunk map of " + repo + "@" + resolved.sha);
  for (const std::string& url : peers.peers) {
    UpstreamOptions po = uo;
    po.url = url;
    Upstream peer(po);
    auto bundle = peer.GetChunkMap(repo, resolved.sha);
    if (!bundle.ok()) continue;
    auto verified = verify::VerifyChunkMapWithTrustStore(*bundle, trust, static_cast<int64_t>(std::time(nullptr)));
    if (!verified.ok()) {
      why = verified.status();
      continue;
    }
    if (verified->map.repo != repo || verified->map.commit != resolved.sha) {
      why = PermissionDeniedError("the chunk map from " + url + " is for another revision");
      continue;
    }
    map = std::move(verified->map);
    break;
  }
  if (!map) return why;
  ASSIGN_OR_RETURN(std::string listing, first.Fetch("/api/peer/v1/tensors/" + repo + "?rev=" + resolved.sha, 64 << 20));
  json j = (JsonDepthWithin(listing) ? json::parse(listing, nullptr, false) : json(json::value_t::discarded));
  if (j.is_discarded() || !j.is_object() || !j.contains("tensors") || !j["tensors"].is_array()) {
    return DataLossError("the peer's tensor list is malformed");
  }
  auto source = std::make_unique<PeerSource>(peers, std::move(*map), stats ? stats : std::make_shared<RemoteSourceStats>());
  for (const json& t : j["tensors"]) RETURN_IF_ERROR(source->AddTensor(t));
  RETURN_IF_ERROR(source->Warm());
  return std::unique_ptr<runtime::TensorSource>(std::move(source));
}

}  // namespace hubnode::hub

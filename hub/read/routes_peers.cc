// GET /api/models/{repo}/peers[/{rev}]: what of a revision this node's peers hold (asked with
// hub/peer/peer_have.h), and each expert as held here, on a peer, or missing.
#include <algorithm>
#include <string_view>

#include "base/hex.h"
#include "hub/read/handlers.h"

namespace hubnode::hub {
namespace {

constexpr size_t kMaxExperts = 16384;  // as locality's expert map
constexpr size_t kMaxPeerFiles = 1024;
constexpr size_t kMaxOrigins = 3;

// The upstream commit ids this commit mirrors: the Mirrored-From trailers of its message that
// name this repo (a mirror writes one: `Mirrored-From: URL/ns/name@<40 hex>`).
std::vector<std::string> MirroredFrom(const std::string& message, const std::string& repo) {
  constexpr std::string_view kKey = "Mirrored-From: ";
  const std::string suffix = "/" + repo;
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < message.size() && out.size() < kMaxOrigins) {
    size_t end = message.find('\n', pos);
    if (end == std::string::npos) end = message.size();
    std::string_view line(message.data() + pos, end - pos);
    pos = end + 1;
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.starts_with(kKey)) continue;
    const size_t at = line.rfind('@');
    if (at == std::string_view::npos || at < kKey.size()) continue;
    std::string_view sha = line.substr(at + 1);
    if (sha.size() != 40 || !IsLowerHex(sha) || !line.substr(kKey.size(), at - kKey.size()).ends_with(suffix)) continue;
    if (std::find(out.begin(), out.end(), sha) == out.end()) out.emplace_back(sha);
  }
  return out;
}

}  // namespace

std::unique_ptr<PeerHoldings> Handlers::MakePeerHoldings(const ReadOptions& options) {
  if (options.peers.empty()) return nullptr;
  PeerHoldingsOptions o;
  o.peers = options.peers;
  o.node_key = options.node_key;
  return std::make_unique<PeerHoldings>(std::move(o));
}

void Handlers::Peers(const Route& r, const std::optional<Principal>& who, httplib::Response& res) {
  // Access as repo info: a repo the caller may not see is answered before any peer is asked.
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  auto c = store_->GetCommit(*commit);
  auto files = store_->ListFiles(*commit);
  if (!c.ok() || !files.ok()) return SendStatus(res, !c.ok() ? c.status() : files.status());

  // This node's view: each file's chunks and which of them it holds. Regular (non-LFS) files
  // are always held whole and are not counted, as in repo info's locality.
  struct FileView {
    const store::FileEntry* file;
    std::vector<store::FileChunk> chunks;
    std::vector<bool> held;
  };
  std::vector<FileView> view;
  std::map<std::string, size_t, std::less<>> by_path;
  HaveQuery query;
  query.repo = repo->id.str();
  for (const store::FileEntry& f : *files) {
    auto chunks = store_->ListChunks(f);
    if (!chunks.ok()) return SendStatus(res, chunks.status());
    std::vector<bool> held;
    if (f.lfs) {
      std::vector<ChunkId> ids;
      for (const auto& ch : *chunks) ids.push_back(ch.id);
      auto h = store_->HasChunks(ids);
      if (!h.ok()) return SendStatus(res, h.status());
      held = std::move(*h);
    } else {
      held.assign(chunks->size(), true);
    }
    query.files.emplace_back(f.path, chunks->size());
    by_path.emplace(f.path, view.size());
    view.push_back({&f, std::move(*chunks), std::move(held)});
  }

  // The peers' holdings: asked by the upstream ids this commit mirrors, then by its own id.
  std::shared_ptr<const std::vector<PeerHolding>> holdings;
  if (peer_holdings_) {
    query.revs = MirroredFrom(c->message, query.repo);
    query.revs.push_back(commit->hex());
    auto asked = peer_holdings_->Ask(query);
    if (!asked.ok()) {
      res.set_header("Retry-After", "2");
      return SendError(res, 503, "PeersBusy", asked.status().message());
    }
    holdings = *asked;
  }
  auto usable = [](const PeerHolding& h) { return h.error.empty() && !h.commit.empty(); };

  json peers = json::array();
  // covered[i][k]: a peer that trusts this node (and so serves it any chunk) holds chunk k of file i.
  std::vector<std::vector<bool>> covered(view.size());
  for (size_t i = 0; i < view.size(); ++i) covered[i].assign(view[i].chunks.size(), false);
  static const std::vector<PeerHolding> kNone;
  for (const PeerHolding& h : holdings ? *holdings : kNone) {
    json p = {{"url", h.url}, {"reachable", h.reachable}, {"trusted", h.trusted},
              {"commit", h.commit.empty() ? json(nullptr) : json(h.commit)}};
    if (!h.error.empty()) p["error"] = h.error;
    uint64_t total = 0, held = 0, held_bytes = 0, fill = 0, fill_bytes = 0;
    json pfiles = json::array();
    for (size_t i = 0; i < view.size(); ++i) {
      if (!view[i].file->lfs) continue;
      const auto& chunks = view[i].chunks;
      uint64_t fh = 0, fb = 0;
      for (size_t k = 0; k < chunks.size(); ++k) {
        const bool has = usable(h) && h.have[i][k];
        if (!has) continue;
        ++fh;
        fb += chunks[k].size;
        if (!view[i].held[k]) {
          ++fill;
          fill_bytes += chunks[k].size;
          if (h.trusted) covered[i][k] = true;
        }
      }
      total += chunks.size();
      held += fh;
      held_bytes += fb;
      if (usable(h) && pfiles.size() < kMaxPeerFiles) {
        pfiles.push_back({{"path", view[i].file->path}, {"chunks", chunks.size()}, {"heldChunks", fh}, {"heldBytes", fb}});
      }
    }
    p["totalChunks"] = total;
    p["heldChunks"] = held;
    p["heldBytes"] = held_bytes;
    p["fillChunks"] = fill;
    p["fillBytes"] = fill_bytes;
    p["files"] = pfiles;
    peers.push_back(std::move(p));
  }

  // Each expert: local when every chunk of its parts is held here; on a peer when the peers that
  // trust this node hold every chunk of it this node lacks (between them); else missing.
  json experts = json::array();
  size_t n_local = 0, n_peer = 0, n_missing = 0;
  auto index = store_->GetExpertIndex(*commit);
  if (index.ok()) {
    for (const auto& [key, parts] : *index) {
      bool local = true, reachable = true;
      for (const store::ExpertPart& part : parts) {
        auto it = by_path.find(part.path);
        if (it == by_path.end()) {
          local = reachable = false;
          continue;
        }
        const FileView& fv = view[it->second];
        // The chunks overlapping the part's bytes (offsets ascending).
        auto first = std::partition_point(fv.chunks.begin(), fv.chunks.end(), [&](const store::FileChunk& ch) {
          return ch.offset + ch.size <= part.offset;
        });
        for (auto ch = first; ch != fv.chunks.end() && ch->offset < part.offset + part.length; ++ch) {
          const size_t k = static_cast<size_t>(ch - fv.chunks.begin());
          if (fv.held[k]) continue;
          local = false;
          if (!covered[it->second][k]) reachable = false;
        }
      }
      const char* state = local ? "local" : reachable ? "peer" : "missing";
      (local ? n_local : reachable ? n_peer : n_missing) += 1;
      if (experts.size() < kMaxExperts) {
        experts.push_back({key.layer, key.expert == store::kSharedExpertIndex ? -1 : static_cast<int64_t>(key.expert), state});
      }
    }
  }
  res.set_header("X-Repo-Commit", commit->hex());
  SendJson(res, {{"commit", commit->hex()},
                 {"peers", peers},
                 {"experts", experts},
                 {"expertCounts", {{"local", n_local}, {"peer", n_peer}, {"missing", n_missing}}}});
}

}  // namespace hubnode::hub

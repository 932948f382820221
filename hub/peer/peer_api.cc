#include "hub/peer/peer_api.h"

#include <algorithm>
#include <ctime>

#include "base/hex.h"
#include "base/json_limits.h"
#include "hub/http/http_util.h"
#include "hub/peer/peer_auth.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {
namespace {

// A batch answers at most this many ids and this many record bytes; the rest are marked "not
// sent" and asked for again. Bounds a worker's memory.
constexpr size_t kMaxBatchIds = 256;
constexpr size_t kMaxBatchBytes = 16 << 20;
// Commits whose chunk sets are kept, and the ids kept in all (32 bytes each).
constexpr size_t kChunkSetCommits = 8;
constexpr size_t kChunkSetIds = 2'000'000;

enum : uint8_t { kPresent = 0, kMissing = 1, kNotSent = 2 };

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string Base64Bits(const std::vector<bool>& bits) {
  std::string bytes((bits.size() + 7) / 8, '\0');
  for (size_t i = 0; i < bits.size(); ++i) {
    if (bits[i]) bytes[i / 8] = static_cast<char>(bytes[i / 8] | (1 << (i % 8)));
  }
  return verify::Base64Encode(bytes);
}

}  // namespace

void PeerApi::Handle(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who) {
  std::string_view path = req.path;
  path.remove_prefix(std::string_view("/api/peer/v1/").size());
  auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (!path.starts_with(prefix)) return std::nullopt;
    return path.substr(prefix.size());
  };
  const bool post = req.method == "POST";
  if (path == "chunks" && post) return Chunks(req, res, who);
  if (auto id = after("chunks/"); id && !post) return Chunk(req, *id, res, who);
  if (path == "catalog" && !post) return Catalog(res, who);
  if (auto repo = after("have/"); repo && !post) return Have(req, *repo, res, who);
  if (auto repo = after("experts/"); repo && !post) return Experts(req, *repo, res, who);
  if (auto repo = after("tensors/"); repo && !post) return Tensors(req, *repo, res, who);
  SendError(res, 404, "NotFound", "no such peer route");
}

Result<std::shared_ptr<const std::vector<ChunkId>>> PeerApi::ChunksOf(const GitOid& commit) {
  {
    std::lock_guard lock(cache_mu_);
    for (auto it = chunk_sets_.begin(); it != chunk_sets_.end(); ++it) {
      if (it->first == commit) {
        chunk_sets_.splice(chunk_sets_.begin(), chunk_sets_, it);
        return chunk_sets_.front().second;
      }
    }
  }
  ASSIGN_OR_RETURN(std::vector<store::FileEntry> files, st_->ListFiles(commit));
  auto ids = std::make_shared<std::vector<ChunkId>>();
  for (const store::FileEntry& f : files) {
    ASSIGN_OR_RETURN(std::vector<store::FileChunk> chunks, st_->ListChunks(f));
    for (const store::FileChunk& c : chunks) ids->push_back(c.id);
  }
  std::sort(ids->begin(), ids->end());
  ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
  std::lock_guard lock(cache_mu_);
  chunk_sets_.emplace_front(commit, ids);
  size_t total = 0;
  for (auto it = chunk_sets_.begin(); it != chunk_sets_.end();) {
    total += it->second->size();
    const bool keep = it == chunk_sets_.begin() || (chunk_sets_.size() <= kChunkSetCommits && total <= kChunkSetIds);
    it = keep ? std::next(it) : chunk_sets_.erase(it);
  }
  return std::shared_ptr<const std::vector<ChunkId>>(std::move(ids));
}

std::optional<bool> PeerApi::TrustedNode(const httplib::Request& req, bool unsigned_allowed, httplib::Response& res) {
  if (!req.has_header(std::string(kPeerKeyHeader).c_str())) return false;
  auto trust = trust_path_.empty() ? Result<verify::TrustStore>(verify::TrustStore{}) : TrustFile(trust_path_).Load();
  if (!trust.ok()) {
    SendStatus(res, trust.status());
    return std::nullopt;
  }
  SignedPeerRequest signed_req;
  signed_req.key_hint = req.get_header_value(std::string(kPeerKeyHeader).c_str());
  signed_req.time = req.get_header_value(std::string(kPeerTimeHeader).c_str());
  signed_req.signature = req.get_header_value(std::string(kPeerSignatureHeader).c_str());
  signed_req.host = req.get_header_value("Host");
  signed_req.method = req.method;
  signed_req.target = req.target;
  signed_req.body = req.body;
  auto node = VerifyPeerRequest(signed_req, *trust, static_cast<int64_t>(std::time(nullptr)));
  if (node.ok()) return true;
  // An untrusted key is no credential: the request is judged as an unsigned one.
  if (node.status().code() != StatusCode::kNotFound || !unsigned_allowed) {
    SendError(res, 401, "Unauthorized", node.status().message());
    return std::nullopt;
  }
  return false;
}

std::optional<std::function<bool(const ChunkId&)>> PeerApi::ChunkAccess(const httplib::Request& req,
                                                                        const std::string& repo, const std::string& rev,
                                                                        httplib::Response& res,
                                                                        const std::optional<Principal>& who) {
  auto trusted = TrustedNode(req, !repo.empty(), res);
  if (!trusted) return std::nullopt;
  if (*trusted) return [](const ChunkId&) { return true; };
  if (repo.empty()) {
    SendError(res, 400, "BadRequest",
              "name the revision that holds the chunk (?repo=ns/name&rev=commit), or sign the request with a node key "
              "this node trusts");
    return std::nullopt;
  }
  auto opened = Open(repo, rev, res, who);
  if (!opened) return std::nullopt;
  if (denied_) {
    auto info = st_->GetRepo(opened->first);
    std::optional<std::string> why = info.ok() ? denied_(*info, opened->second, who) : std::nullopt;
    if (why) {
      SendError(res, 451, "PolicyRefused", "This node's policy does not allow serving this revision: " + *why);
      return std::nullopt;
    }
  }
  auto ids = ChunksOf(opened->second);
  if (!ids.ok()) {
    SendStatus(res, ids.status());
    return std::nullopt;
  }
  return [set = *ids](const ChunkId& id) { return std::binary_search(set->begin(), set->end(), id); };
}

void PeerApi::Chunk(const httplib::Request& req, std::string_view hex, httplib::Response& res,
                    const std::optional<Principal>& who) {
  auto id = ChunkId::FromHex(hex);
  if (!id.ok()) return SendError(res, 400, "BadRequest", "a chunk id is 64 hex digits");
  const std::string repo = req.has_param("repo") ? req.get_param_value("repo") : "";
  const std::string rev = req.has_param("rev") ? req.get_param_value("rev") : "HEAD";
  auto allowed = ChunkAccess(req, repo, rev, res, who);
  if (!allowed) return;
  // A chunk the revision does not reference reads as absent, whether or not this node holds it.
  if (!(*allowed)(*id)) return SendError(res, 404, "ChunkNotFound", "chunk " + id->hex() + " not found");
  auto record = st_->ReadChunkRecord(*id);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) return SendError(res, 404, "ChunkNotFound", record.status().message());
    return SendStatus(res, record.status());
  }
  res.set_header("X-Chunk-Id", id->hex());
  res.set_content(std::move(*record), "application/octet-stream");
}

void PeerApi::Chunks(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who) {
  json body = (JsonDepthWithin(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded));
  if (body.is_discarded() || !body.is_object() || !body.contains("ids") || !body["ids"].is_array()) {
    return SendError(res, 400, "BadRequest", "expected {\"ids\": [chunk ids], \"repo\": id, \"rev\": commit}");
  }
  const json& ids = body["ids"];
  if (ids.size() > kMaxBatchIds) return SendError(res, 400, "BadRequest", "at most 256 ids per batch");
  const json repo = body.value("repo", json(""));
  const json rev = body.value("rev", json("HEAD"));
  if (!repo.is_string() || !rev.is_string()) return SendError(res, 400, "BadRequest", "repo and rev are strings");
  auto allowed = ChunkAccess(req, repo.get<std::string>(), rev.get<std::string>(), res, who);
  if (!allowed) return;
  std::string out;
  for (const json& j : ids) {
    auto id = j.is_string() ? ChunkId::FromHex(j.get<std::string>()) : Result<ChunkId>(InvalidArgumentError("not a string"));
    if (!id.ok()) return SendError(res, 400, "BadRequest", "a chunk id is 64 hex digits");
    out.append(id->view());
    if (out.size() > kMaxBatchBytes) {
      out.push_back(static_cast<char>(kNotSent));
      PutU32(out, 0);
      continue;
    }
    auto record = (*allowed)(*id) ? st_->ReadChunkRecord(*id) : Result<std::string>(NotFoundError("not referenced"));
    if (!record.ok()) {
      if (record.status().code() != StatusCode::kNotFound) return SendStatus(res, record.status());
      out.push_back(static_cast<char>(kMissing));
      PutU32(out, 0);
      continue;
    }
    out.push_back(static_cast<char>(kPresent));
    PutU32(out, static_cast<uint32_t>(record->size()));
    out += *record;
  }
  res.set_content(std::move(out), "application/vnd.hubnode.chunks");
}

std::optional<std::pair<store::RepoId, GitOid>> PeerApi::Open(std::string_view repo, const std::string& rev,
                                                              httplib::Response& res,
                                                              const std::optional<Principal>& who, bool trusted) {
  auto id = store::RepoId::Parse(repo);
  if (!id.ok()) {
    SendError(res, 400, "BadRequest", id.status().message());
    return std::nullopt;
  }
  auto info = st_->GetRepo(*id);
  if (info.ok() && trusted) {
    // A node this node trusts may have any chunk, so it may know which ones this node holds.
  } else if (info.ok() && info->visibility == store::Visibility::kGated && !CanRead(who, *info)) {
    SendError(res, 403, "GatedRepo", "Access to model " + info->id.str() + " is restricted.");
    return std::nullopt;
  }
  if (!info.ok() || (!trusted && !CanRead(who, *info))) {
    SendError(res, 401, "RepoNotFound", "Repository not found");
    return std::nullopt;
  }
  auto commit = st_->Resolve(*id, rev);
  if (!commit.ok()) {
    SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + rev.substr(0, 100));
    return std::nullopt;
  }
  return std::make_pair(*id, *commit);
}

std::optional<GitOid> PeerApi::MirrorOf(const store::RepoId& repo, const std::string& upstream) {
  constexpr size_t kMaxRefs = 64;
  auto refs = st_->ListRefs(repo);
  if (!refs.ok()) return std::nullopt;
  const std::string trailer = "\nMirrored-From: ";
  const std::string suffix = "/" + repo.str() + "@" + upstream;
  size_t seen = 0;
  for (const store::RefInfo& ref : *refs) {
    if (!ref.name.starts_with("refs/heads/") && !ref.name.starts_with("refs/tags/")) continue;
    if (++seen > kMaxRefs) break;
    auto c = st_->GetCommit(ref.commit);
    if (!c.ok()) continue;
    for (size_t at = c->message.find(trailer); at != std::string::npos; at = c->message.find(trailer, at + 1)) {
      const size_t end = std::min(c->message.find('\n', at + 1), c->message.size());
      std::string_view line(c->message.data() + at + 1, end - at - 1);
      while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.ends_with(suffix)) return ref.commit;
    }
  }
  return std::nullopt;
}

void PeerApi::Have(const httplib::Request& req, std::string_view repo, httplib::Response& res,
                   const std::optional<Principal>& who) {
  auto trusted = TrustedNode(req, /*unsigned_allowed=*/true, res);
  if (!trusted) return;
  const std::string rev = req.has_param("rev") ? req.get_param_value("rev") : "HEAD";
  // An upstream commit id this node mirrors under a commit of its own (a partial pull's, which
  // has no refs/mirror alias) is found by the commit's Mirrored-From trailer: looked for only in
  // a repo the caller may read (Open answers the others, without a walk that timing could show).
  std::string resolve = rev;
  if (rev.size() == 40 && IsLowerHex(rev)) {
    auto id = store::RepoId::Parse(repo);
    auto info = id.ok() ? st_->GetRepo(*id) : Result<store::RepoInfo>(id.status());
    if (info.ok() && (*trusted || CanRead(who, *info)) && !st_->Resolve(*id, rev).ok()) {
      if (auto mirror = MirrorOf(*id, rev)) resolve = mirror->hex();
    }
  }
  auto opened = Open(repo, resolve, res, who, *trusted);
  if (!opened) return;
  auto files = st_->ListFiles(opened->second);
  if (!files.ok()) return SendStatus(res, files.status());
  json out_files = json::array();
  uint64_t held = 0, total = 0;
  for (const store::FileEntry& f : *files) {
    auto chunks = st_->ListChunks(f);
    if (!chunks.ok()) return SendStatus(res, chunks.status());
    std::vector<ChunkId> ids;
    for (const auto& c : *chunks) ids.push_back(c.id);
    auto has = st_->HasChunks(ids);
    if (!has.ok()) return SendStatus(res, has.status());
    held += std::count(has->begin(), has->end(), true);
    total += has->size();
    out_files.push_back({{"path", f.path}, {"chunks", ids.size()}, {"have", Base64Bits(*has)}});
  }
  res.set_header("X-Repo-Commit", opened->second.hex());
  json out = {{"repo", opened->first.str()}, {"commit", opened->second.hex()}, {"chunks", total},
              {"held", held}, {"files", out_files}, {"nodeTrusted", *trusted}};
  // An upstream commit id this node mirrors under its own commit (refs/mirror/<id>).
  if (rev.size() == 40 && IsLowerHex(rev) && rev != opened->second.hex()) out["mirrors"] = rev;
  SendJson(res, out);
}

void PeerApi::Catalog(httplib::Response& res, const std::optional<Principal>& who) {
  auto repos = st_->ListRepos();
  if (!repos.ok()) return SendStatus(res, repos.status());
  json out = json::array();
  for (const store::RepoInfo& r : *repos) {
    if (!CanRead(who, r)) continue;
    auto refs = st_->ListRefs(r.id);
    if (!refs.ok()) return SendStatus(res, refs.status());
    json jrefs = json::array();
    for (const store::RefInfo& ref : *refs) {
      if (!ref.name.starts_with("refs/heads/") && !ref.name.starts_with("refs/tags/") && !ref.name.starts_with("refs/pr/")) continue;
      const bool signed_model = st_->StatFile(ref.commit, "model.sig").ok();
      jrefs.push_back({{"name", ref.name}, {"commit", ref.commit.hex()}, {"signed", signed_model},
                       {"chunk_map", "/api/models/" + r.id.str() + "/chunk-map/" + ref.commit.hex()}});
    }
    out.push_back({{"id", r.id.str()}, {"refs", jrefs}});
  }
  SendJson(res, {{"node_key", node_key_ ? json(node_key_->public_key().Hint()) : json(nullptr)},
                 {"repos", out},
                 {"peers", peers_}});
}

void PeerApi::Tensors(const httplib::Request& req, std::string_view repo, httplib::Response& res,
                      const std::optional<Principal>& who) {
  auto opened = Open(repo, req.has_param("rev") ? req.get_param_value("rev") : "HEAD", res, who);
  if (!opened) return;
  auto files = st_->ListFiles(opened->second);
  if (!files.ok()) return SendStatus(res, files.status());
  json out = json::array();
  for (const store::FileEntry& f : *files) {
    if (!f.path.ends_with(".safetensors")) continue;
    auto tensors = st_->ListTensors(f);
    if (!tensors.ok()) return SendStatus(res, tensors.status());
    for (const store::TensorInfo& t : *tensors) {
      out.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"path", f.path}, {"begin", t.begin},
                     {"end", t.end}});
    }
  }
  res.set_header("X-Repo-Commit", opened->second.hex());
  SendJson(res, {{"repo", opened->first.str()}, {"commit", opened->second.hex()}, {"tensors", out}});
}

void PeerApi::Experts(const httplib::Request& req, std::string_view repo, httplib::Response& res,
                      const std::optional<Principal>& who) {
  auto opened = Open(repo, req.has_param("rev") ? req.get_param_value("rev") : "HEAD", res, who);
  if (!opened) return;
  auto index = st_->GetExpertIndex(opened->second);
  if (!index.ok()) return SendStatus(res, index.status());
  auto files = st_->ListFiles(opened->second);
  if (!files.ok()) return SendStatus(res, files.status());
  // Each part's chunk range: the chunks overlapping its bytes (tensor-aware chunking makes them
  // exactly the expert's own).
  std::map<std::string, std::vector<store::FileChunk>> chunks_of;
  json out = json::array();
  for (const auto& [key, parts] : *index) {
    json jparts = json::array();
    for (const store::ExpertPart& p : parts) {
      auto it = chunks_of.find(p.path);
      if (it == chunks_of.end()) {
        auto f = std::find_if(files->begin(), files->end(), [&](const store::FileEntry& e) { return e.path == p.path; });
        if (f == files->end()) return SendError(res, 500, "InternalError", "expert index names a missing file");
        auto c = st_->ListChunks(*f);
        if (!c.ok()) return SendStatus(res, c.status());
        it = chunks_of.emplace(p.path, std::move(*c)).first;
      }
      size_t first = 0, last = 0;
      bool any = false;
      for (size_t i = 0; i < it->second.size(); ++i) {
        const store::FileChunk& c = it->second[i];
        if (c.offset < p.offset + p.length && c.offset + c.size > p.offset) {
          if (!any) first = i;
          last = i;
          any = true;
        }
      }
      json jp = {{"path", p.path}, {"tensor", p.tensor}, {"offset", p.offset}, {"length", p.length}};
      if (any) jp["chunks"] = {first, last};
      jparts.push_back(std::move(jp));
    }
    out.push_back({{"layer", key.layer},
                   {"expert", key.expert == store::kSharedExpertIndex ? json("shared") : json(key.expert)},
                   {"parts", jparts}});
  }
  res.set_header("X-Repo-Commit", opened->second.hex());
  SendJson(res, {{"repo", opened->first.str()}, {"commit", opened->second.hex()}, {"experts", out}});
}

}  // namespace hubnode::hub

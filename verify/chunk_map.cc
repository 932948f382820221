#include "verify/chunk_map.h"

#include <nlohmann/json.hpp>
#include <set>

#include "base/json_limits.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

using json = nlohmann::json;

constexpr std::string_view kStatementType = "https://in-toto.io/Statement/v1";
constexpr std::string_view kChunkMapPredicate = "https://hubnode.dev/chunk-map/v1";
// Limits on untrusted maps: a model has thousands of files at most, and a 1 TB file cut at the
// smallest chunk size has a few million chunks.
constexpr size_t kMaxFiles = 100000;
constexpr size_t kMaxChunks = 16u << 20;

Status Bad(const std::string& what) { return InvalidArgumentError("malformed chunk map: " + what); }

Result<std::string> Str(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return Bad(where + "." + key + " is missing or not a string");
  return it->get<std::string>();
}

Result<uint64_t> U64(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return Bad(where + "." + key + " is missing or not a count");
  return it->get<uint64_t>();
}

}  // namespace

Result<const ChunkMapFile*> ChunkMap::File(std::string_view path) const {
  for (const ChunkMapFile& f : files) {
    if (f.path == path) return &f;
  }
  return NotFoundError("the chunk map has no file " + std::string(path));
}

uint64_t ChunkMap::Offset(const ChunkMapFile& file, size_t index) {
  uint64_t offset = 0;
  for (size_t i = 0; i < index && i < file.chunks.size(); ++i) offset += file.chunks[i].size;
  return offset;
}

Status ChunkMap::CheckChunk(std::string_view path, size_t index, std::string_view data) const {
  ASSIGN_OR_RETURN(const ChunkMapFile* f, File(path));
  if (index >= f->chunks.size()) {
    return OutOfRangeError(std::string(path) + " has " + std::to_string(f->chunks.size()) + " chunks, not " +
                           std::to_string(index + 1));
  }
  const ChunkMapChunk& c = f->chunks[index];
  if (data.size() != c.size) {
    return DataLossError(std::string(path) + " chunk " + std::to_string(index) + ": " + std::to_string(data.size()) +
                         " bytes, the map says " + std::to_string(c.size));
  }
  if (ChunkIdOf(data) != c.id) {
    return DataLossError(std::string(path) + " chunk " + std::to_string(index) + ": SHA-256 differs from the map");
  }
  return OkStatus();
}

std::string ChunkMapStatement(const ChunkMap& map) {
  json subjects = json::array(), files = json::array();
  for (const ChunkMapFile& f : map.files) {
    subjects.push_back({{"name", f.path}, {"digest", {{"sha256", f.sha256.hex()}}}});
    json chunks = json::array();
    for (const ChunkMapChunk& c : f.chunks) chunks.push_back({{"sha256", c.id.hex()}, {"size", c.size}});
    files.push_back({{"path", f.path}, {"sha256", f.sha256.hex()}, {"size", f.size}, {"chunks", std::move(chunks)}});
  }
  return json{{"_type", kStatementType},
              {"subject", std::move(subjects)},
              {"predicateType", kChunkMapPredicate},
              {"predicate", {{"repo", map.repo}, {"commit", map.commit}, {"files", std::move(files)}}}}
      .dump();
}

Result<ChunkMap> ParseChunkMapStatement(std::string_view text) {
  json st = (JsonDepthWithin(text) ? json::parse(text.begin(), text.end(), nullptr, false) : json(json::value_t::discarded));
  if (st.is_discarded() || !st.is_object()) return Bad("the statement is not a JSON object");
  ASSIGN_OR_RETURN(std::string type, Str(st, "_type", "statement"));
  if (type != kStatementType) return Bad("_type is not " + std::string(kStatementType));
  ASSIGN_OR_RETURN(std::string ptype, Str(st, "predicateType", "statement"));
  if (ptype != kChunkMapPredicate) return Bad("predicateType is not " + std::string(kChunkMapPredicate));
  auto pred = st.find("predicate");
  if (pred == st.end() || !pred->is_object()) return Bad("predicate is missing");
  ChunkMap map;
  ASSIGN_OR_RETURN(map.repo, Str(*pred, "repo", "predicate"));
  ASSIGN_OR_RETURN(map.commit, Str(*pred, "commit", "predicate"));
  if (map.commit.size() != 40 || map.commit.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Bad("predicate.commit is not a 40-hex commit id");
  }
  auto files = pred->find("files");
  if (files == pred->end() || !files->is_array()) return Bad("predicate.files is missing");
  if (files->size() > kMaxFiles) return Bad("more than 100000 files");
  std::set<std::string> paths;
  size_t total_chunks = 0;
  for (const json& fj : *files) {
    if (!fj.is_object()) return Bad("a file entry is not an object");
    ChunkMapFile f;
    ASSIGN_OR_RETURN(f.path, Str(fj, "path", "file"));
    if (f.path.empty() || !paths.insert(f.path).second) return Bad("empty or duplicate path '" + f.path.substr(0, 200) + "'");
    ASSIGN_OR_RETURN(std::string sha, Str(fj, "sha256", f.path));
    auto digest = Sha256Digest::FromHex(sha);
    if (!digest.ok()) return Bad(f.path + ".sha256 is not 64 hex digits");
    f.sha256 = *digest;
    ASSIGN_OR_RETURN(f.size, U64(fj, "size", f.path));
    auto chunks = fj.find("chunks");
    if (chunks == fj.end() || !chunks->is_array()) return Bad(f.path + ".chunks is missing");
    total_chunks += chunks->size();
    if (total_chunks > kMaxChunks) return Bad("more chunks than the limit");
    uint64_t sum = 0;
    for (const json& cj : *chunks) {
      if (!cj.is_object()) return Bad(f.path + ": a chunk is not an object");
      ASSIGN_OR_RETURN(std::string id, Str(cj, "sha256", f.path + " chunk"));
      auto cid = ChunkId::FromHex(id);
      if (!cid.ok()) return Bad(f.path + ": a chunk id is not 64 hex digits");
      ASSIGN_OR_RETURN(uint64_t size, U64(cj, "size", f.path + " chunk"));
      if (size == 0 || size > (1u << 30)) return Bad(f.path + ": a chunk size is 0 or above 1 GiB");
      sum += size;
      f.chunks.push_back(ChunkMapChunk{*cid, static_cast<uint32_t>(size)});
    }
    if (sum != f.size) {
      return Bad(f.path + ": chunk sizes sum to " + std::to_string(sum) + ", the file has " + std::to_string(f.size));
    }
    map.files.push_back(std::move(f));
  }
  // The subjects must name exactly the files with their digests (what in-toto tools look at).
  auto subjects = st.find("subject");
  if (subjects == st.end() || !subjects->is_array() || subjects->size() != map.files.size()) {
    return Bad("the subjects do not list the files");
  }
  for (size_t i = 0; i < map.files.size(); ++i) {
    const json& s = (*subjects)[i];
    if (!s.is_object() || s.value("name", json()) != map.files[i].path || !s.contains("digest") ||
        !s["digest"].is_object() || s["digest"].value("sha256", json()) != map.files[i].sha256.hex()) {
      return Bad("subject " + std::to_string(i) + " does not match file " + map.files[i].path);
    }
  }
  return map;
}

Result<std::string> SignChunkMap(const ChunkMap& map, const PrivateKey& key) {
  if (map.files.empty()) return InvalidArgumentError("nothing to sign: the chunk map has no files");
  return SignStatement(ChunkMapStatement(map), key);
}

Result<ChunkMap> VerifyChunkMap(std::string_view bundle_json, const PublicKey& key) {
  ASSIGN_OR_RETURN(OpenedStatement opened, OpenStatement(bundle_json, key));
  return ParseChunkMapStatement(opened.payload);
}

Result<TrustedChunkMap> VerifyChunkMapWithTrustStore(std::string_view bundle_json, const TrustStore& trust,
                                                     int64_t now) {
  TrustedChunkMap out;
  std::string ns;
  // The namespace comes from the signed payload, so the key is chosen after the signature holds:
  // first verify with each candidate key, then check that the key may sign for that namespace.
  auto verified = VerifyWithKeys(
      bundle_json, trust, now, [](const PublisherKey&) { return true; },
      [&](const PublicKey& pub) -> Status {
        ASSIGN_OR_RETURN(out.map, VerifyChunkMap(bundle_json, pub));
        return OkStatus();
      },
      "no trusted publisher or node key signed this chunk map");
  if (!verified.ok()) return verified.status();
  out.signer = *verified;
  ns = out.map.repo.substr(0, out.map.repo.find('/'));
  for (const auto& k : trust.keys) {
    if (k.hint != out.signer.key_hint || k.revoked || (k.expires != 0 && now >= k.expires)) continue;
    if (k.node) {
      out.node_key = true;
      return out;
    }
    if (k.ns == ns || k.ns == "*") return out;
  }
  return PermissionDeniedError("key " + out.signer.key_name + " may not sign for namespace '" + ns + "'");
}

}  // namespace hubnode::verify

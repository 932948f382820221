// `hubnode chunkmap sign|verify` and `hubnode node-key`: chunk maps of stored revisions, signed by
// a key or by this node's identity key (docs/chunk-maps.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "hub/client/upstream.h"
#include "hub/peer/chunk_maps.h"
#include "hub/peer/peer_auth.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {
namespace {

int Sign(const GlobalFlags& flags, const std::string& spec, const std::string& key_path, const std::string& out) {
  auto rs = ParseRepoSpec(spec);
  if (!rs.ok()) return Fail(rs.status());
  auto key = key_path.empty() ? LoadOrCreateNodeKey(flags.data_dir) : [&]() -> Result<verify::PrivateKey> {
    ASSIGN_OR_RETURN(std::string pem, ReadFileToString(key_path, 1 << 20));
    return verify::PrivateKey::FromPem(pem);
  }();
  if (!key.ok()) return Fail(key.status());
  auto st = OpenStore(flags);
  if (!st.ok()) return Fail(st.status());
  auto commit = (*st)->Resolve(rs->repo, rs->rev);
  if (!commit.ok()) return Fail(commit.status());
  auto map = ChunkMapOf(**st, rs->repo, *commit);
  if (!map.ok()) return Fail(map.status());
  auto bundle = verify::SignChunkMap(*map, *key);
  if (!bundle.ok()) return Fail(bundle.status());
  if (out.empty() || out == "-") {
    std::fwrite(bundle->data(), 1, bundle->size(), stdout);
  } else if (Status s = WriteFileAtomic(out, *bundle); !s.ok()) {
    return Fail(s);
  }
  size_t chunks = 0;
  for (const auto& f : map->files) chunks += f.chunks.size();
  std::fprintf(stderr, "chunk map of %s@%s: %zu files, %zu chunks, signed by %s%s\n", map->repo.c_str(),
               map->commit.c_str(), map->files.size(), chunks, key->public_key().Hint().c_str(),
               key_path.empty() ? " (this node)" : "");
  return 0;
}

int Verify(const GlobalFlags& flags, const std::string& file, const std::string& pub_path, bool compare) {
  auto bundle = ReadFileToString(file, 256 << 20);
  if (!bundle.ok()) return Fail(bundle.status());
  verify::ChunkMap map;
  std::string signer;
  if (!pub_path.empty()) {
    auto pem = ReadFileToString(pub_path, 1 << 20);
    if (!pem.ok()) return Fail(pem.status());
    auto pub = verify::PublicKey::FromPem(*pem);
    if (!pub.ok()) return Fail(pub.status());
    auto m = verify::VerifyChunkMap(*bundle, *pub);
    if (!m.ok()) return Fail(m.status());
    map = std::move(*m);
    signer = "key " + pub->Hint();
  } else {
    auto trust = TrustFile(flags.data_dir + "/trust.json").Load();
    if (!trust.ok()) return Fail(trust.status());
    auto m = verify::VerifyChunkMapWithTrustStore(*bundle, *trust, static_cast<int64_t>(std::time(nullptr)));
    if (!m.ok()) return Fail(m.status());
    map = std::move(m->map);
    signer = std::string(m->node_key ? "trusted node key " : "publisher key ") + m->signer.key_name + " (" +
             m->signer.key_hint + ")";
  }
  size_t chunks = 0;
  for (const auto& f : map.files) chunks += f.chunks.size();
  std::printf("chunk map of %s@%s: %zu files, %zu chunks\nsigned by %s\n", map.repo.c_str(), map.commit.c_str(),
              map.files.size(), chunks, signer.c_str());
  if (compare) {
    auto st = OpenStore(flags);
    if (!st.ok()) return Fail(st.status());
    if (Status s = CompareWithStore(map, **st); !s.ok()) return Fail(s);
    std::printf("matches the store\n");
  }
  std::printf("verdict: OK\n");
  return 0;
}

}  // namespace

void AddChunkMapCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  auto* cm = app.add_subcommand("chunkmap", "Chunk maps: file SHA-256 -> ordered chunk ids, signed");
  cm->require_subcommand(1);
  {
    struct Args {
      std::string spec, key, out;
    };
    auto a = std::make_shared<Args>();
    auto* sub = cm->add_subcommand("sign", "Write the signed chunk map of a stored revision");
    sub->add_option("repo", a->spec, "REPO[@REV]")->required();
    sub->add_option("--key", a->key, "PEM private key (default: this node's key, DATA/node.key)");
    sub->add_option("--out", a->out, "Output file (default: stdout)");
    out->push_back({sub, [a, &flags] { return Sign(flags, a->spec, a->key, a->out); }});
  }
  {
    struct Args {
      std::string file, key;
      bool compare = false;
    };
    auto a = std::make_shared<Args>();
    auto* sub = cm->add_subcommand("verify", "Verify a chunk map's signature (with --key, or the trust store)");
    sub->add_option("file", a->file, "Chunk map bundle")->required();
    sub->add_option("--key", a->key, "PEM public key (default: the trust store's publisher and node keys)");
    sub->add_flag("--compare", a->compare, "Also compare it with the revision this store holds");
    out->push_back({sub, [a, &flags] { return Verify(flags, a->file, a->key, a->compare); }});
  }
  {
    struct Args {
      std::string from, id, out, token, repo, rev;
      bool sign = false;
    };
    auto a = std::make_shared<Args>();
    auto* chunk = app.add_subcommand("chunk", "Chunks from peers");
    chunk->require_subcommand(1);
    auto* sub = chunk->add_subcommand("get", "Fetch one chunk from a peer node, verified against its id");
    sub->add_option("id", a->id, "Chunk id (64 hex digits)")->required();
    sub->add_option("--from", a->from, "Peer URL (a hubnode serving /api/peer/v1/)")->required();
    sub->add_option("--out", a->out, "Write the raw bytes here (default: stdout)");
    sub->add_option("--token", a->token, "Token for the peer");
    sub->add_option("--repo", a->repo, "The repo whose revision holds the chunk (the peer checks you may read it)");
    sub->add_option("--rev", a->rev, "That revision (default HEAD)");
    sub->add_flag("--sign", a->sign, "Sign the request with this node's key (a peer that trusts it serves any chunk)");
    out->push_back({sub, [a, &flags] {
      auto id = ChunkId::FromHex(a->id);
      if (!id.ok()) return Fail(InvalidArgumentError("a chunk id is 64 hex digits"));
      UpstreamOptions uo;
      uo.url = a->from;
      uo.token = a->token;
      Upstream peer(uo);
      std::vector<std::string> headers;
      if (a->sign) {
        auto key = LoadOrCreateNodeKey(flags.data_dir);
        if (!key.ok()) return Fail(key.status());
        auto h = SignPeerRequest(*key, peer.url(), "GET", Upstream::ChunkTarget(*id, a->repo, a->rev), "",
                                 static_cast<int64_t>(std::time(nullptr)));
        if (!h.ok()) return Fail(h.status());
        headers = std::move(*h);
      }
      auto raw = peer.GetChunk(*id, a->repo, a->rev, headers);
      if (!raw.ok()) return Fail(raw.status());
      if (a->out.empty()) {
        std::fwrite(raw->data(), 1, raw->size(), stdout);
      } else if (Status s = WriteFileAtomic(a->out, *raw); !s.ok()) {
        return Fail(s);
      }
      return 0;
    }});
  }
  {
    auto* sub = app.add_subcommand("node-key", "Print this node's public key (created on first use)");
    out->push_back({sub, [&flags] {
      auto key = LoadOrCreateNodeKey(flags.data_dir);
      if (!key.ok()) return Fail(key.status());
      std::string pem = key->public_key().pem();
      if (pem.empty() || pem.back() != '\n') pem += '\n';
      std::fputs(pem.c_str(), stdout);
      return 0;
    }});
  }
}

}  // namespace hubnode::hub

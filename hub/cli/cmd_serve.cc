// serve, token and repo commands.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "base/log.h"
#include "hub/cli/commands.h"
#include "hub/cli/runtime_flags.h"
#include "hub/client/upstream.h"
#include "hub/http/auth.h"
#include "hub/mirror/mirror.h"
#include "hub/node/node.h"
#include "hub/peer/chunk_maps.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {
namespace {

Result<std::pair<std::string, int>> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return InvalidArgumentError("--listen must be HOST:PORT");
  std::string host = listen.substr(0, colon);
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0 || port > 65535) return InvalidArgumentError("--listen port must be 0..65535");
  return std::make_pair(host, port);
}

struct ServeArgs {
  std::string listen = "127.0.0.1:8080", public_url, upstream, upstream_token;
  unsigned threads = 64;
  int header_timeout = 10, idle_timeout = 30;
  size_t max_connections = 4096, max_connections_per_ip = 256;
  bool offline = false;
  int64_t mirror_ttl_s = 60;
  std::vector<std::string> allow, deny;
  int64_t upstream_rate = 0;
  bool no_inference = false;
  RuntimeFlags runtime;
  std::vector<std::string> peers;
  uint64_t multipart_threshold = uint64_t{256} << 20;
  uint64_t multipart_chunk = uint64_t{64} << 20;
  int64_t upload_url_lifetime = 3600;
  uint64_t raw_cache = uint64_t{4} << 30;
  std::string writer;  // --writer: a reader node's writer, where write requests are redirected
};

std::string UpstreamToken(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("HUBNODE_UPSTREAM_TOKEN");
  return env ? env : "";
}

// An upstream and a mirror of it set up as every mirror of this node is: the policy gate and,
// with peers, chunk fetching from them. Members are declared in dependency order (the mirror's
// fill threads use the matcher and the upstream until the mirror is destroyed).
struct MirrorRig {
  MirrorRig(store::Store* st, const GlobalFlags& flags, const UpstreamOptions& uo, const std::vector<std::string>& peers)
      : matcher(verify::LicenseMatcher::FromDirectory("/usr/share/common-licenses")),
        upstream(uo),
        mirror(st, &upstream, flags.data_dir + "/staging") {
    mirror.SetGate(MakeGate(st, flags.data_dir + "/trust.json", &matcher));
    if (!peers.empty()) {
      PeerFetchOptions pf;
      pf.peers = peers;
      pf.token = uo.token;
      if (auto key = LoadOrCreateNodeKey(flags.data_dir); key.ok()) pf.node_key = std::move(*key);
      mirror.SetPeers(pf, flags.data_dir + "/trust.json");
    }
  }
  verify::LicenseMatcher matcher;
  Upstream upstream;
  Mirror mirror;
};

int Serve(const GlobalFlags& flags, const ServeArgs& a) {
  auto hp = ParseListen(a.listen);
  if (!hp.ok()) return Fail(hp.status());
  if (flags.chunks_reader && !flags.chunks.empty() && !a.upstream.empty()) {
    // A reader records nothing of its own, mirrored commits included: the writer mirrors.
    return Fail(InvalidArgumentError("--upstream on a reader node (--chunks-reader): mirror on the writer, whose "
                                     "commits this node follows"));
  }
  // Block the shutdown signals in every thread (RocksDB's and the server's inherit this mask), and
  // take them in one thread with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto st = OpenStore(flags);
  if (!st.ok()) return Fail(st.status());
  TokenStore tokens(flags.data_dir + "/tokens.json");
  NodeOptions o;
  o.host = hp->first;
  o.port = hp->second;
  o.threads = a.threads;
  o.header_timeout_s = a.header_timeout;
  o.idle_timeout_s = a.idle_timeout;
  o.max_connections = a.max_connections;
  o.max_connections_per_ip = a.max_connections_per_ip;
  o.public_url = a.public_url;
  o.offline = a.offline;
  o.mirror_ttl_s = a.mirror_ttl_s;
  o.mirror_policy = MirrorPolicy{a.allow, a.deny};
  o.trust_path = flags.data_dir + "/trust.json";
  o.peers = a.peers;
  o.data_dir = flags.data_dir;
  o.multipart_threshold = a.multipart_threshold;
  o.multipart_chunk = a.multipart_chunk;
  o.upload_url_lifetime_s = a.upload_url_lifetime;
  o.raw_cache_bytes = a.raw_cache;
  o.writer_url = a.writer;
  o.reader_node = flags.chunks_reader && !flags.chunks.empty();
  auto node_key = LoadOrCreateNodeKey(flags.data_dir);
  if (!node_key.ok()) return Fail(node_key.status());
  o.node_key = &*node_key;
  // Declared before the server, which uses its mirror until it is destroyed.
  std::unique_ptr<MirrorRig> rig;
  if (!a.upstream.empty()) {
    UpstreamOptions uo;
    uo.url = a.upstream;
    uo.token = UpstreamToken(a.upstream_token);
    uo.max_rate = a.upstream_rate;
    rig = std::make_unique<MirrorRig>(st->get(), flags, uo, a.peers);
  }
  // A partly held model's missing chunks come from the peers, verified, as they are read.
  if (!a.peers.empty()) {
    PeerFetchOptions pf;
    pf.peers = a.peers;
    pf.token = UpstreamToken(a.upstream_token);
    pf.node_key = *node_key;  // these requests name no revision: the peers must trust this node
    (*st)->SetChunkSource(PeerChunkSource(std::make_shared<ChunkFetcher>(pf)));
  }
  // Raw copies of hot files and weight shards (DATA/rawcache), shared by downloads and the model
  // host (the expert tier); declared before both, which use it until they are destroyed.
  std::unique_ptr<RawCache> raw_cache;
  if (a.raw_cache > 0) {
    raw_cache = std::make_unique<RawCache>(
        RawCacheOptions{.dir = flags.data_dir + "/rawcache", .capacity = a.raw_cache, .min_size = o.raw_cache_min},
        st->get());
    o.raw_cache = raw_cache.get();
  }
  std::unique_ptr<ModelHost> models;
  if (!a.no_inference) {
    auto mo = ModelHostOptionsFrom(a.runtime);
    if (!mo.ok()) return Fail(mo.status());
    mo->trust_path = o.trust_path;
    mo->raw_cache = raw_cache.get();
    models = std::make_unique<ModelHost>(st->get(), std::move(*mo));
  }
  auto server = Node::Create(o, st->get(), &tokens, rig ? &rig->mirror : nullptr, models.get());
  if (!server.ok()) return Fail(server.status());
  if (Status s = (*server)->Bind(); !s.ok()) return Fail(s);
  std::string url = "http://" + o.host + ":" + std::to_string((*server)->port());
  std::printf("hubnode serving %s (data %s%s%s)\n", url.c_str(), flags.data_dir.c_str(),
              a.upstream.empty() ? "" : ", upstream ", a.offline ? ", offline" : a.upstream.c_str());
  std::fflush(stdout);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) {
      LOG(Info) << "signal " << sig << ": shutting down, letting in-flight responses finish";
    }
    (*server)->Stop();
  });
  Status run = (*server)->Run();
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  if (!run.ok()) return Fail(run);
  LOG(Info) << "stopped";
  return 0;
}

}  // namespace

void AddServeCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  {
    auto* sub = app.add_subcommand("serve", "Serve the store over the Hugging Face compatible HTTP API");
    auto a = std::make_shared<ServeArgs>();
    sub->add_option("--listen", a->listen, "HOST:PORT (default 127.0.0.1:8080; port 0 = any free port)");
    sub->add_option("--threads", a->threads, "Worker threads: requests served at once (default 64)");
    sub->add_option("--header-timeout", a->header_timeout, "Seconds a request head may take to arrive (default 10)")
        ->check(CLI::Range(1, 3600));
    sub->add_option("--idle-timeout", a->idle_timeout,
                    "Seconds a kept-alive connection may wait for its next request (default 30)")
        ->check(CLI::Range(1, 3600));
    sub->add_option("--max-connections", a->max_connections, "Connections open at once (default 4096)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    sub->add_option("--max-connections-per-ip", a->max_connections_per_ip,
                    "Connections open at once from one client address (default 256)")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    sub->add_option("--public-url", a->public_url, "Base URL for absolute links (default: from Host)");
    sub->add_option("--upstream", a->upstream, "Pull repos this node lacks from this HF-compatible endpoint");
    sub->add_option("--upstream-token", a->upstream_token, "Token for the upstream (or $HUBNODE_UPSTREAM_TOKEN)");
    sub->add_option("--upstream-rate-limit", a->upstream_rate, "Cap each upstream transfer, bytes/s");
    sub->add_option("--mirror-allow", a->allow, "Only pull through repos matching this glob (repeatable)");
    sub->add_option("--mirror-deny", a->deny, "Never pull through repos matching this glob (repeatable)");
    sub->add_flag("--offline", a->offline, "Serve only what is held; never contact the upstream");
    sub->add_option("--mirror-ttl", a->mirror_ttl_s,
                    "Seconds a mirrored branch is served before it is resolved upstream again (default 60; -1 never)");
    sub->add_flag("--no-inference", a->no_inference, "Do not serve the OpenAI-compatible API (/v1/)");
    sub->add_option("--multipart-threshold", a->multipart_threshold,
                    "LFS uploads from this size up are offered multipart (bytes, default 256 MiB)")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 50));
    sub->add_option("--upload-url-lifetime", a->upload_url_lifetime,
                    "Seconds an LFS upload URL stays valid; an unfinished multipart upload is dropped with it "
                    "(default 3600)")
        ->check(CLI::Range(int64_t{1}, int64_t{7} * 24 * 3600));
    sub->add_option("--multipart-chunk", a->multipart_chunk, "Part size of multipart LFS uploads (bytes, default 64 MiB)")
        ->check(CLI::Range(uint64_t{1} << 10, uint64_t{5} << 30));
    sub->add_option("--raw-cache-size", a->raw_cache,
                    "Disk for raw copies of hot files served without decompression, and of the weight shards of "
                    "models run with an expert budget below their experts (bytes, default 4 GiB; 0 = off)");
    sub->add_option("--peer", a->peers,
                    "A peer hubnode: with --upstream, chunks are fetched from it too; listed in this node's peer "
                    "catalog (repeatable)");
    sub->add_option("--writer", a->writer,
                    "A reader node of --chunks: answer write requests with a redirect (307) to this writer node's "
                    "URL instead of writing here");
    AddRuntimeFlags(sub, &a->runtime);
    out->push_back({sub, [a, &flags] { return Serve(flags, *a); }});
  }
  {
    auto* sub = app.add_subcommand("pull", "Mirror REPO[@REV] from an upstream into the store");
    struct PullArgs {
      std::string spec, from, token;
      std::vector<std::string> include, exclude;
      unsigned jobs = 4;
      int64_t rate = 0;
      std::vector<std::string> peers;
      bool peer_stats = false;
      std::string experts;
    };
    auto a = std::make_shared<PullArgs>();
    sub->add_option("repo", a->spec, "REPO[@REV]")->required();
    sub->add_option("--from", a->from, "Upstream URL (https://huggingface.co, a mirror, a hubnode)")->required();
    sub->add_option("--token", a->token, "Upstream token (or $HUBNODE_UPSTREAM_TOKEN)");
    sub->add_option("--include", a->include, "Only files matching this glob (repeatable)");
    sub->add_option("--exclude", a->exclude, "Skip files matching this glob (repeatable)");
    sub->add_option("--jobs", a->jobs, "Files downloaded in parallel (default 4)");
    sub->add_option("--rate-limit", a->rate, "Cap each transfer, bytes/s");
    sub->add_option("--peer", a->peers, "Fetch chunks from this hubnode too (repeatable; with a trusted chunk map)");
    sub->add_flag("--peer-stats", a->peer_stats, "Print what each peer sent");
    sub->add_option("--experts", a->experts,
                    "Partial pull from hubnode peers: none, all, or LAYER:EXPERT,... (metadata and non-expert "
                    "weights always; the rest is fetched from the peers when read)");
    out->push_back({sub, [a, &flags]() -> int {
      auto rs = ParseRepoSpec(a->spec);
      if (!rs.ok()) return Fail(rs.status());
      std::optional<ExpertSelection> sel;
      if (!a->experts.empty()) {
        auto parsed = ExpertSelection::Parse(a->experts);
        if (!parsed.ok()) return Fail(parsed.status());
        sel = *parsed;
        if (a->peers.empty()) a->peers.push_back(a->from);  // the origin is a hubnode peer too
      }
      auto st = OpenStore(flags, /*replicate=*/true);
      if (!st.ok()) return Fail(st.status());
      UpstreamOptions uo;
      uo.url = a->from;
      uo.token = UpstreamToken(a->token);
      uo.max_rate = a->rate;
      MirrorRig rig(st->get(), flags, uo, a->peers);
      Mirror& mirror = rig.mirror;
      if (sel) {
        auto r = mirror.PullPartial(rs->repo, rs->rev == "HEAD" ? "main" : rs->rev, *sel);
        if (!r.ok()) return Fail(r.status());
        std::printf("pulled %s@%s (upstream %s) in part: %llu of %llu chunks held (%s of %s); fetched %llu chunks (%s)\n",
                    rs->repo.str().c_str(), r->commit.hex().c_str(), r->upstream_sha.c_str(),
                    (unsigned long long)r->chunks_held, (unsigned long long)r->chunks, HumanBytes(r->bytes_held).c_str(),
                    HumanBytes(r->bytes).c_str(), (unsigned long long)r->fetched_chunks, HumanBytes(r->fetched_bytes).c_str());
        if (a->peer_stats) {
          for (const PeerStats& p : mirror.PeerStatistics()) {
            std::printf("peer %s: %llu chunks, %llu bytes\n", p.url.c_str(), (unsigned long long)p.chunks,
                        (unsigned long long)p.bytes);
          }
        }
        return 0;
      }
      PullOptions po;
      po.include = a->include;
      po.exclude = a->exclude;
      po.jobs = a->jobs;
      ProgressBar bar(!flags.quiet);
      po.progress = [&](uint64_t done, uint64_t total, const std::string& file) { bar.Update(done, total, file); };
      auto r = mirror.Pull(rs->repo, rs->rev == "HEAD" ? "main" : rs->rev, po);
      bar.Finish();
      if (a->peer_stats) {
        std::printf("download phase: %.2f s\n", mirror.LastDownloadSeconds());
        for (const PeerStats& p : mirror.PeerStatistics()) {
          std::printf("peer %s: %llu chunks, %llu bytes, %llu failures, %llu bad chunks%s\n", p.url.c_str(),
                      (unsigned long long)p.chunks, (unsigned long long)p.bytes, (unsigned long long)p.failures,
                      (unsigned long long)p.bad_chunks, p.demoted ? ", demoted" : "");
        }
      }
      if (!r.ok()) return Fail(r.status());
      std::printf("%s %s@%s (upstream %s)\n", r->already_held ? "already held" : "pulled", rs->repo.str().c_str(),
                  r->commit.hex().c_str(), r->upstream_sha.c_str());
      return 0;
    }});
  }
  {
    auto* sub = app.add_subcommand("follow", "Replicate new commits of REPO[@BRANCH] from an upstream or peer as they appear");
    struct FollowArgs {
      std::string spec, from, token, experts;
      std::vector<std::string> peers;
      double interval = 30;
      int rounds = 0;
    };
    auto a = std::make_shared<FollowArgs>();
    sub->add_option("repo", a->spec, "REPO[@BRANCH]")->required();
    sub->add_option("--from", a->from, "Origin URL (a hubnode or any HF-compatible endpoint)")->required();
    sub->add_option("--token", a->token, "Origin token (or $HUBNODE_UPSTREAM_TOKEN)");
    sub->add_option("--peer", a->peers, "Fetch chunks from this hubnode too (repeatable)");
    sub->add_option("--interval", a->interval, "Seconds between checks (default 30)")->check(CLI::Range(0.1, 86400.0));
    sub->add_option("--rounds", a->rounds, "Stop after N checks (default 0: run until killed)");
    sub->add_option("--experts", a->experts,
                    "Follow in part, as pull --experts does (a reader node of --chunks: 'all' records every commit "
                    "and fetches only chunks the bucket lacks)");
    out->push_back({sub, [a, &flags]() -> int {
      auto rs = ParseRepoSpec(a->spec);
      if (!rs.ok()) return Fail(rs.status());
      std::optional<ExpertSelection> sel;
      if (!a->experts.empty()) {
        auto parsed = ExpertSelection::Parse(a->experts);
        if (!parsed.ok()) return Fail(parsed.status());
        sel = *parsed;
        if (a->peers.empty()) a->peers.push_back(a->from);  // the origin is a hubnode peer too
      }
      auto st = OpenStore(flags, /*replicate=*/true);
      if (!st.ok()) return Fail(st.status());
      UpstreamOptions uo;
      uo.url = a->from;
      uo.token = UpstreamToken(a->token);
      MirrorRig rig(st->get(), flags, uo, a->peers);
      Mirror& mirror = rig.mirror;
      const std::string rev = rs->rev == "HEAD" ? "main" : rs->rev;
      std::string last;
      // Each round is a pull: one that is already held only checks the origin; a new commit is
      // fetched, gated and committed like any pull. A failed round (origin down) is retried.
      for (int round = 1; a->rounds == 0 || round <= a->rounds; ++round) {
        Result<PullResult> r = InternalError("unset");
        if (sel) {
          // A partial pull of a revision already recorded records nothing new.
          auto p = mirror.PullPartial(rs->repo, rev, *sel);
          if (p.ok()) {
            r = PullResult{p->commit, p->upstream_sha, p->files, p->bytes, p->upstream_sha == last};
          } else {
            r = p.status();
          }
        } else {
          r = mirror.Pull(rs->repo, rev, PullOptions{});
        }
        if (!r.ok()) {
          LOG(Warning) << "follow " << rs->repo.str() << "@" << rev << ": " << r.status().ToString();
        } else if (r->upstream_sha != last) {
          std::printf("%s %s@%s = %s (origin %s)\n", last.empty() && r->already_held ? "at" : "updated",
                      rs->repo.str().c_str(), rev.c_str(), r->commit.hex().c_str(), r->upstream_sha.c_str());
          std::fflush(stdout);
          last = r->upstream_sha;
        }
        if (a->rounds != 0 && round == a->rounds) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int64_t>(a->interval * 1000)));
      }
      return 0;
    }});
  }
  {
    auto* token = app.add_subcommand("token", "Manage access tokens");
    token->require_subcommand(1);
    auto* create = token->add_subcommand("create", "Create a token and print it once");
    struct Args {
      std::string name, scope = "read", ns;
    };
    auto a = std::make_shared<Args>();
    create->add_option("--name", a->name, "Token name")->required();
    create->add_option("--scope", a->scope, "read or write")->check(CLI::IsMember({"read", "write"}));
    create->add_option("--namespace", a->ns, "Limit the token to one namespace");
    out->push_back({create, [a, &flags] {
      TokenStore t(flags.data_dir + "/tokens.json");
      auto secret = t.Create(a->name, a->scope == "write" ? Scope::kWrite : Scope::kRead, a->ns);
      if (!secret.ok()) return Fail(secret.status());
      std::printf("%s\n", secret->c_str());
      return 0;
    }});
    auto* list = token->add_subcommand("list", "List tokens (names and scopes, never secrets)");
    out->push_back({list, [&flags] {
      TokenStore t(flags.data_dir + "/tokens.json");
      auto l = t.List();
      if (!l.ok()) return Fail(l.status());
      for (const auto& i : *l) {
        std::printf("%-24s %-5s %s\n", i.name.c_str(), std::string(ScopeName(i.scope)).c_str(),
                    i.ns.empty() ? "(all namespaces)" : i.ns.c_str());
      }
      return 0;
    }});
    auto* revoke = token->add_subcommand("revoke", "Revoke a token by name");
    auto name = std::make_shared<std::string>();
    revoke->add_option("name", *name, "Token name")->required();
    out->push_back({revoke, [name, &flags] {
      TokenStore t(flags.data_dir + "/tokens.json");
      Status s = t.Revoke(*name);
      return s.ok() ? 0 : Fail(s);
    }});
  }
  {
    auto* repo = app.add_subcommand("repo", "Repository settings");
    repo->require_subcommand(1);
    auto* vis = repo->add_subcommand("visibility", "Set a repo public, private or gated");
    auto spec = std::make_shared<std::string>();
    auto v = std::make_shared<std::string>();
    vis->add_option("repo", *spec, "REPO")->required();
    vis->add_option("visibility", *v, "public, private or gated")
        ->required()
        ->check(CLI::IsMember({"public", "private", "gated"}));
    out->push_back({vis, [spec, v, &flags] {
      auto id = store::RepoId::Parse(*spec);
      if (!id.ok()) return Fail(id.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      store::Visibility vis = *v == "private" ? store::Visibility::kPrivate
                              : *v == "gated" ? store::Visibility::kGated
                                              : store::Visibility::kPublic;
      Status s = (*st)->SetVisibility(*id, vis);
      return s.ok() ? 0 : Fail(s);
    }});
  }
}

}  // namespace hubnode::hub

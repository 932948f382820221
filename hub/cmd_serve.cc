// serve, token and repo commands.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "base/log.h"
#include "hub/auth.h"
#include "hub/commands.h"
#include "hub/server.h"

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

int Serve(const GlobalFlags& flags, const std::string& listen, unsigned threads, const std::string& public_url) {
  auto hp = ParseListen(listen);
  if (!hp.ok()) return Fail(hp.status());
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
  ServerOptions o;
  o.host = hp->first;
  o.port = hp->second;
  o.threads = threads;
  o.public_url = public_url;
  auto server = HubServer::Create(o, st->get(), &tokens);
  if (!server.ok()) return Fail(server.status());
  if (Status s = (*server)->Bind(); !s.ok()) return Fail(s);
  std::string url = "http://" + o.host + ":" + std::to_string((*server)->port());
  std::printf("hubnode serving %s (data %s)\n", url.c_str(), flags.data_dir.c_str());
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
    struct Args {
      std::string listen = "127.0.0.1:8080", public_url;
      unsigned threads = 32;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("--listen", a->listen, "HOST:PORT (default 127.0.0.1:8080; port 0 = any free port)");
    sub->add_option("--threads", a->threads, "Worker threads (default 32)");
    sub->add_option("--public-url", a->public_url, "Base URL for absolute links (default: from Host)");
    out->push_back({sub, [a, &flags] { return Serve(flags, a->listen, a->threads, a->public_url); }});
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

// trust (publisher keys, signature requirements), approve and refuse (release or drop a held commit).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>

#include "base/file.h"
#include "base/log.h"
#include "hub/cli/commands.h"
#include "hub/trust/trust_gate.h"
#include "hub/client/push.h"
#include "hub/write/write_api.h"

namespace hubnode::hub {

void AddTrustCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  auto* trust = app.add_subcommand("trust", "The trust store: publisher keys per namespace, signature requirements");
  trust->require_subcommand(1);
  {
    auto* add = trust->add_subcommand("add-key", "Trust a publisher's public key for a namespace ('*' = any)");
    struct Args {
      std::string ns, key, name;
      int64_t expires = 0;
    };
    auto a = std::make_shared<Args>();
    add->add_option("namespace", a->ns, "Namespace, or '*'")->required();
    add->add_option("--key", a->key, "PEM public key")->required();
    add->add_option("--name", a->name, "A label (default: the start of the key's hint)");
    add->add_option("--expires", a->expires, "Expiry, unix seconds (default never)");
    out->push_back({add, [a, &flags]() -> int {
      if (a->ns != "*" && !store::RepoId::Parse(a->ns).ok()) return Fail(InvalidArgumentError("invalid namespace"));
      auto pem = ReadFileToString(a->key, 1 << 20);
      if (!pem.ok()) return Fail(pem.status());
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      Status s = t->AddKey(a->ns, a->name, *pem, static_cast<int64_t>(std::time(nullptr)), a->expires);
      if (!s.ok()) return Fail(s);
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      std::printf("trusted %s for %s\n", t->keys.back().hint.c_str(), a->ns.c_str());
      return 0;
    }});
  }
  {
    auto* add = trust->add_subcommand("add-node-key", "Trust a peer node's key to sign chunk maps (any namespace)");
    struct Args {
      std::string key, name;
      int64_t expires = 0;
    };
    auto a = std::make_shared<Args>();
    add->add_option("--key", a->key, "PEM public key (the peer's DATA/node.key.pub, or 'hubnode node-key')")->required();
    add->add_option("--name", a->name, "A label (default: the start of the key's hint)");
    add->add_option("--expires", a->expires, "Expiry, unix seconds (default never)");
    out->push_back({add, [a, &flags]() -> int {
      auto pem = ReadFileToString(a->key, 1 << 20);
      if (!pem.ok()) return Fail(pem.status());
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      Status s = t->AddNodeKey(a->name, *pem, static_cast<int64_t>(std::time(nullptr)), a->expires);
      if (!s.ok()) return Fail(s);
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      std::printf("trusted node key %s\n", t->keys.back().hint.c_str());
      return 0;
    }});
  }
  {
    auto* add = trust->add_subcommand("add-ca", "Trust a CA root certificate for a namespace's certificate-mode signatures");
    auto ns = std::make_shared<std::string>();
    auto cert = std::make_shared<std::string>();
    auto name = std::make_shared<std::string>();
    add->add_option("namespace", *ns, "Namespace, or '*'")->required();
    add->add_option("--cert", *cert, "PEM root certificate")->required();
    add->add_option("--name", *name, "A label");
    out->push_back({add, [ns, cert, name, &flags]() -> int {
      auto pem = ReadFileToString(*cert, 1 << 20);
      if (!pem.ok()) return Fail(pem.status());
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      if (Status s = t->AddCaRoot(*ns, name->empty() ? *cert : *name, *pem); !s.ok()) return Fail(s);
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      return 0;
    }});
  }
  {
    auto* pol = trust->add_subcommand("policy", "Set the license policy for a class or license id (node-wide or per namespace)");
    struct Args {
      std::string ns, cls, id, verdict, exception;
    };
    auto a = std::make_shared<Args>();
    pol->add_option("--namespace", a->ns, "Only for this namespace (default: node-wide)");
    pol->add_option("--class", a->cls, "permissive, weak-copyleft, strong-copyleft, use-restricted, non-commercial, "
                                       "no-derivatives or unknown");
    pol->add_option("--id", a->id, "A license id (HF or SPDX), e.g. llama3.1 or GPL-3.0-only");
    pol->add_option("--verdict", a->verdict, "allow, review or deny")->check(CLI::IsMember({"allow", "review", "deny"}));
    pol->add_option("--allow-exception", a->exception, "An SPDX exception (WITH …) that keeps the license's verdict");
    out->push_back({pol, [a, &flags]() -> int {
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      verify::PolicyOverrides& o = a->ns.empty() ? t->policy : t->namespace_policy[a->ns];
      if (!a->cls.empty() || !a->id.empty()) {
        if (a->verdict.empty()) return Fail(InvalidArgumentError("--verdict is required with --class or --id"));
        auto v = verify::ParseVerdict(a->verdict);
        if (!a->cls.empty()) {
          auto c = verify::ParseLicenseClass(a->cls);
          if (!c.ok()) return Fail(c.status());
          o.classes[*c] = *v;
        }
        if (!a->id.empty()) o.ids[verify::ClassifyLicenseId(a->id).id] = *v;
      } else if (a->exception.empty()) {
        return Fail(InvalidArgumentError("give --class or --id with --verdict, or --allow-exception"));
      }
      if (!a->exception.empty()) o.exceptions.push_back(a->exception);
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      return 0;
    }});
  }
  {
    auto* list = trust->add_subcommand("list", "List trusted keys and signature requirements");
    out->push_back({list, [&flags]() -> int {
      auto t = TrustFile(flags.data_dir + "/trust.json").Load();
      if (!t.ok()) return Fail(t.status());
      int64_t now = static_cast<int64_t>(std::time(nullptr));
      for (const auto& k : t->keys) {
        const char* state = k.revoked ? "revoked" : (k.expires && now >= k.expires) ? "expired" : "active";
        std::printf("%-16s %-20s %-8s %s\n", k.node ? "(node key)" : k.ns.c_str(), k.name.c_str(), state, k.hint.c_str());
      }
      for (const auto& c : t->ca_roots) std::printf("%-16s %-20s CA root\n", c.ns.c_str(), c.name.c_str());
      for (const auto& ns : t->signature_required) std::printf("signature required: %s\n", ns.c_str());
      auto show = [](const std::string& scope, const verify::PolicyOverrides& o) {
        for (const auto& [c, v] : o.classes) {
          std::printf("policy %s: class %s -> %s\n", scope.c_str(), std::string(verify::LicenseClassName(c)).c_str(),
                      std::string(verify::VerdictName(v)).c_str());
        }
        for (const auto& [id, v] : o.ids) {
          std::printf("policy %s: %s -> %s\n", scope.c_str(), id.c_str(), std::string(verify::VerdictName(v)).c_str());
        }
        for (const auto& e : o.exceptions) std::printf("policy %s: exception %s allowed\n", scope.c_str(), e.c_str());
      };
      show("(node)", t->policy);
      for (const auto& [ns, o] : t->namespace_policy) show(ns, o);
      return 0;
    }});
  }
  {
    auto* revoke = trust->add_subcommand("revoke", "Revoke a trusted key by name or hint");
    auto who = std::make_shared<std::string>();
    revoke->add_option("key", *who, "Name or hint")->required();
    out->push_back({revoke, [who, &flags]() -> int {
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      if (Status s = t->Revoke(*who); !s.ok()) return Fail(s);
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      return 0;
    }});
  }
  {
    auto* req = trust->add_subcommand("require-signature", "Require a trusted signature for a namespace ('*' = all)");
    auto ns = std::make_shared<std::string>();
    auto off = std::make_shared<bool>(false);
    req->add_option("namespace", *ns, "Namespace, or '*'")->required();
    req->add_flag("--off", *off, "Stop requiring it");
    out->push_back({req, [ns, off, &flags]() -> int {
      TrustFile f(flags.data_dir + "/trust.json");
      auto t = f.Load();
      if (!t.ok()) return Fail(t.status());
      if (*off) {
        t->signature_required.erase(*ns);
      } else {
        t->signature_required.insert(*ns);
      }
      if (Status w = f.Save(*t); !w.ok()) return Fail(w);
      return 0;
    }});
  }
  {
    auto* approve = app.add_subcommand("approve", "Release what is staged for review on a branch, for every reader");
    auto spec = std::make_shared<std::string>();
    auto node = std::make_shared<std::string>();
    auto token = std::make_shared<std::string>();
    approve->add_option("target", *spec, "REPO@BRANCH, REPO@refs/held/BRANCH or REPO@COMMIT")->required();
    approve->add_option("--node", *node, "Ask a running node (its URL) instead of opening the store");
    approve->add_option("--token", *token, "With --node: a node-wide write token (default $HF_TOKEN)");
    out->push_back({approve, [spec, node, token, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      if (!node->empty()) {
        std::string t = !token->empty() ? *token : std::getenv("HF_TOKEN") ? std::getenv("HF_TOKEN") : "";
        std::string branch = rs->rev.starts_with("refs/held/") ? rs->rev.substr(10) : rs->rev;
        auto j = CallNode("POST", *node + "/api/models/" + rs->repo.str() + "/approve/" + branch, t, json::object(),
                          "approve");
        if (!j.ok()) return Fail(j.status());
        std::printf("approved %s@%s: every reader sees it now\n", rs->repo.str().c_str(),
                    j->value("commitOid", std::string("?")).c_str());
        return 0;
      }
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto released = ReleaseStaged(**st, rs->repo, rs->rev);
      if (!released.ok()) return Fail(released.status());
      std::printf("approved %s@%s: every reader sees it now\n", rs->repo.str().c_str(), released->hex().c_str());
      return 0;
    }});
  }
  {
    auto* refuse = app.add_subcommand("refuse", "Drop what is staged for review on a branch (the branch stays as it is)");
    auto spec = std::make_shared<std::string>();
    auto node = std::make_shared<std::string>();
    auto token = std::make_shared<std::string>();
    refuse->add_option("target", *spec, "REPO@BRANCH, REPO@refs/held/BRANCH or REPO@COMMIT")->required();
    refuse->add_option("--node", *node, "Ask a running node (its URL) instead of opening the store");
    refuse->add_option("--token", *token, "With --node: a node-wide write token (default $HF_TOKEN)");
    out->push_back({refuse, [spec, node, token, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      if (!node->empty()) {
        std::string t = !token->empty() ? *token : std::getenv("HF_TOKEN") ? std::getenv("HF_TOKEN") : "";
        std::string branch = rs->rev.starts_with("refs/held/") ? rs->rev.substr(10) : rs->rev;
        auto j = CallNode("POST", *node + "/api/models/" + rs->repo.str() + "/refuse/" + branch, t, json::object(),
                          "refuse");
        if (!j.ok()) return Fail(j.status());
        std::printf("refused %s@%s: no reader will see it; gc reclaims its objects\n", rs->repo.str().c_str(),
                    j->value("commitOid", std::string("?")).c_str());
        return 0;
      }
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto refused = RefuseStaged(**st, rs->repo, rs->rev);
      if (!refused.ok()) return Fail(refused.status());
      LOG(Info) << "refused " << refused->hex() << " staged on " << rs->repo.str() << "@" << rs->rev
                << " (refused by the operator, hubnode refuse)";
      std::printf("refused %s@%s: no reader will see it; gc reclaims its objects\n", rs->repo.str().c_str(),
                  refused->hex().c_str());
      return 0;
    }});
  }
}

}  // namespace hubnode::hub

// push (a directory to a node, over the same HTTP API the Hugging Face clients use) and lineage.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/hash.h"
#include "hub/cli/commands.h"
#include "hub/client/push.h"
#include "hub/trust/lineage.h"
#include "hub/trust/trust_gate.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {
namespace {

using json = nlohmann::json;

struct PushArgs {
  PushOptions options;
  bool as_json = false;
};

int RunPush(const PushArgs& a, bool quiet) {
  ProgressBar bar(!quiet);
  PushProgress progress;
  progress.update = [&](uint64_t done, uint64_t total, const std::string& what) { bar.Update(done, total, what); };
  progress.finish = [&] { bar.Finish(); };
  auto r = Push(a.options, progress);
  if (!r.ok()) return Fail(r.status());
  if (r->up_to_date) {
    if (a.as_json) {
      std::printf("%s\n", json{{"commitOid", r->commit_oid}, {"files", r->files}, {"changed", 0}}.dump().c_str());
    } else {
      std::printf("%s is up to date at %s (%zu files)\n", r->repo.c_str(),
                  r->commit_oid.empty() ? "-" : r->commit_oid.c_str(), r->files);
    }
    return 0;
  }
  if (a.as_json) {
    std::printf("%s\n", json{{"commitOid", r->commit_oid}, {"files", r->files}, {"changed", r->changed},
                             {"uploaded", r->uploaded}, {"bytes", r->bytes},
                             {"held", r->held_reason.empty() ? json(nullptr) : json{{"reason", r->held_reason}, {"release", r->held_release}}}}
                                .dump()
                                .c_str());
    return 0;
  }
  std::printf("pushed %zu of %zu files to %s: commit %s\n  %s uploaded, %s new in the store, %s already stored\n",
              r->changed, r->files, r->repo.c_str(), r->commit_oid.empty() ? "?" : r->commit_oid.c_str(),
              HumanBytes(r->uploaded).c_str(), HumanBytes(r->bytes.value("new", uint64_t{0})).c_str(),
              HumanBytes(r->bytes.value("held", uint64_t{0})).c_str());
  if (!r->held_reason.empty()) {
    std::printf("  staged, not released: %s\n  only the repo's writers see it until released%s%s\n", r->held_reason.c_str(),
                r->held_release.empty() ? "" : ": ", r->held_release.c_str());
  }
  return 0;
}

struct PrArgs {
  std::string action, repo, node, token, comment, status = "open";
  int num = 0;
  bool diff = false, as_json = false;
};

std::string EnvOr(const std::string& given, const char* var) {
  if (!given.empty()) return given;
  const char* v = std::getenv(var);
  return v ? v : "";
}

// `hubnode pr list|show|merge|close REPO [N]`: the discussions API of a running node.
int RunPr(const PrArgs& a) {
  const std::string node = EnvOr(a.node, "HF_ENDPOINT");
  if (node.empty()) return Fail(InvalidArgumentError("name the node with --node URL (or $HF_ENDPOINT)"));
  auto id = store::RepoId::Parse(a.repo);
  if (!id.ok()) return Fail(id.status());
  const std::string token = EnvOr(a.token, "HF_TOKEN");
  const std::string api = node + "/api/models/" + id->str() + "/discussions";
  if (a.action == "list") {
    std::vector<json> all;
    for (int page = 0; page < 1000; ++page) {
      auto j = CallNode("GET", api + "?type=pull_request&status=" + a.status + "&p=" + std::to_string(page), token,
                        nullptr, "listing pull requests");
      if (!j.ok()) return Fail(j.status());
      const json& list = (*j)["discussions"];
      for (const auto& d : list) all.push_back(d);
      if (list.empty() || j->value("start", 0) + list.size() >= j->value("count", size_t{0})) break;
    }
    if (a.as_json) {
      std::printf("%s\n", json(all).dump(2).c_str());
      return 0;
    }
    if (all.empty()) std::printf("no %spull requests on %s\n", a.status == "all" ? "" : (a.status + " ").c_str(), id->str().c_str());
    for (const auto& d : all) {
      std::printf("#%d  %-7s  %s  (%s, %s)\n", d.value("num", 0), d.value("status", "").c_str(), d.value("title", "").c_str(),
                  d["author"].value("name", "?").c_str(), d.value("createdAt", "").c_str());
    }
    return 0;
  }
  if (a.num <= 0) return Fail(InvalidArgumentError("name the pull request: hubnode pr " + a.action + " REPO N"));
  const std::string one = api + "/" + std::to_string(a.num);
  if (a.action == "show") {
    auto j = CallNode("GET", one + (a.diff ? "?diff=1" : ""), token, nullptr, "reading the pull request");
    if (!j.ok()) return Fail(j.status());
    if (a.as_json) {
      std::printf("%s\n", j->dump(2).c_str());
      return 0;
    }
    const json& d = *j;
    std::printf("#%d %s\n  status: %s\n  author: %s\n", d.value("num", 0), d.value("title", "").c_str(),
                d.value("status", "").c_str(), d["author"].value("name", "?").c_str());
    if (d.contains("changes")) {
      std::printf("  into:   %s (refs/pr/%d)\n", d["changes"].value("base", "").c_str(), a.num);
      if (d["changes"].contains("mergeCommitId")) {
        std::printf("  merged: %s\n", d["changes"]["mergeCommitId"].get<std::string>().c_str());
      }
    }
    if (d.contains("filesWithConflicts") && !d["filesWithConflicts"].empty()) {
      std::printf("  conflicts:");
      for (const auto& f : d["filesWithConflicts"]) std::printf(" %s", f.get<std::string>().c_str());
      std::printf("\n");
    }
    for (const auto& e : d["events"]) {
      const std::string type = e.value("type", "");
      const std::string who = e.contains("author") ? e["author"].value("name", "?") : "?";
      if (type == "comment") {
        const bool hidden = e["data"].value("hidden", false);
        std::printf("  %s %s: %s\n", e.value("createdAt", "").c_str(), who.c_str(),
                    hidden ? "(hidden)" : e["data"]["latest"].value("raw", "").c_str());
      } else if (type == "commit") {
        std::printf("  %s %s pushed %s %s\n", e.value("createdAt", "").c_str(), who.c_str(),
                    e["data"].value("oid", "").substr(0, 12).c_str(), e["data"].value("subject", "").c_str());
      } else if (type == "status-change") {
        std::printf("  %s %s set the status to %s\n", e.value("createdAt", "").c_str(), who.c_str(),
                    e["data"].value("status", "").c_str());
      } else if (type == "title-change") {
        std::printf("  %s %s renamed it to %s\n", e.value("createdAt", "").c_str(), who.c_str(),
                    e["data"].value("to", "").c_str());
      }
    }
    if (a.diff && d.contains("diff")) std::printf("\n%s", d["diff"].get<std::string>().c_str());
    return 0;
  }
  json body = json::object();
  if (!a.comment.empty()) body["comment"] = a.comment;
  if (a.action == "merge") {
    auto j = CallNode("POST", one + "/merge", token, body, "merging");
    if (!j.ok()) return Fail(j.status());
    std::printf("merged #%d into %s at %s%s\n", a.num, id->str().c_str(), j->value("mergeCommitId", "?").c_str(),
                j->value("held", false) ? " (staged for review: only the repo's writers see it)" : "");
    return 0;
  }
  body["status"] = a.action == "close" ? "closed" : "open";
  auto j = CallNode("POST", one + "/status", token, body, a.action == "close" ? "closing" : "reopening");
  if (!j.ok()) return Fail(j.status());
  std::printf("%s #%d of %s\n", a.action == "close" ? "closed" : "reopened", a.num, id->str().c_str());
  return 0;
}

}  // namespace

void AddPublishCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  {
    auto* sub = app.add_subcommand("push", "Upload DIR as a commit to REPO on a node (the HF write API)");
    auto a = std::make_shared<PushArgs>();
    sub->add_option("dir", a->options.dir, "Model directory")->required()->check(CLI::ExistingDirectory);
    sub->add_option("repo", a->options.repo, "Repo id (ns/name); created when missing")->required();
    sub->add_option("--to", a->options.to, "The node's URL, e.g. http://127.0.0.1:8080")->required();
    sub->add_option("--token", a->options.token, "A write token (default $HF_TOKEN)");
    sub->add_option("--sign", a->options.sign_key, "Sign the directory with this PEM key and push model.sig with it");
    sub->add_option("-m,--message", a->options.message, "Commit message");
    sub->add_option("--branch", a->options.branch, "Branch to commit to (default main)");
    sub->add_flag("--private", a->options.is_private, "Create the repo private");
    sub->add_flag("--json", a->as_json, "Print the result as JSON");
    out->push_back({sub, [a, &flags] { return RunPush(*a, flags.quiet); }});
  }
  {
    auto* pr = app.add_subcommand("pr", "Pull requests of a repo on a running node: list, show, merge, close, reopen");
    pr->require_subcommand(1);
    for (const char* action : {"list", "show", "merge", "close", "reopen"}) {
      auto a = std::make_shared<PrArgs>();
      a->action = action;
      auto* sub = pr->add_subcommand(action, std::string(action) == "list"     ? "List the pull requests"
                                             : std::string(action) == "show"  ? "Show one: status, events, conflicts"
                                             : std::string(action) == "merge" ? "Merge one into its target branch"
                                             : std::string(action) == "close" ? "Close one without merging"
                                                                              : "Reopen a closed one");
      sub->add_option("repo", a->repo, "Repo id (ns/name)")->required();
      if (a->action != "list") sub->add_option("num", a->num, "The pull request's number")->required();
      sub->add_option("--node", a->node, "The node's URL (default $HF_ENDPOINT)");
      sub->add_option("--token", a->token, "A token (default $HF_TOKEN); merge and close need a writer's");
      if (a->action == "list") sub->add_option("--status", a->status, "open, closed, merged, draft or all (default open)");
      if (a->action == "show") sub->add_flag("--diff", a->diff, "Print the diff against the target");
      if (a->action == "merge" || a->action == "close" || a->action == "reopen") {
        sub->add_option("-m,--comment", a->comment, "A comment to leave with it");
      }
      if (a->action == "list" || a->action == "show") sub->add_flag("--json", a->as_json, "Print JSON");
      out->push_back({sub, [a] { return RunPr(*a); }});
    }
  }
  {
    auto* sub = app.add_subcommand("lineage", "Show a model's bases and the models derived from it on this node");
    auto repo = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    sub->add_option("repo", *repo, "Repo id")->required();
    sub->add_flag("--json", *as_json, "Print JSON");
    out->push_back({sub, [repo, as_json, &flags]() -> int {
      auto id = store::RepoId::Parse(*repo);
      if (!id.ok()) return Fail(id.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto trust = TrustFile(flags.data_dir + "/trust.json").Load();
      if (!trust.ok()) return Fail(trust.status());
      auto matcher = verify::LicenseMatcher::FromDirectory("/usr/share/common-licenses");
      store::Store* s = st->get();
      LineageOptions o;
      o.trust = [&](const store::RepoInfo& info, const GitOid& commit) {
        return Assess(CommitView(*s, info.id, commit), info.id.str(), NodeContext(*trust, &matcher, s));
      };
      auto j = Lineage(*s, *id, o);
      if (!j.ok()) return Fail(j.status());
      std::fputs(*as_json ? (j->dump(2) + "\n").c_str() : LineageText(*j).c_str(), stdout);
      return 0;
    }});
  }
}

}  // namespace hubnode::hub

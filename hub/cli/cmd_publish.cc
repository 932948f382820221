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

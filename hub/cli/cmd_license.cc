// license check: the evidence, classification and verdict for a model's license.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "hub/trust/trust_gate.h"
#include "verify/verify.h"

namespace hubnode::hub {
void AddLicenseCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  auto* lic = app.add_subcommand("license", "License evidence, classification and policy");
  lic->require_subcommand(1);
  {
    // What the node reads of a model card: the front matter's place, its data and the findings.
    auto* card = lic->add_subcommand("card", "Show what this node reads from a model card (README.md) as JSON");
    auto file = std::make_shared<std::string>();
    card->add_option("file", *file, "The README.md")->required();
    out->push_back({card, [file]() -> int {
      auto text = ReadFileToString(*file, 16 << 20);
      if (!text.ok()) return Fail(text.status());
      verify::CardFrontMatter fm = verify::ParseCardFrontMatter(*text);
      nlohmann::json j = {{"present", fm.present}, {"findings", fm.findings}, {"data", fm.data}};
      if (fm.present) j["yaml"] = {{"begin", fm.begin}, {"end", fm.end}};
      std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }});
  }
  auto* check = lic->add_subcommand("check", "Check the license of DIR or REPO@REV (exit 0 allow, 3 review, 4 deny)");
  struct Args {
    std::string target, base_license, repo, common_licenses = "/usr/share/common-licenses";
  };
  auto a = std::make_shared<Args>();
  check->add_option("target", a->target, "Model directory, or REPO[@REV] in the store")->required();
  check->add_option("--base-license", a->base_license,
                    "SPDX expression of the base model's license, when the base is not on this node");
  check->add_option("--repo", a->repo, "For a directory: the repo it is for (its namespace picks trusted keys)");
  check->add_option("--common-licenses", a->common_licenses, "Reference texts (default /usr/share/common-licenses)");
  out->push_back({check, [a, &flags]() -> int {
    std::unique_ptr<store::Store> st;
    std::error_code ec;
    bool is_dir = std::filesystem::is_directory(a->target, ec);
    std::optional<RepoSpec> spec;
    GitOid commit;
    if (!is_dir) {
      auto parsed = ParseRepoSpec(a->target);
      if (!parsed.ok()) return Fail(InvalidArgumentError("'" + a->target + "' is neither a directory nor REPO[@REV]"));
      spec = *parsed;
      auto opened = OpenStore(flags);
      if (!opened.ok()) return Fail(opened.status());
      st = std::move(*opened);
      auto c = st->Resolve(spec->repo, spec->rev);
      if (!c.ok()) return Fail(c.status());
      commit = *c;
    }
    TrustFile trust_file(flags.data_dir + "/trust.json");
    auto trust = trust_file.Load();
    if (!trust.ok()) return Fail(trust.status());
    auto matcher = verify::LicenseMatcher::FromDirectory(a->common_licenses);
    TrustContext ctx;
    ctx.trust = &*trust;
    ctx.matcher = &matcher;
    ctx.now = static_cast<int64_t>(std::time(nullptr));
    ctx.base_license = [&](const std::string& base) -> std::optional<std::string> {
      if (!a->base_license.empty()) return a->base_license;
      return st ? StoreBaseLicense(st.get())(base) : std::nullopt;
    };
    TrustReport r = is_dir ? Assess(DirectoryView(a->target), a->repo, ctx)
                           : Assess(CommitView(*st, spec->repo, commit), spec->repo.str(), ctx);
    std::printf("license: %s (%s)\n", r.spdx.c_str(), r.license_class.c_str());
    for (const auto& reason : r.license_reasons) std::printf("  %s\n", reason.c_str());
    if (r.license_file.empty()) {
      std::printf("license text: none\n");
    } else if (r.license_text_id.empty()) {
      std::printf("license text: %s not identified\n", r.license_file.c_str());
    } else {
      std::printf("license text: %s identified as %s (score %.2f)\n", r.license_file.c_str(), r.license_text_id.c_str(),
                  r.license_text_score);
    }
    for (const auto& d : r.derivative_rules) std::printf("derivative: %s\n", d.c_str());
    std::printf("signature: %s%s%s\n", r.signature.c_str(), r.signature_detail.empty() ? "" : " — ",
                r.signature_detail.c_str());
    for (const auto& f : r.findings) std::printf("finding: %s\n", f.c_str());
    for (const auto& f : r.refusals) std::printf("refused: %s\n", f.c_str());
    std::printf("verdict: %s\n", std::string(verify::VerdictName(r.verdict)).c_str());
    return r.verdict == verify::Verdict::kAllow ? 0 : r.verdict == verify::Verdict::kReview ? 3 : 4;
  }});
}

}  // namespace hubnode::hub

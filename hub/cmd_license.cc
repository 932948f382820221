// license check: the evidence, classification and verdict for a model's license.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "base/file.h"
#include "hub/commands.h"
#include "verify/verify.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;
constexpr const char* kLicenseFiles[] = {"LICENSE", "LICENSE.md", "LICENSE.txt", "LICENSE-MODEL"};
constexpr uint64_t kMaxText = 4 << 20;

// README.md and the first LICENSE file of a directory or a stored revision (empty when absent).
struct ModelTexts {
  std::string readme, license, license_file;
};

Result<ModelTexts> TextsOfDir(const std::string& dir) {
  ModelTexts t;
  if (auto r = ReadFileToString(dir + "/README.md", kMaxText); r.ok()) t.readme = *r;
  for (const char* f : kLicenseFiles) {
    if (auto r = ReadFileToString(dir + "/" + f, kMaxText); r.ok()) {
      t.license = *r;
      t.license_file = f;
      break;
    }
  }
  return t;
}

Result<ModelTexts> TextsOfCommit(store::Store& st, const GitOid& commit) {
  ModelTexts t;
  auto read = [&](const char* path) -> std::optional<std::string> {
    auto f = st.StatFile(commit, path);
    if (!f.ok() || f->size > kMaxText) return std::nullopt;
    auto r = st.OpenFile(*f);
    if (!r.ok()) return std::nullopt;
    auto s = (*r)->ReadToString(0, f->size);
    return s.ok() ? std::optional<std::string>(*s) : std::nullopt;
  };
  if (auto r = read("README.md")) t.readme = *r;
  for (const char* f : kLicenseFiles) {
    if (auto r = read(f)) {
      t.license = *r;
      t.license_file = f;
      break;
    }
  }
  return t;
}

}  // namespace

void AddLicenseCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  auto* lic = app.add_subcommand("license", "License evidence, classification and policy");
  lic->require_subcommand(1);
  auto* check = lic->add_subcommand("check", "Check the license of DIR or REPO@REV (exit 0 allow, 3 review, 4 deny)");
  struct Args {
    std::string target, base_license, common_licenses = "/usr/share/common-licenses";
  };
  auto a = std::make_shared<Args>();
  check->add_option("target", a->target, "Model directory, or REPO[@REV] in the store")->required();
  check->add_option("--base-license", a->base_license,
                    "SPDX expression of the base model's license, when the base is not on this node");
  check->add_option("--common-licenses", a->common_licenses, "Reference texts (default /usr/share/common-licenses)");
  out->push_back({check, [a, &flags]() -> int {
    std::unique_ptr<store::Store> st;
    Result<ModelTexts> texts = InternalError("unset");
    std::error_code ec;
    if (fs::is_directory(a->target, ec)) {
      texts = TextsOfDir(a->target);
    } else {
      auto spec = ParseRepoSpec(a->target);
      if (!spec.ok()) return Fail(InvalidArgumentError("'" + a->target + "' is neither a directory nor REPO[@REV]"));
      auto opened = OpenStore(flags);
      if (!opened.ok()) return Fail(opened.status());
      st = std::move(*opened);
      auto c = st->Resolve(spec->repo, spec->rev);
      if (!c.ok()) return Fail(c.status());
      texts = TextsOfCommit(*st, *c);
    }
    if (!texts.ok()) return Fail(texts.status());

    verify::ModelCard card = verify::ReadModelCard(texts->readme);
    std::vector<std::string> findings = card.findings;
    std::printf("card: license=%s license_name=%s license_link=%s\n", card.license.value_or("-").c_str(),
                card.license_name.value_or("-").c_str(), card.license_link.value_or("-").c_str());
    std::string spdx = verify::SpdxForCard(card.license.value_or(""), card.license_name.value_or(""));
    auto expr = verify::ParseSpdx(spdx);
    verify::Verdict verdict = verify::Verdict::kReview;
    if (!expr.ok()) {
      findings.push_back("license is not a valid SPDX expression: " + expr.status().message());
    } else {
      std::printf("spdx: %s\n", (*expr)->ToString().c_str());
      verify::PolicyResult pr = verify::Evaluate(**expr, verify::LicensePolicy::Default());
      verdict = pr.verdict;
      for (const auto& r : pr.reasons) std::printf("  %s\n", r.c_str());
    }

    if (texts->license_file.empty()) {
      std::printf("license text: none\n");
    } else {
      auto matcher = verify::LicenseMatcher::FromDirectory(a->common_licenses);
      verify::TextMatch m = matcher.Identify(texts->license);
      if (m.id.empty()) {
        std::printf("license text: %s not identified (%zu references)\n", texts->license_file.c_str(),
                    matcher.reference_count());
      } else {
        std::printf("license text: %s identified as %s (%s, score %.2f)\n", texts->license_file.c_str(), m.id.c_str(),
                    m.method.c_str(), m.score);
        if (expr.ok() && (*expr)->ToString().find(m.id) == std::string::npos) {
          findings.push_back("the card says " + (*expr)->ToString() + " but " + texts->license_file + " is " + m.id);
        }
      }
    }

    for (const auto& base : card.base_model) {
      std::string base_spdx = a->base_license;
      if (base_spdx.empty() && st) {
        auto id = store::RepoId::Parse(base);
        auto c = id.ok() ? st->Resolve(*id, "HEAD") : Result<GitOid>(id.status());
        if (c.ok()) {
          auto bt = TextsOfCommit(*st, *c);
          verify::ModelCard bc = verify::ReadModelCard(bt.ok() ? bt->readme : "");
          base_spdx = verify::SpdxForCard(bc.license.value_or(""), bc.license_name.value_or(""));
        }
      }
      if (base_spdx.empty()) {
        findings.push_back("base model " + base + " is not on this node and --base-license was not given");
        continue;
      }
      auto bexpr = verify::ParseSpdx(base_spdx);
      if (!bexpr.ok() || !expr.ok()) continue;
      verify::DerivativeCheck d = verify::CheckDerivative(**expr, **bexpr);
      std::printf("base model %s: %s -> %s\n", base.c_str(), (*bexpr)->ToString().c_str(),
                  std::string(verify::VerdictName(d.verdict)).c_str());
      for (const auto& r : d.rules) std::printf("  %s\n", r.c_str());
      verdict = std::max(verdict, d.verdict);
    }
    for (const auto& f : findings) std::printf("finding: %s\n", f.c_str());
    if (!findings.empty()) verdict = std::max(verdict, verify::Verdict::kReview);
    std::printf("verdict: %s\n", std::string(verify::VerdictName(verdict)).c_str());
    return verdict == verify::Verdict::kAllow ? 0 : verdict == verify::Verdict::kReview ? 3 : 4;
  }});
}

}  // namespace hubnode::hub

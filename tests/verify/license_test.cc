#include <fstream>
#include <sstream>

#include "tests/testutil/testutil.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

std::string Canon(std::string_view s) {
  auto e = ParseSpdx(s);
  return e.ok() ? (*e)->ToString() : "ERROR: " + e.status().message();
}

TEST(SpdxTest, GrammarAndPrecedence) {
  auto e = ParseSpdx("MIT OR Apache-2.0 AND GPL-2.0-only");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ((*e)->kind, LicenseExpr::Kind::kOr);  // AND binds tighter than OR
  EXPECT_EQ((*e)->children[1]->kind, LicenseExpr::Kind::kAnd);
  EXPECT_EQ(Canon("(MIT OR Apache-2.0) AND GPL-2.0-only"), "(MIT OR Apache-2.0) AND GPL-2.0-only");
  EXPECT_EQ(Canon("mit or apache-2.0"), "mit OR apache-2.0");
  auto w = ParseSpdx("GPL-2.0-or-later WITH Classpath-exception-2.0 OR MIT");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->kind, LicenseExpr::Kind::kOr);  // WITH binds tighter than OR
  EXPECT_EQ((*w)->children[0]->kind, LicenseExpr::Kind::kWith);
  auto plus = ParseSpdx("GPL-2.0+");
  ASSERT_TRUE(plus.ok());
  EXPECT_TRUE((*plus)->or_later);
  EXPECT_EQ(Canon("LicenseRef-llama3.1 AND MIT"), "LicenseRef-llama3.1 AND MIT");
  EXPECT_EQ(Canon("DocumentRef-x:LicenseRef-y"), "DocumentRef-x:LicenseRef-y");
  EXPECT_EQ(Canon("((MIT))"), "MIT");
}

TEST(SpdxTest, ErrorsNameThePosition) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"MIT OR", "position 7"},           {"MIT And Apache-2.0", "position 5"}, {"(MIT", "missing ')'"},
      {"NONE OR MIT", "cannot be used with OR"}, {"MIT WITH", "exception"},    {"MIT $", "position 5"},
      {"", "empty"},                      {"MIT)", "position 4"},              {"AND MIT", "position 1"},
      {"MIT OR (Apache-2.0 AND)", "position 23"}, {"a:b", "DocumentRef"},
  };
  for (const auto& c : cases) {
    auto e = ParseSpdx(c.text);
    ASSERT_FALSE(e.ok()) << c.text;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(e.status().message().find(c.message), std::string::npos) << c.text << ": " << e.status().message();
  }
}

Verdict V(std::string_view expr, const LicensePolicy& p = LicensePolicy::Default()) {
  auto e = ParseSpdx(expr);
  EXPECT_TRUE(e.ok()) << expr;
  return e.ok() ? Evaluate(**e, p).verdict : Verdict::kDeny;
}

TEST(PolicyTest, OrPassesIfAnyAndOnlyIfAll) {
  EXPECT_EQ(V("MIT"), Verdict::kAllow);
  EXPECT_EQ(V("CC-BY-NC-4.0"), Verdict::kDeny);
  EXPECT_EQ(V("MIT OR CC-BY-NC-4.0"), Verdict::kAllow);
  EXPECT_EQ(V("MIT AND CC-BY-NC-4.0"), Verdict::kDeny);
  EXPECT_EQ(V("MIT AND LicenseRef-llama3.1"), Verdict::kReview);
  EXPECT_EQ(V("GPL-3.0-only OR CC-BY-NC-4.0"), Verdict::kReview);
  EXPECT_EQ(V("NONE"), Verdict::kDeny);
  EXPECT_EQ(V("NOASSERTION"), Verdict::kReview);
  EXPECT_EQ(V("LicenseRef-bsd"), Verdict::kReview);  // a family, not one license
  EXPECT_EQ(V("Apache-2.0 WITH LLVM-exception"), Verdict::kReview);
  LicensePolicy p = LicensePolicy::Default();
  p.allowed_exceptions = {"LLVM-exception"};
  p.by_id["LicenseRef-llama3.1"] = Verdict::kAllow;
  p.by_class[LicenseClass::kWeakCopyleft] = Verdict::kAllow;
  EXPECT_EQ(V("Apache-2.0 WITH LLVM-exception", p), Verdict::kAllow);
  EXPECT_EQ(V("MIT AND LicenseRef-llama3.1", p), Verdict::kAllow);
  EXPECT_EQ(V("MPL-2.0", p), Verdict::kAllow);
}

// The open MoE checkpoints' card licenses (shared/specs/signing_and_licenses.md §3.4).
TEST(ClassifyTest, WellKnownMoeModels) {
  struct Row {
    const char* model;
    const char* license;
    const char* license_name;
    LicenseClass cls;
  } rows[] = {
      {"Mixtral-8x7B", "apache-2.0", "", LicenseClass::kPermissive},
      {"Mixtral-8x22B", "apache-2.0", "", LicenseClass::kPermissive},
      {"Qwen1.5-MoE-A2.7B", "other", "tongyi-qianwen", LicenseClass::kUseRestricted},
      {"Qwen2-57B-A14B", "apache-2.0", "", LicenseClass::kPermissive},
      {"Qwen3-30B-A3B", "apache-2.0", "", LicenseClass::kPermissive},
      {"OLMoE-1B-7B-0924", "apache-2.0", "", LicenseClass::kPermissive},
      {"DeepSeek-V3", "other", "deepseek", LicenseClass::kUseRestricted},
      {"DeepSeek-R1", "mit", "", LicenseClass::kPermissive},
      {"DBRX", "other", "databricks-open-model-license", LicenseClass::kUseRestricted},
      {"Llama-4-Scout", "llama4", "", LicenseClass::kUseRestricted},
      {"gpt-oss-120b", "apache-2.0", "", LicenseClass::kPermissive},
      {"Phi-3.5-MoE-instruct", "mit", "", LicenseClass::kPermissive},
      {"Grok-1", "apache-2.0", "", LicenseClass::kPermissive},
  };
  for (const auto& r : rows) {
    std::string spdx = SpdxForCard(r.license, r.license_name);
    EXPECT_EQ(ClassifyLicenseId(spdx).cls, r.cls) << r.model << " (" << spdx << ")";
  }
  EXPECT_EQ(SpdxForCard("apache-2.0", ""), "Apache-2.0");
  EXPECT_EQ(SpdxForCard("gpl-3.0", ""), "GPL-3.0-only");
  EXPECT_EQ(SpdxForCard("other", "my-own"), "LicenseRef-my-own");
  EXPECT_EQ(SpdxForCard("", ""), "NOASSERTION");
  EXPECT_EQ(ClassifyLicenseId("cc-by-nc-nd-4.0").cls, LicenseClass::kNoDerivatives);
  EXPECT_EQ(ClassifyLicenseId("GPL-2.0+").id, "GPL-2.0-only");
  EXPECT_FALSE(ClassifyLicenseId("nonsense-1.0").known);
}

DerivativeCheck D(std::string_view child, std::string_view base) {
  return CheckDerivative(**ParseSpdx(child), **ParseSpdx(base));
}

TEST(DerivativeTest, ClauseLevelRules) {
  EXPECT_EQ(D("Apache-2.0", "CC-BY-NC-4.0").verdict, Verdict::kDeny);
  EXPECT_EQ(D("CC-BY-NC-4.0", "CC-BY-NC-4.0").verdict, Verdict::kAllow);
  EXPECT_EQ(D("CC-BY-NC-4.0", "CC-BY-NC-ND-4.0").verdict, Verdict::kDeny);  // no derivatives at all
  DerivativeCheck laundering = D("MIT", "LicenseRef-llama3.1");
  EXPECT_EQ(laundering.verdict, Verdict::kReview);
  ASSERT_EQ(laundering.rules.size(), 1u);
  EXPECT_NE(laundering.rules[0].find("use-restricted"), std::string::npos);
  EXPECT_EQ(D("MIT AND LicenseRef-llama3.1", "LicenseRef-llama3.1").verdict, Verdict::kAllow);
  EXPECT_EQ(D("MIT", "GPL-3.0-only").verdict, Verdict::kReview);
  EXPECT_EQ(D("GPL-3.0-only", "GPL-3.0-only").verdict, Verdict::kAllow);
  EXPECT_EQ(D("MIT", "Apache-2.0").verdict, Verdict::kAllow);
  EXPECT_EQ(D("MIT", "LicenseRef-tongyi-qianwen-research").verdict, Verdict::kDeny);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Re-wraps a text at `width` columns with doubled spaces, the way a repo's LICENSE copy may look.
std::string Rewrap(const std::string& text, size_t width) {
  std::istringstream in(text);
  std::string word, line, out;
  while (in >> word) {
    if (line.size() + word.size() + 2 > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : "  ") + word;
  }
  return out + line + "\n";
}

TEST(LicenseTextTest, IdentifiedThroughNoise) {
  const std::string dir = "/usr/share/common-licenses";
  if (Slurp(dir + "/Apache-2.0").empty()) GTEST_SKIP() << "no " << dir;
  LicenseMatcher m = LicenseMatcher::FromDirectory(dir);
  EXPECT_GE(m.reference_count(), 8u);
  std::string apache = "Copyright 2026 Example Labs\n\n" + Rewrap(Slurp(dir + "/Apache-2.0"), 41) + "\nEND\n";
  TextMatch a = m.Identify(apache);
  EXPECT_EQ(a.id, "Apache-2.0");
  EXPECT_GT(a.score, 0.95);
  EXPECT_EQ(m.Identify(Rewrap(Slurp(dir + "/GPL-3"), 70)).id, "GPL-3.0-only");
  EXPECT_EQ(m.Identify(Slurp(dir + "/LGPL-3")).id, "LGPL-3.0-only");
  EXPECT_EQ(m.Identify(Slurp(dir + "/MPL-2.0")).id, "MPL-2.0");
  // Licenses Debian does not ship are recognised by their titles.
  EXPECT_EQ(m.Identify("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: July 23, 2024\n...").id,
            "LicenseRef-llama3.1");
  EXPECT_EQ(m.Identify("Tongyi Qianwen RESEARCH LICENSE AGREEMENT\n...").id, "LicenseRef-tongyi-qianwen-research");
  EXPECT_EQ(m.Identify("The license text of some private model, not a known one.").id, "");
  // Normalisation: case, punctuation, licence/license, hyphenation.
  EXPECT_EQ(NormalizedWords("Non-Commercial LICENCE, (c) 2026"), (std::vector<std::string>{"noncommercial", "license", "c", "2026"}));
}

TEST(ModelCardTest, FieldsAndFindings) {
  ModelCard c = ReadModelCard("---\nlicense: other\nlicense_name: tongyi-qianwen\nbase_model:\n- a/b\n- c/d\n"
                              "base_model_relation: merge\n---\n# Model\n");
  EXPECT_EQ(*c.license, "other");
  EXPECT_EQ(*c.license_name, "tongyi-qianwen");
  EXPECT_EQ(c.base_model, (std::vector<std::string>{"a/b", "c/d"}));
  EXPECT_EQ(*c.base_model_relation, "merge");
  EXPECT_TRUE(c.findings.empty());
  EXPECT_FALSE(ReadModelCard("---\nlicense: [unclosed\n---\n").findings.empty());
  EXPECT_FALSE(ReadModelCard("# no front matter\n").findings.empty());
  ModelCard odd = ReadModelCard("---\nlicense:\n  nested: map\nbase_model: 3\n---\n");
  EXPECT_FALSE(odd.license.has_value());
  EXPECT_FALSE(odd.findings.empty());
}

}  // namespace
}  // namespace hubnode::verify

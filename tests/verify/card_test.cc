// The one model-card parser (verify/card.h): the Hub's front-matter rule, duplicate keys, and the
// limits that keep a hostile card from costing memory or time. (tests/verify/card_golden.py checks
// the block rule and the data against huggingface_hub's own regex and PyYAML.)
#include <string>

#include "tests/testutil/testutil.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

TEST(CardTest, DuplicateKeysKeepTheLastValueAndAreAFinding) {
  // Regression (issue 13, item 8): verify/ read the first `license`, repo info the last.
  const std::string readme = "---\nlicense: apache-2.0\nlicense: cc-by-nc-4.0\n---\n# card\n";
  CardFrontMatter fm = ParseCardFrontMatter(readme);
  EXPECT_EQ(fm.data["license"], "cc-by-nc-4.0");
  ASSERT_EQ(fm.findings.size(), 1u);
  EXPECT_NE(fm.findings[0].find("'license' more than once"), std::string::npos);
  ModelCard card = ReadModelCard(readme);
  EXPECT_EQ(card.license, "cc-by-nc-4.0");
  EXPECT_FALSE(card.findings.empty());
  // And the policy reads the same license: non-commercial is denied by default.
  auto expr = ParseSpdx(SpdxForCard(*card.license, ""));
  ASSERT_TRUE(expr.ok());
  EXPECT_EQ(Evaluate(**expr, LicensePolicy::Default()).verdict, Verdict::kDeny);
}

TEST(CardTest, TheBlockEndsOnlyAtALineThatIsExactlyDashes) {
  // Regression: the block ended at any "\n---", so a line "---x: 1" cut it short.
  CardFrontMatter fm = ParseCardFrontMatter("---\nlicense: mit\n---x: 1\nbase_model: a/b\n---\nbody\n");
  EXPECT_EQ(fm.data["---x"], 1);
  EXPECT_EQ(fm.data["base_model"], "a/b");
  EXPECT_EQ(ParseCardFrontMatter("---\nlicense: mit\n--- \n").present, false);
  EXPECT_EQ(ParseCardFrontMatter("---\nlicense: mit\n----\n").present, false);
  EXPECT_EQ(ParseCardFrontMatter("---\nlicense: mit\n---").data["license"], "mit");  // at the end
  EXPECT_EQ(ParseCardFrontMatter("---\r\nlicense: mit\r\n---\r\nbody").data["license"], "mit");
  EXPECT_EQ(ParseCardFrontMatter("\n  \n---\nlicense: mit\n---\n").data["license"], "mit");  // leading space
  EXPECT_FALSE(ParseCardFrontMatter("# title\n---\nlicense: mit\n---\n").present);
  EXPECT_FALSE(ParseCardFrontMatter("---\n---\n").present);  // the Hub's regex needs two newlines
  CardFrontMatter empty = ParseCardFrontMatter("---\n\n---\n");
  EXPECT_TRUE(empty.present);
  EXPECT_TRUE(empty.data.is_object() && empty.data.empty());
}

TEST(CardTest, AliasesAreRefusedSoABillionLaughsCostsNothing) {
  // Regression (issue 13, item 12): 350 bytes that expanded to 23 MB of JSON (9 levels: ~10^9).
  std::string readme = "---\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i <= 9; ++i) {
    readme += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) readme += std::string(k ? "," : "") + "*a" + std::to_string(i - 1);
    readme += "]\n";
  }
  readme += "license: mit\n---\n";
  CardFrontMatter fm = ParseCardFrontMatter(readme);
  EXPECT_TRUE(fm.data.is_null());
  ASSERT_FALSE(fm.findings.empty());
  EXPECT_NE(fm.findings[0].find("aliases"), std::string::npos);
  EXPECT_FALSE(ReadModelCard(readme).license.has_value());
}

TEST(CardTest, DeepNestingIsRefusedNotACrash) {
  for (const std::string& open : {std::string("["), std::string("{a: ")}) {
    std::string y;
    for (int i = 0; i < 100000; ++i) y += open;
    CardFrontMatter fm = ParseCardFrontMatter("---\nx: " + y + "\n---\n");
    EXPECT_TRUE(fm.data.is_null());
    ASSERT_FALSE(fm.findings.empty());
  }
  std::string block = "---\n";
  for (int i = 0; i < 40; ++i) block += std::string(static_cast<size_t>(i) * 2, ' ') + "k" + std::to_string(i) + ":\n";
  block += "---\n";
  CardFrontMatter fm = ParseCardFrontMatter(block);
  EXPECT_TRUE(fm.data.is_null());
  ASSERT_FALSE(fm.findings.empty());
  EXPECT_NE(fm.findings[0].find("32 levels"), std::string::npos);
}

TEST(CardTest, TooManyNodesOrTooMuchTextIsRefused) {
  std::string list = "---\nx: [";
  for (int i = 0; i < 150000; ++i) list += "1,";
  list += "1]\n---\n";
  CardFrontMatter many = ParseCardFrontMatter(list);
  EXPECT_TRUE(many.data.is_null());
  ASSERT_FALSE(many.findings.empty());
  EXPECT_NE(many.findings[0].find("100000 nodes"), std::string::npos);
  CardFrontMatter big = ParseCardFrontMatter("---\nx: \"" + std::string(2 << 20, 'a') + "\"\n---\n");
  EXPECT_TRUE(big.data.is_null());
  EXPECT_FALSE(big.findings.empty());
}

TEST(CardTest, MalformedCardsAreFindings) {
  EXPECT_FALSE(ParseCardFrontMatter("---\nlicense: [unclosed\n---\n").findings.empty());
  EXPECT_FALSE(ParseCardFrontMatter("---\n? [a, b]\n: v\n---\n").findings.empty());  // a non-string key
  EXPECT_FALSE(ParseCardFrontMatter("---\n- a\n- b\n---\n").findings.empty());      // not a mapping
  EXPECT_FALSE(ParseCardFrontMatter("---\na: 1\n--- x\nb: 2\n---\n").findings.empty());  // two documents
  CardFrontMatter typed = ParseCardFrontMatter("---\nn: 3\nf: 1.5\nb: true\nz: ~\ns: '3'\n---\n");
  EXPECT_EQ(typed.data["n"], 3);
  EXPECT_EQ(typed.data["f"], 1.5);
  EXPECT_EQ(typed.data["b"], true);
  EXPECT_TRUE(typed.data["z"].is_null());
  EXPECT_EQ(typed.data["s"], "3");
}

}  // namespace
}  // namespace hubnode::verify

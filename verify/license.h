// Licenses: SPDX expressions, classification of Hugging Face and SPDX license ids, the node's
// license policy, model-card fields, and identification of LICENSE texts. Private to verify/;
// the public surface is re-exported from verify/verify.h.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode::verify {

// ---- SPDX expressions (SPDX spec annex "License expressions") ----------------------------------

struct LicenseExpr {
  enum class Kind { kLicense, kWith, kAnd, kOr };
  Kind kind = Kind::kLicense;
  std::string id;          // kLicense: license id or LicenseRef-…, NONE, NOASSERTION
  bool or_later = false;   // kLicense: "id+"
  std::string exception;   // kWith: the exception (the license is children[0])
  std::vector<std::unique_ptr<LicenseExpr>> children;  // kWith: 1; kAnd/kOr: 2
  std::string ToString() const;  // canonical, fully parenthesised for compound operands
};

// Parses an expression with SPDX precedence (+ > WITH > AND > OR). InvalidArgument naming the
// 1-based character position of the first error.
Result<std::unique_ptr<LicenseExpr>> ParseSpdx(std::string_view text);

// ---- Classification ------------------------------------------------------------------------------

enum class LicenseClass {
  kPermissive,
  kWeakCopyleft,
  kStrongCopyleft,
  kUseRestricted,
  kNonCommercial,
  kNoDerivatives,
  kUnknown,
};
std::string_view LicenseClassName(LicenseClass c);  // "permissive", "weak-copyleft", …
Result<LicenseClass> ParseLicenseClass(std::string_view name);

struct LicenseInfo {
  std::string id;          // canonical: an SPDX id, or LicenseRef-<name> for model licenses
  LicenseClass cls = LicenseClass::kUnknown;
  bool family = false;     // an HF id naming a family (bsd, cc, gpl…): not one license
  bool known = false;
};

// Classifies an HF `license:` id, an HF `license_name`, or an SPDX id (case-insensitive).
LicenseInfo ClassifyLicenseId(std::string_view id);

// The SPDX expression for a card's license fields: the HF id mapped to SPDX where one exists;
// `other` + license_name → LicenseRef-<license_name>.
std::string SpdxForCard(std::string_view hf_license, std::string_view license_name);

// ---- Policy --------------------------------------------------------------------------------------

enum class Verdict { kAllow = 0, kReview = 1, kDeny = 2 };
std::string_view VerdictName(Verdict v);
Result<Verdict> ParseVerdict(std::string_view name);

struct LicensePolicy {
  // Verdict per class. Default: permissive allow; weak/strong copyleft and use-restricted review;
  // non-commercial and no-derivatives deny; unknown review.
  std::map<LicenseClass, Verdict> by_class;
  // Verdict per canonical id (wins over the class). Default: none.
  std::map<std::string, Verdict> by_id;
  // Exceptions (WITH …) that keep the license's verdict; others make it review. Default: none.
  std::vector<std::string> allowed_exceptions;
  static LicensePolicy Default();
};

struct PolicyResult {
  Verdict verdict = Verdict::kReview;
  std::vector<std::string> reasons;  // one line per leaf: "<id> (<class>): <verdict> by <rule>"
};

// OR passes if any branch passes; AND only if all do; NONE denies; NOASSERTION and families review.
PolicyResult Evaluate(const LicenseExpr& expr, const LicensePolicy& policy);

// ---- Derivatives ---------------------------------------------------------------------------------

struct DerivativeCheck {
  Verdict verdict = Verdict::kAllow;
  std::vector<std::string> rules;  // which clause-level rule applied, one line each
};
// Whether a model licensed `child` may derive from a base licensed `base`: a no-derivatives base
// denies; a non-commercial base denies a child without a non-commercial license; a use-restricted
// base needs its license kept in the child's expression (else review: re-licensing it permissively
// launders the restrictions); a share-alike base needs the same license (else review).
DerivativeCheck CheckDerivative(const LicenseExpr& child, const LicenseExpr& base);

// ---- Model cards ---------------------------------------------------------------------------------

struct ModelCard {
  std::optional<std::string> license;
  std::optional<std::string> license_name;
  std::optional<std::string> license_link;
  std::vector<std::string> base_model;  // a list for merges
  std::optional<std::string> base_model_relation;
  std::vector<std::string> findings;    // malformed YAML, wrong field types
};

// Reads README.md's YAML front matter. Malformed YAML is a finding, never a crash or an error.
ModelCard ReadModelCard(std::string_view readme);

// ---- LICENSE texts -------------------------------------------------------------------------------

struct TextMatch {
  std::string id;       // canonical id of the best reference, empty if none
  double score = 0;     // containment of the reference's word shingles in the text, 0..1
  std::string method;   // "fingerprint" or "title"
};

// Reference fingerprints: built from the texts Debian ships in `common_licenses_dir`
// (Apache-2.0, GPL-2/3, LGPL-2.1/3, MPL-2.0, CC0-1.0, BSD, Artistic), plus title patterns for
// licenses Debian does not ship (MIT, CC BY*, Llama, Gemma, DeepSeek, Qianwen, OpenRAIL…).
class LicenseMatcher {
 public:
  static LicenseMatcher FromDirectory(const std::string& common_licenses_dir);
  // The best match for a LICENSE text (score 0 and empty id when nothing matches).
  TextMatch Identify(std::string_view text) const;
  size_t reference_count() const { return refs_.size(); }

 private:
  struct Ref {
    std::string id;
    std::vector<uint64_t> shingles;  // sorted, unique
  };
  std::vector<Ref> refs_;
};

// Normalised words of a license text (lowercase, punctuation and copyright lines dropped,
// spelling variants unified), exposed for tests.
std::vector<std::string> NormalizedWords(std::string_view text);

}  // namespace hubnode::verify

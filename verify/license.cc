// License ids → classes, the policy evaluation, and model-card fields.
#include "verify/license.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "verify/card.h"

namespace hubnode::verify {
namespace {

using C = LicenseClass;

struct Row {
  const char* hf;    // HF license id, license_name or SPDX id (lowercase)
  const char* spdx;  // canonical id
  C cls;
  bool family;
};

// HF ids (shared/specs/signing_and_licenses.md §3.1, §3.3), common SPDX spellings, and the
// license_name values of the open MoE models' custom licenses (§3.4).
const Row kTable[] = {
    {"apache-2.0", "Apache-2.0", C::kPermissive, false},
    {"mit", "MIT", C::kPermissive, false},
    {"bsd-2-clause", "BSD-2-Clause", C::kPermissive, false},
    {"bsd-3-clause", "BSD-3-Clause", C::kPermissive, false},
    {"bsd-3-clause-clear", "BSD-3-Clause-Clear", C::kPermissive, false},
    {"bsd", "LicenseRef-bsd", C::kPermissive, true},
    {"isc", "ISC", C::kPermissive, false},
    {"zlib", "Zlib", C::kPermissive, false},
    {"bsl-1.0", "BSL-1.0", C::kPermissive, false},
    {"afl-3.0", "AFL-3.0", C::kPermissive, false},
    {"artistic-2.0", "Artistic-2.0", C::kPermissive, false},
    {"ecl-2.0", "ECL-2.0", C::kPermissive, false},
    {"postgresql", "PostgreSQL", C::kPermissive, false},
    {"ncsa", "NCSA", C::kPermissive, false},
    {"wtfpl", "WTFPL", C::kPermissive, false},
    {"unlicense", "Unlicense", C::kPermissive, false},
    {"cc0-1.0", "CC0-1.0", C::kPermissive, false},
    {"pddl", "PDDL-1.0", C::kPermissive, false},
    {"cc-by-2.0", "CC-BY-2.0", C::kPermissive, false},
    {"cc-by-2.5", "CC-BY-2.5", C::kPermissive, false},
    {"cc-by-3.0", "CC-BY-3.0", C::kPermissive, false},
    {"cc-by-4.0", "CC-BY-4.0", C::kPermissive, false},
    {"cdla-permissive-1.0", "CDLA-Permissive-1.0", C::kPermissive, false},
    {"cdla-permissive-2.0", "CDLA-Permissive-2.0", C::kPermissive, false},
    {"odc-by", "ODC-By-1.0", C::kPermissive, true},
    {"lgpl-2.1", "LGPL-2.1-only", C::kWeakCopyleft, false},
    {"lgpl-3.0", "LGPL-3.0-only", C::kWeakCopyleft, false},
    {"lgpl", "LicenseRef-lgpl", C::kWeakCopyleft, true},
    {"lgpl-lr", "LicenseRef-lgpl-lr", C::kWeakCopyleft, true},
    {"mpl-2.0", "MPL-2.0", C::kWeakCopyleft, false},
    {"epl-1.0", "EPL-1.0", C::kWeakCopyleft, false},
    {"epl-2.0", "EPL-2.0", C::kWeakCopyleft, false},
    {"ms-pl", "MS-PL", C::kWeakCopyleft, false},
    {"eupl-1.1", "EUPL-1.1", C::kWeakCopyleft, false},
    {"eupl-1.2", "EUPL-1.2", C::kWeakCopyleft, false},
    {"ofl-1.1", "OFL-1.1", C::kWeakCopyleft, false},
    {"lppl-1.3c", "LPPL-1.3c", C::kWeakCopyleft, false},
    {"gpl-2.0", "GPL-2.0-only", C::kStrongCopyleft, false},
    {"gpl-3.0", "GPL-3.0-only", C::kStrongCopyleft, false},
    {"gpl", "LicenseRef-gpl", C::kStrongCopyleft, true},
    {"agpl-3.0", "AGPL-3.0-only", C::kStrongCopyleft, false},
    {"osl-3.0", "OSL-3.0", C::kStrongCopyleft, false},
    {"cc-by-sa-3.0", "CC-BY-SA-3.0", C::kStrongCopyleft, false},
    {"cc-by-sa-4.0", "CC-BY-SA-4.0", C::kStrongCopyleft, false},
    {"odbl", "ODbL-1.0", C::kStrongCopyleft, true},
    {"cdla-sharing-1.0", "CDLA-Sharing-1.0", C::kStrongCopyleft, false},
    {"gfdl", "LicenseRef-gfdl", C::kStrongCopyleft, true},
    {"openrail", "LicenseRef-openrail", C::kUseRestricted, true},
    {"openrail++", "LicenseRef-openrail++", C::kUseRestricted, false},
    {"bigscience-openrail-m", "LicenseRef-bigscience-openrail-m", C::kUseRestricted, false},
    {"creativeml-openrail-m", "LicenseRef-creativeml-openrail-m", C::kUseRestricted, false},
    {"bigcode-openrail-m", "LicenseRef-bigcode-openrail-m", C::kUseRestricted, false},
    {"bigscience-bloom-rail-1.0", "LicenseRef-bigscience-bloom-rail-1.0", C::kUseRestricted, false},
    {"llama2", "LicenseRef-llama2", C::kUseRestricted, false},
    {"llama3", "LicenseRef-llama3", C::kUseRestricted, false},
    {"llama3.1", "LicenseRef-llama3.1", C::kUseRestricted, false},
    {"llama3.2", "LicenseRef-llama3.2", C::kUseRestricted, false},
    {"llama3.3", "LicenseRef-llama3.3", C::kUseRestricted, false},
    {"llama4", "LicenseRef-llama4", C::kUseRestricted, false},
    {"gemma", "LicenseRef-gemma", C::kUseRestricted, false},
    {"deepseek", "LicenseRef-deepseek", C::kUseRestricted, false},
    {"deepseek-license", "LicenseRef-deepseek", C::kUseRestricted, false},
    {"tongyi-qianwen", "LicenseRef-tongyi-qianwen", C::kUseRestricted, false},
    {"tongyi-qianwen-research", "LicenseRef-tongyi-qianwen-research", C::kNonCommercial, false},
    {"qwen-research", "LicenseRef-tongyi-qianwen-research", C::kNonCommercial, false},
    {"databricks-open-model-license", "LicenseRef-databricks-open-model-license", C::kUseRestricted, false},
    {"dbrx", "LicenseRef-databricks-open-model-license", C::kUseRestricted, false},
    {"cc-by-nc-2.0", "CC-BY-NC-2.0", C::kNonCommercial, false},
    {"cc-by-nc-3.0", "CC-BY-NC-3.0", C::kNonCommercial, false},
    {"cc-by-nc-4.0", "CC-BY-NC-4.0", C::kNonCommercial, false},
    {"cc-by-nc-sa-2.0", "CC-BY-NC-SA-2.0", C::kNonCommercial, false},
    {"cc-by-nc-sa-3.0", "CC-BY-NC-SA-3.0", C::kNonCommercial, false},
    {"cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0", C::kNonCommercial, false},
    {"fair-noncommercial-research-license", "LicenseRef-fair-noncommercial-research-license", C::kNonCommercial, false},
    {"deepfloyd-if-license", "LicenseRef-deepfloyd-if-license", C::kNonCommercial, false},
    {"apple-amlr", "LicenseRef-apple-amlr", C::kNonCommercial, false},
    {"h-research", "LicenseRef-h-research", C::kNonCommercial, false},
    {"intel-research", "LicenseRef-intel-research", C::kNonCommercial, false},
    {"cc-by-nd-4.0", "CC-BY-ND-4.0", C::kNoDerivatives, false},
    {"cc-by-nc-nd-3.0", "CC-BY-NC-ND-3.0", C::kNoDerivatives, false},
    {"cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0", C::kNoDerivatives, false},
    {"cc", "LicenseRef-cc", C::kUnknown, true},
    {"grok2-community", "LicenseRef-grok2-community", C::kUnknown, false},
    {"openmdw-1.0", "LicenseRef-openmdw-1.0", C::kUnknown, false},
    {"openmdw-1.1", "LicenseRef-openmdw-1.1", C::kUnknown, false},
    {"apple-ascl", "LicenseRef-apple-ascl", C::kUnknown, false},
    {"c-uda", "LicenseRef-c-uda", C::kUnknown, false},
    {"etalab-2.0", "etalab-2.0", C::kUnknown, false},
    // SPDX spellings whose HF id differs.
    {"gpl-2.0-only", "GPL-2.0-only", C::kStrongCopyleft, false},
    {"gpl-2.0-or-later", "GPL-2.0-or-later", C::kStrongCopyleft, false},
    {"gpl-3.0-only", "GPL-3.0-only", C::kStrongCopyleft, false},
    {"gpl-3.0-or-later", "GPL-3.0-or-later", C::kStrongCopyleft, false},
    {"agpl-3.0-only", "AGPL-3.0-only", C::kStrongCopyleft, false},
    {"lgpl-2.1-only", "LGPL-2.1-only", C::kWeakCopyleft, false},
    {"lgpl-2.1-or-later", "LGPL-2.1-or-later", C::kWeakCopyleft, false},
    {"lgpl-3.0-only", "LGPL-3.0-only", C::kWeakCopyleft, false},
    {"lgpl-3.0-or-later", "LGPL-3.0-or-later", C::kWeakCopyleft, false},
    {"odc-by-1.0", "ODC-By-1.0", C::kPermissive, false},
    {"odbl-1.0", "ODbL-1.0", C::kStrongCopyleft, false},
    {"pddl-1.0", "PDDL-1.0", C::kPermissive, false},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string_view LicenseClassName(LicenseClass c) {
  switch (c) {
    case C::kPermissive: return "permissive";
    case C::kWeakCopyleft: return "weak-copyleft";
    case C::kStrongCopyleft: return "strong-copyleft";
    case C::kUseRestricted: return "use-restricted";
    case C::kNonCommercial: return "non-commercial";
    case C::kNoDerivatives: return "no-derivatives";
    case C::kUnknown: return "unknown";
  }
  return "unknown";
}

Result<LicenseClass> ParseLicenseClass(std::string_view name) {
  for (C c : {C::kPermissive, C::kWeakCopyleft, C::kStrongCopyleft, C::kUseRestricted, C::kNonCommercial,
              C::kNoDerivatives, C::kUnknown}) {
    if (LicenseClassName(c) == name) return c;
  }
  return InvalidArgumentError("unknown license class '" + std::string(name) + "'");
}

LicenseInfo ClassifyLicenseId(std::string_view raw) {
  std::string id = Lower(raw);
  // SPDX: "GPL-2.0+" and deprecated bare "GPL-2.0" are the or-later / only forms.
  if (id.rfind("licenseref-", 0) == 0) id = id.substr(11);
  if (!id.empty() && id.back() == '+') id.pop_back();
  for (const Row& r : kTable) {
    if (id == r.hf || id == Lower(r.spdx)) return LicenseInfo{r.spdx, r.cls, r.family, true};
  }
  return LicenseInfo{raw.rfind("LicenseRef-", 0) == 0 ? std::string(raw) : "LicenseRef-" + std::string(raw),
                     C::kUnknown, false, false};
}

std::string SpdxForCard(std::string_view hf_license, std::string_view license_name) {
  std::string l = Lower(hf_license);
  if ((l == "other" || l.empty()) && !license_name.empty()) {
    LicenseInfo n = ClassifyLicenseId(license_name);
    return n.known ? n.id : "LicenseRef-" + std::string(license_name);
  }
  if (l.empty()) return "NOASSERTION";
  if (l == "unknown" || l == "other") return "NOASSERTION";
  // A card may already carry an SPDX expression (e.g. "MIT AND LicenseRef-llama3.1").
  if (hf_license.find(' ') != std::string_view::npos) return std::string(hf_license);
  return ClassifyLicenseId(hf_license).id;
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kAllow: return "allow";
    case Verdict::kReview: return "review";
    case Verdict::kDeny: return "deny";
  }
  return "review";
}

Result<Verdict> ParseVerdict(std::string_view name) {
  if (name == "allow") return Verdict::kAllow;
  if (name == "review") return Verdict::kReview;
  if (name == "deny") return Verdict::kDeny;
  return InvalidArgumentError("verdict must be allow, review or deny");
}

LicensePolicy LicensePolicy::Default() {
  LicensePolicy p;
  p.by_class = {{C::kPermissive, Verdict::kAllow},     {C::kWeakCopyleft, Verdict::kReview},
                {C::kStrongCopyleft, Verdict::kReview}, {C::kUseRestricted, Verdict::kReview},
                {C::kNonCommercial, Verdict::kDeny},    {C::kNoDerivatives, Verdict::kDeny},
                {C::kUnknown, Verdict::kReview}};
  return p;
}

PolicyResult Evaluate(const LicenseExpr& e, const LicensePolicy& policy) {
  PolicyResult out;
  switch (e.kind) {
    case LicenseExpr::Kind::kLicense: {
      if (e.id == "NONE") {
        out.verdict = Verdict::kDeny;
        out.reasons.push_back("NONE: deny (no license: all rights reserved)");
        return out;
      }
      if (e.id == "NOASSERTION") {
        out.verdict = Verdict::kReview;
        out.reasons.push_back("NOASSERTION: review (no license stated)");
        return out;
      }
      LicenseInfo info = ClassifyLicenseId(e.id);
      auto by_id = policy.by_id.find(info.id);
      std::string rule;
      if (by_id != policy.by_id.end()) {
        out.verdict = by_id->second;
        rule = "policy for " + info.id;
      } else if (info.family) {
        out.verdict = Verdict::kReview;
        rule = "a license family, not one license";
      } else {
        auto c = policy.by_class.find(info.cls);
        out.verdict = c == policy.by_class.end() ? Verdict::kReview : c->second;
        rule = "policy for class " + std::string(LicenseClassName(info.cls));
      }
      out.reasons.push_back(info.id + " (" + std::string(LicenseClassName(info.cls)) + "): " +
                            std::string(VerdictName(out.verdict)) + " by " + rule);
      return out;
    }
    case LicenseExpr::Kind::kWith: {
      out = Evaluate(*e.children[0], policy);
      bool allowed = false;
      for (const auto& x : policy.allowed_exceptions) allowed = allowed || Lower(x) == Lower(e.exception);
      if (!allowed && out.verdict == Verdict::kAllow) {
        out.verdict = Verdict::kReview;
        out.reasons.push_back("WITH " + e.exception + ": review (exception not on the allowed list)");
      }
      return out;
    }
    case LicenseExpr::Kind::kAnd:
    case LicenseExpr::Kind::kOr: {
      PolicyResult a = Evaluate(*e.children[0], policy), b = Evaluate(*e.children[1], policy);
      // AND: the worst branch (all must be met); OR: the best (the licensee may choose).
      out.verdict = e.kind == LicenseExpr::Kind::kAnd ? std::max(a.verdict, b.verdict) : std::min(a.verdict, b.verdict);
      out.reasons = a.reasons;
      out.reasons.insert(out.reasons.end(), b.reasons.begin(), b.reasons.end());
      return out;
    }
  }
  return out;
}

namespace {
void Leaves(const LicenseExpr& e, std::vector<LicenseInfo>* out) {
  if (e.kind == LicenseExpr::Kind::kLicense) {
    if (e.id != "NONE" && e.id != "NOASSERTION") out->push_back(ClassifyLicenseId(e.id));
    return;
  }
  for (const auto& c : e.children) Leaves(*c, out);
}
}  // namespace

DerivativeCheck CheckDerivative(const LicenseExpr& child, const LicenseExpr& base) {
  DerivativeCheck out;
  std::vector<LicenseInfo> base_leaves, child_leaves;
  Leaves(base, &base_leaves);
  Leaves(child, &child_leaves);
  auto child_has = [&](auto pred) { return std::any_of(child_leaves.begin(), child_leaves.end(), pred); };
  auto raise = [&](Verdict v, std::string rule) {
    out.verdict = std::max(out.verdict, v);
    out.rules.push_back(std::move(rule));
  };
  std::string declared = child.ToString();
  for (const auto& b : base_leaves) {
    switch (b.cls) {
      case C::kNoDerivatives:
        raise(Verdict::kDeny, "base license " + b.id + " forbids derivatives (no-derivatives: Adapted Material may not be shared)");
        break;
      case C::kNonCommercial:
        if (!child_has([](const LicenseInfo& l) { return l.cls == C::kNonCommercial || l.cls == C::kNoDerivatives; })) {
          raise(Verdict::kDeny, "base license " + b.id + " is non-commercial; the derivative's license " + declared +
                                    " must keep the non-commercial limit");
        }
        break;
      case C::kUseRestricted:
        if (!child_has([&](const LicenseInfo& l) { return l.id == b.id; })) {
          raise(Verdict::kReview, "base license " + b.id + " is use-restricted: its restrictions must flow to derivatives, "
                                  "but the derivative declares " + declared + " (expected e.g. '" + declared + " AND " +
                                  b.id + "')");
        }
        break;
      case C::kStrongCopyleft:
        if (!child_has([&](const LicenseInfo& l) { return l.id == b.id; })) {
          raise(Verdict::kReview, "base license " + b.id + " is share-alike: derivatives must use the same license, not " + declared);
        }
        break;
      case C::kUnknown:
        raise(Verdict::kReview, "base license " + b.id + " is unknown: compatibility cannot be decided");
        break;
      default:
        break;
    }
  }
  return out;
}

ModelCard ReadModelCard(std::string_view readme) {
  ModelCard card;
  CardFrontMatter fm = ParseCardFrontMatter(readme);
  card.findings = fm.findings;
  if (!fm.data.is_object()) return card;
  const nlohmann::json& doc = fm.data;
  auto scalar = [&](const char* key) -> std::optional<std::string> {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number() || it->is_boolean()) return it->dump();
    card.findings.push_back(std::string(key) + " is not a string");
    return std::nullopt;
  };
  card.license = scalar("license");
  card.license_name = scalar("license_name");
  card.license_link = scalar("license_link");
  card.base_model_relation = scalar("base_model_relation");
  auto base = doc.find("base_model");
  if (base != doc.end() && base->is_string()) {
    card.base_model.push_back(base->get<std::string>());
  } else if (base != doc.end() && base->is_array()) {
    for (const auto& b : *base) {
      if (b.is_string()) {
        card.base_model.push_back(b.get<std::string>());
      } else {
        card.findings.push_back("base_model has a non-string entry");
      }
    }
  } else if (base != doc.end() && !base->is_null()) {
    card.findings.push_back("base_model is neither a string nor a list");
  }
  return card;
}

}  // namespace hubnode::verify

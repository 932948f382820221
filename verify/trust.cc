#include "verify/trust.h"

#include <nlohmann/json.hpp>

#include "base/json_limits.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {
using json = nlohmann::json;
}

namespace {

Result<PolicyOverrides> ParseOverrides(const json& j) {
  PolicyOverrides o;
  if (!j.is_object()) return DataLossError("trust store policy is not an object");
  // (Each json::value() result is kept in a named variable: iterating items() of a temporary would
  // dangle.)
  const json classes = j.value("classes", json::object());
  for (const auto& [name, v] : classes.items()) {
    auto c = ParseLicenseClass(name);
    auto verdict = v.is_string() ? ParseVerdict(v.get<std::string>()) : Result<Verdict>(InvalidArgumentError("x"));
    if (!c.ok() || !verdict.ok()) return DataLossError("trust store policy has a bad class entry '" + name + "'");
    o.classes[*c] = *verdict;
  }
  const json ids = j.value("ids", json::object());
  for (const auto& [id, v] : ids.items()) {
    auto verdict = v.is_string() ? ParseVerdict(v.get<std::string>()) : Result<Verdict>(InvalidArgumentError("x"));
    if (!verdict.ok()) return DataLossError("trust store policy has a bad id entry '" + id + "'");
    o.ids[ClassifyLicenseId(id).id] = *verdict;
  }
  const json exceptions = j.value("exceptions", json::array());
  for (const auto& e : exceptions) {
    if (e.is_string()) o.exceptions.push_back(e.get<std::string>());
  }
  return o;
}

json OverridesJson(const PolicyOverrides& o) {
  json classes = json::object(), ids = json::object();
  for (const auto& [c, v] : o.classes) classes[std::string(LicenseClassName(c))] = std::string(VerdictName(v));
  for (const auto& [id, v] : o.ids) ids[id] = std::string(VerdictName(v));
  return {{"classes", classes}, {"ids", ids}, {"exceptions", o.exceptions}};
}

void Apply(const PolicyOverrides& o, LicensePolicy* p) {
  for (const auto& [c, v] : o.classes) p->by_class[c] = v;
  for (const auto& [id, v] : o.ids) p->by_id[id] = v;
  p->allowed_exceptions.insert(p->allowed_exceptions.end(), o.exceptions.begin(), o.exceptions.end());
}

}  // namespace

LicensePolicy TrustStore::PolicyFor(const std::string& ns) const {
  LicensePolicy p = LicensePolicy::Default();
  Apply(policy, &p);
  if (auto it = namespace_policy.find(ns); it != namespace_policy.end()) Apply(it->second, &p);
  return p;
}

Result<TrustStore> TrustStore::Parse(std::string_view text) {
  TrustStore t;
  if (text.empty()) return t;
  json j = (JsonDepthWithin(text) ? json::parse(text.begin(), text.end(), nullptr, false) : json(json::value_t::discarded));
  if (j.is_discarded() || !j.is_object()) return DataLossError("trust store is not a JSON object");
  const json keys_json = j.value("keys", json::array());
  for (const auto& k : keys_json) {
    if (!k.is_object() || !k.value("pem", json()).is_string() || !k.value("namespace", json()).is_string()) {
      return DataLossError("trust store has a malformed key entry");
    }
    PublisherKey p;
    p.ns = k["namespace"].get<std::string>();
    p.name = k.value("name", std::string());
    p.pem = k["pem"].get<std::string>();
    p.hint = k.value("hint", std::string());
    p.added = k.value("added", int64_t{0});
    p.expires = k.value("expires", int64_t{0});
    p.revoked = k.value("revoked", false);
    p.node = k.value("node", false);
    t.keys.push_back(std::move(p));
  }
  const json roots_json = j.value("ca_roots", json::array());
  for (const auto& c : roots_json) {
    if (!c.is_object() || !c.value("pem", json()).is_string()) return DataLossError("trust store has a malformed CA root");
    t.ca_roots.push_back(CaRoot{c.value("namespace", std::string("*")), c.value("name", std::string()),
                                c["pem"].get<std::string>()});
  }
  if (j.contains("policy")) {
    ASSIGN_OR_RETURN(t.policy, ParseOverrides(j["policy"]));
  }
  const json ns_policy = j.value("namespace_policy", json::object());
  for (const auto& [ns, v] : ns_policy.items()) {
    ASSIGN_OR_RETURN(t.namespace_policy[ns], ParseOverrides(v));
  }
  const json required_json = j.value("signature_required", json::array());
  for (const auto& ns : required_json) {
    if (ns.is_string()) t.signature_required.insert(ns.get<std::string>());
  }
  return t;
}

std::string TrustStore::Serialize() const {
  json out_keys = json::array();
  for (const auto& k : keys) {
    out_keys.push_back({{"namespace", k.ns}, {"name", k.name}, {"pem", k.pem}, {"hint", k.hint}, {"added", k.added},
                        {"expires", k.expires}, {"revoked", k.revoked}, {"node", k.node}});
  }
  json roots = json::array();
  for (const auto& c : ca_roots) roots.push_back({{"namespace", c.ns}, {"name", c.name}, {"pem", c.pem}});
  json ns_policy = json::object();
  for (const auto& [ns, o] : namespace_policy) ns_policy[ns] = OverridesJson(o);
  return json{{"keys", out_keys},
              {"ca_roots", roots},
              {"signature_required", signature_required},
              {"policy", OverridesJson(policy)},
              {"namespace_policy", ns_policy}}
             .dump(2) + "\n";
}

bool TrustStore::RequiresSignature(const std::string& ns) const {
  return signature_required.count(ns) || signature_required.count("*");
}

Status TrustStore::AddKey(const std::string& ns, const std::string& name, const std::string& pem, int64_t now,
                          int64_t expires) {
  ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromPem(pem));
  for (const auto& k : keys) {
    if (k.hint == key.Hint() && k.ns == ns && !k.revoked) return AlreadyExistsError("this key is already trusted for " + ns);
  }
  keys.push_back(PublisherKey{ns, name.empty() ? key.Hint().substr(0, 12) : name, key.pem(), key.Hint(), now, expires, false});
  return OkStatus();
}

Status TrustStore::AddNodeKey(const std::string& name, const std::string& pem, int64_t now, int64_t expires) {
  ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromPem(pem));
  for (const auto& k : keys) {
    if (k.hint == key.Hint() && k.node && !k.revoked) return AlreadyExistsError("this node key is already trusted");
  }
  PublisherKey k{"*", name.empty() ? key.Hint().substr(0, 12) : name, key.pem(), key.Hint(), now, expires, false};
  k.node = true;
  keys.push_back(std::move(k));
  return OkStatus();
}

Status TrustStore::AddCaRoot(const std::string& ns, const std::string& name, const std::string& pem) {
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgumentError("not a PEM certificate");
  }
  ca_roots.push_back(CaRoot{ns, name, pem});
  return OkStatus();
}

Status TrustStore::Revoke(const std::string& name_or_hint) {
  bool any = false;
  for (auto& k : keys) {
    if (k.name == name_or_hint || k.hint == name_or_hint) k.revoked = any = true;
  }
  return any ? OkStatus() : NotFoundError("no trusted key named " + name_or_hint);
}

Result<TrustedSignature> VerifyWithTrustStore(std::string_view bundle_json, const TrustStore& trust,
                                              const std::string& ns, int64_t now, Manifest* manifest_out) {
  if (BundleHasCertificate(bundle_json)) {
    std::string roots;
    for (const auto& c : trust.ca_roots) {
      if (c.ns == ns || c.ns == "*") roots += c.pem + "\n";
    }
    if (roots.empty()) return PermissionDeniedError("no trusted CA root for namespace '" + ns + "'");
    ASSIGN_OR_RETURN(VerifiedBundle v, VerifyCertificateBundle(bundle_json, roots));
    if (manifest_out) *manifest_out = v.manifest;
    return TrustedSignature{v.certificate_subject, "", ns};
  }
  return VerifyWithKeys(
      bundle_json, trust, now, [&](const PublisherKey& k) { return !k.node && (k.ns == ns || k.ns == "*"); },
      [&](const PublicKey& pub) -> Status {
        ASSIGN_OR_RETURN(VerifiedBundle v, VerifyBundle(bundle_json, pub));
        if (manifest_out) *manifest_out = v.manifest;
        return OkStatus();
      },
      "no trusted key for namespace '" + ns + "' signed this model");
}

std::string BundleKeyHint(std::string_view bundle_json) {
  json b = (JsonDepthWithin(bundle_json) ? json::parse(bundle_json.begin(), bundle_json.end(), nullptr, false) : json(json::value_t::discarded));
  if (b.is_object() && b.contains("verificationMaterial") && b["verificationMaterial"].is_object()) {
    const json& vm = b["verificationMaterial"];
    if (vm.contains("publicKey") && vm["publicKey"].is_object()) {
      const json hint = vm["publicKey"].value("hint", json());
      if (hint.is_string()) return hint.get<std::string>();
    }
  }
  return "";
}

Result<TrustedSignature> VerifyWithKeys(std::string_view bundle_json, const TrustStore& trust, int64_t now,
                                        const std::function<bool(const PublisherKey&)>& eligible,
                                        const std::function<Status(const PublicKey&)>& verify,
                                        const std::string& what) {
  const std::string hint = BundleKeyHint(bundle_json);
  Status last = PermissionDeniedError(what + (hint.empty() ? "" : " (the bundle names key " + hint.substr(0, 64) + ")"));
  for (const auto& k : trust.keys) {
    if (!eligible(k)) continue;
    if (!hint.empty() && k.hint != hint) continue;
    if (k.revoked) {
      last = PermissionDeniedError("key " + k.name + " (" + k.hint.substr(0, 16) + "…) was revoked");
      continue;
    }
    if (k.expires != 0 && now >= k.expires) {
      last = PermissionDeniedError("key " + k.name + " (" + k.hint.substr(0, 16) + "…) expired");
      continue;
    }
    auto pub = PublicKey::FromPem(k.pem);
    if (!pub.ok()) continue;
    if (Status s = verify(*pub); !s.ok()) {
      last = s;
      continue;
    }
    return TrustedSignature{k.name, k.hint, k.ns};
  }
  return last;
}

}  // namespace hubnode::verify

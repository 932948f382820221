#include "hub/trust/trust_gate.h"

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "base/file.h"

namespace hubnode::hub {
namespace {

constexpr const char* kLicenseFiles[] = {"LICENSE", "LICENSE.md", "LICENSE.txt", "LICENSE-MODEL"};
constexpr uint64_t kMaxSmall = 4 << 20;

int ClassRank(verify::LicenseClass c) {
  using C = verify::LicenseClass;
  switch (c) {
    case C::kPermissive: return 0;
    case C::kWeakCopyleft: return 1;
    case C::kStrongCopyleft: return 2;
    case C::kUseRestricted: return 3;
    case C::kUnknown: return 4;
    case C::kNonCommercial: return 5;
    case C::kNoDerivatives: return 6;
  }
  return 4;
}

void WorstClass(const verify::LicenseExpr& e, verify::LicenseClass* worst) {
  if (e.kind == verify::LicenseExpr::Kind::kLicense) {
    auto c = e.id == "NONE" || e.id == "NOASSERTION" ? verify::LicenseClass::kUnknown : verify::ClassifyLicenseId(e.id).cls;
    if (ClassRank(c) > ClassRank(*worst)) *worst = c;
    return;
  }
  for (const auto& c : e.children) WorstClass(*c, worst);
}

std::string Namespace(const std::string& repo) {
  size_t slash = repo.find('/');
  return slash == std::string::npos ? "" : repo.substr(0, slash);
}

}  // namespace

nlohmann::json TrustReport::ToJson() const {
  return {{"verdict", std::string(verify::VerdictName(verdict))},
          {"license", {{"spdx", spdx}, {"class", license_class}, {"reasons", license_reasons},
                       {"file", license_file}, {"textId", license_text_id}, {"textScore", license_text_score}}},
          {"derivative", derivative_rules},
          {"signature", {{"status", signature}, {"detail", signature_detail}}},
          {"findings", findings},
          {"refusals", refusals}};
}

std::string TrustReport::Summary() const {
  std::string s = "license " + spdx + " (" + license_class + ")";
  if (!license_text_id.empty()) s += ", " + license_file + " is " + license_text_id;
  s += "; signature " + signature;
  for (const auto& r : refusals) s += "; " + r;
  if (refusals.empty()) {
    for (const auto& r : license_reasons) s += "; " + r;
    for (const auto& r : derivative_rules) s += "; " + r;
    for (const auto& f : findings) s += "; " + f;
  }
  return s;
}

TrustReport Assess(const ModelView& model, const std::string& repo, const TrustContext& ctx) {
  TrustReport r;
  verify::Verdict verdict = verify::Verdict::kAllow;
  auto readme = model.read("README.md");
  verify::ModelCard card = verify::ReadModelCard(readme.value_or(""));
  if (!readme) card.findings = {"the model has no README.md (no model card)"};
  r.findings = card.findings;

  // License: the card's declaration against the namespace's policy.
  std::string ns = Namespace(repo);
  verify::LicensePolicy policy = ctx.trust ? ctx.trust->PolicyFor(ns) : ctx.policy;
  r.spdx = verify::SpdxForCard(card.license.value_or(""), card.license_name.value_or(""));
  auto expr = verify::ParseSpdx(r.spdx);
  verify::LicenseClass worst = verify::LicenseClass::kPermissive;
  if (!expr.ok()) {
    r.findings.push_back("the card's license is not a valid SPDX expression: " + expr.status().message());
    verdict = verify::Verdict::kReview;
    worst = verify::LicenseClass::kUnknown;
  } else {
    verify::PolicyResult pr = verify::Evaluate(**expr, policy);
    r.license_reasons = pr.reasons;
    verdict = pr.verdict;
    WorstClass(**expr, &worst);
    if (pr.verdict == verify::Verdict::kDeny) {
      for (const auto& reason : pr.reasons) {
        if (reason.find(": deny") != std::string::npos) r.refusals.push_back("license policy: " + reason);
      }
    }
  }
  r.license_class = std::string(verify::LicenseClassName(worst));

  // The LICENSE text must agree with the card; a text that cannot be checked is a finding when
  // the card names a license (the text, not the card, is what binds).
  for (const char* f : kLicenseFiles) {
    auto text = model.read(f);
    if (!text) {
      auto size = model.size ? model.size(f) : std::nullopt;
      if (!size) continue;
      r.license_file = f;
      if (card.license) {
        r.findings.push_back(std::string(f) + " is " + std::to_string(*size) +
                             " bytes, too large to read (the limit is " + std::to_string(kMaxSmall) +
                             "), so it cannot be checked against the card's license " + r.spdx);
      }
      break;
    }
    r.license_file = f;
    if (ctx.matcher) {
      verify::TextMatch m = ctx.matcher->Identify(*text);
      r.license_text_id = m.id;
      r.license_text_score = m.score;
      if (!m.id.empty() && expr.ok() && (*expr)->ToString().find(m.id) == std::string::npos) {
        r.findings.push_back("the card says " + (*expr)->ToString() + " but " + f + " is " + m.id);
      } else if (m.id.empty() && card.license) {
        r.findings.push_back(std::string(f) + " is not a license text this node identifies, so it cannot be checked "
                                              "against the card's license " + r.spdx);
      }
    }
    break;
  }

  // Derivatives: checked against each base this node knows.
  for (const auto& base : card.base_model) {
    std::optional<std::string> base_spdx = ctx.base_license ? ctx.base_license(base) : std::nullopt;
    if (!base_spdx) {
      r.derivative_rules.push_back("base model " + base + " is not on this node: its license is not checked");
      continue;
    }
    auto bexpr = verify::ParseSpdx(*base_spdx);
    if (!bexpr.ok() || !expr.ok()) continue;
    verify::DerivativeCheck d = verify::CheckDerivative(**expr, **bexpr);
    for (const auto& rule : d.rules) r.derivative_rules.push_back("base " + base + ": " + rule);
    if (d.verdict == verify::Verdict::kDeny) {
      for (const auto& rule : d.rules) r.refusals.push_back("derivative rule (base " + base + "): " + rule);
    }
    verdict = std::max(verdict, d.verdict);
  }
  if (!r.findings.empty()) verdict = std::max(verdict, verify::Verdict::kReview);

  // Signature: checked against the trust store's keys for the repo's namespace.
  bool required = ctx.trust && ctx.trust->RequiresSignature(ns);
  // A signature covers every file but .git*, .github/ and model.sig (verify::DefaultIgnorePaths).
  // In a namespace that requires one, what it leaves out must not change what a user gets: a
  // .gitattributes beyond LFS tracking (it can rewrite bytes at checkout) or anything under
  // .github/ (workflows run code) is a finding.
  if (required) {
    if (auto attrs = model.read(".gitattributes"); attrs && !OnlyTracksLfs(*attrs)) {
      r.findings.push_back(".gitattributes does more than track LFS files, and no signature covers it");
    } else if (!attrs && model.size && model.size(".gitattributes")) {
      r.findings.push_back(".gitattributes is too large to read, and no signature covers it");
    }
    if (model.paths) {
      for (const std::string& p : model.paths()) {
        if (p.starts_with(".github/")) {
          r.findings.push_back(p.substr(0, 200) + " is under .github/, which no signature covers");
          break;
        }
      }
    }
    if (!r.findings.empty()) verdict = std::max(verdict, verify::Verdict::kReview);
  }
  auto bundle = model.read("model.sig");
  if (bundle && ctx.trust) {
    verify::Manifest signed_manifest;
    auto sig = verify::VerifyWithTrustStore(*bundle, *ctx.trust, ns, ctx.now, &signed_manifest);
    if (!sig.ok()) {
      r.signature = "untrusted";
      r.signature_detail = sig.status().message();
    } else {
      verify::Serialization ser = signed_manifest.serialization;
      for (const auto& p : verify::DefaultIgnorePaths()) {
        if (std::find(ser.ignore_paths.begin(), ser.ignore_paths.end(), p) == ser.ignore_paths.end()) {
          ser.ignore_paths.push_back(p);
        }
      }
      auto actual = model.manifest(ser);
      Status cmp = actual.ok() ? verify::CompareManifests(signed_manifest, *actual) : actual.status();
      if (cmp.ok()) {
        r.signature = "verified";
        r.signature_detail = "signed by " + sig->key_name + " (" + sig->key_hint + ") for " + sig->ns;
      } else {
        r.signature = "invalid";
        r.signature_detail = cmp.message();
        r.refusals.push_back("signature: " + cmp.message());
        verdict = verify::Verdict::kDeny;
      }
    }
  } else if (bundle) {
    r.signature = "untrusted";
    r.signature_detail = "no trust store";
  }
  if (required && r.signature != "verified") {
    r.refusals.push_back("signature required for namespace '" + ns + "': " +
                         (r.signature == "unsigned" ? std::string("the model has no model.sig") : r.signature_detail));
    verdict = verify::Verdict::kDeny;
  }
  r.verdict = verdict;
  return r;
}

Result<verify::Manifest> ManifestOfCommit(store::Store& st, const store::RepoId& repo, const GitOid& commit,
                                          const verify::Serialization& ser) {
  ASSIGN_OR_RETURN(auto files, st.ListFiles(commit));
  std::string name = repo.str().substr(repo.str().find('/') + 1);
  if (ser.method == "files") {
    std::vector<std::pair<std::string, Sha256Digest>> digests;
    for (const auto& f : files) digests.emplace_back(f.path, f.sha256);
    return verify::ManifestFromDigests(name, digests, ser);
  }
  verify::Manifest empty = verify::ManifestFromDigests(name, {}, ser);
  std::vector<std::pair<std::string, Sha256Digest>> kept;
  for (const auto& f : files) kept.emplace_back(f.path, f.sha256);
  verify::Manifest filter = verify::ManifestFromDigests(name, kept, ser);  // applies ignore_paths
  for (const auto& r : filter.resources) {
    ASSIGN_OR_RETURN(store::FileEntry f, st.StatFile(commit, r.name));
    ASSIGN_OR_RETURN(auto reader, st.OpenFile(f));
    for (uint64_t b = 0; b < f.size; b += ser.shard_size) {
      uint64_t e = std::min(f.size, b + ser.shard_size);
      Sha256 h;
      RETURN_IF_ERROR(reader->Read(b, e - b, [&](std::string_view piece) {
        h.Update(piece);
        return OkStatus();
      }));
      empty.resources.push_back(verify::Resource{f.path + ":" + std::to_string(b) + ":" + std::to_string(e), "sha256",
                                                 std::string(h.Finish().view())});
    }
  }
  std::sort(empty.resources.begin(), empty.resources.end(),
            [](const verify::Resource& a, const verify::Resource& b) { return a.name < b.name; });
  return empty;
}

Result<verify::TrustStore> TrustFile::Load() {
  auto text = ReadFileToString(path_, 16 << 20);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return verify::TrustStore{};
    return text.status();
  }
  return verify::TrustStore::Parse(*text);
}

Status TrustFile::Save(const verify::TrustStore& t) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  return WriteFileAtomic(path_, t.Serialize());
}

bool OnlyTracksLfs(std::string_view text) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) return false;
    std::string_view attrs = line.substr(sp);
    while (!attrs.empty() && (attrs.front() == ' ' || attrs.front() == '\t')) attrs.remove_prefix(1);
    if (attrs != "filter=lfs diff=lfs merge=lfs -text") return false;
  }
  return true;
}

ModelView DirectoryView(const std::string& dir) {
  ModelView v;
  v.read = [dir](const std::string& path) -> std::optional<std::string> {
    auto r = ReadFileToString(dir + "/" + path, kMaxSmall);
    return r.ok() ? std::optional<std::string>(*r) : std::nullopt;
  };
  v.size = [dir](const std::string& path) -> std::optional<uint64_t> {
    std::error_code ec;
    auto n = std::filesystem::file_size(dir + "/" + path, ec);
    return ec ? std::nullopt : std::optional<uint64_t>(n);
  };
  v.paths = [dir]() {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_regular_file(ec)) out.push_back(std::filesystem::relative(it->path(), dir, ec).string());
    }
    return out;
  };
  v.manifest = [dir](const verify::Serialization& ser) { return verify::HashDirectory(dir, ser); };
  return v;
}

TrustContext NodeContext(const verify::TrustStore& trust, const verify::LicenseMatcher* matcher, store::Store* st,
                         RepoVisible visible) {
  TrustContext ctx;
  ctx.trust = &trust;
  ctx.matcher = matcher;
  ctx.now = static_cast<int64_t>(std::time(nullptr));
  if (st) ctx.base_license = StoreBaseLicense(st, std::move(visible));
  return ctx;
}

ModelView CommitView(store::Store& st, const store::RepoId& repo, const GitOid& commit) {
  ModelView v;
  v.read = [&st, commit](const std::string& path) -> std::optional<std::string> {
    auto f = st.StatFile(commit, path);
    if (!f.ok() || f->size > kMaxSmall) return std::nullopt;
    auto reader = st.OpenFile(*f);
    if (!reader.ok()) return std::nullopt;
    auto s = (*reader)->ReadToString(0, f->size);
    return s.ok() ? std::optional<std::string>(*s) : std::nullopt;
  };
  v.manifest = [&st, repo, commit](const verify::Serialization& ser) { return ManifestOfCommit(st, repo, commit, ser); };
  v.size = [&st, commit](const std::string& path) -> std::optional<uint64_t> {
    auto f = st.StatFile(commit, path);
    return f.ok() ? std::optional<uint64_t>(f->size) : std::nullopt;
  };
  v.paths = [&st, commit]() {
    std::vector<std::string> out;
    if (auto files = st.ListFiles(commit); files.ok()) {
      for (const auto& f : *files) out.push_back(f.path);
    }
    return out;
  };
  return v;
}

Gate MakeGate(store::Store* st, std::string trust_path, const verify::LicenseMatcher* matcher) {
  return [st, trust_path, matcher](const std::string& dir, const store::RepoId& repo, bool full) {
    GateDecision d;
    auto trust = TrustFile(trust_path).Load();
    if (!trust.ok()) {
      d.verdict = 2;
      d.summary = "trust store unreadable: " + trust.status().message();
      return d;
    }
    std::string ns = repo.str().find('/') == std::string::npos ? "" : repo.str().substr(0, repo.str().find('/'));
    d.signature_required = trust->RequiresSignature(ns);
    TrustContext ctx;
    ctx.trust = full ? &*trust : nullptr;  // the pre-check has the card and LICENSE, not the files
    ctx.policy = trust->PolicyFor(ns);
    ctx.matcher = matcher;
    ctx.now = static_cast<int64_t>(std::time(nullptr));
    // A pull's decision reaches whoever asked for it (pull-through: anyone): private bases are
    // not consulted.
    ctx.base_license = StoreBaseLicense(st, [](const store::RepoInfo& r) { return r.visibility != store::Visibility::kPrivate; });
    TrustReport r = Assess(DirectoryView(dir), repo.str(), ctx);
    d.verdict = static_cast<int>(r.verdict);
    d.summary = r.Summary();
    return d;
  };
}

std::function<std::optional<std::string>(const std::string&)> StoreBaseLicense(store::Store* st,
                                                                              RepoVisible visible) {
  return [st, visible = std::move(visible)](const std::string& base) -> std::optional<std::string> {
    auto id = store::RepoId::Parse(base);
    if (!id.ok()) return std::nullopt;
    if (visible) {
      auto info = st->GetRepo(*id);
      if (!info.ok() || !visible(*info)) return std::nullopt;
    }
    auto commit = st->Resolve(*id, "HEAD");
    if (!commit.ok()) return std::nullopt;
    auto readme = CommitView(*st, *id, *commit).read("README.md");
    verify::ModelCard card = verify::ReadModelCard(readme.value_or(""));
    return verify::SpdxForCard(card.license.value_or(""), card.license_name.value_or(""));
  };
}

}  // namespace hubnode::hub

// The trust assessment of a model (a directory being imported or pulled, or a stored revision):
// license evidence and policy, derivative rules against the base model, and the signature checked
// against the trust store. Import, pull, pull-through and the served trust status all use it.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct TrustContext {
  const verify::TrustStore* trust = nullptr;
  verify::LicensePolicy policy = verify::LicensePolicy::Default();
  const verify::LicenseMatcher* matcher = nullptr;
  int64_t now = 0;
  // The card license (SPDX) of a base model by repo id, when this node holds it.
  std::function<std::optional<std::string>(const std::string&)> base_license;
};

// How to read the model being assessed.
struct ModelView {
  // A small file's content (README.md, LICENSE, model.sig), nullopt if absent or too large.
  std::function<std::optional<std::string>(const std::string& path)> read;
  // The model's manifest under a serialization (for the signature comparison).
  std::function<Result<verify::Manifest>(const verify::Serialization&)> manifest;
  // A file's size, nullopt when absent. Optional (empty: unknown).
  std::function<std::optional<uint64_t>(const std::string& path)> size;
  // Every file's path. Optional (empty: unknown).
  std::function<std::vector<std::string>()> paths;
};

// Whether a .gitattributes only tracks paths with Git LFS (each line blank, a comment, or
// `PATTERN filter=lfs diff=lfs merge=lfs -text`, as the Hub's default and this node write): such a
// file changes no byte a checkout produces, so a signature need not cover it.
bool OnlyTracksLfs(std::string_view gitattributes);

struct TrustReport {
  verify::Verdict verdict = verify::Verdict::kReview;
  std::string spdx;
  std::string license_class;  // the most restrictive class among the expression's licenses
  std::vector<std::string> license_reasons;
  std::string license_file, license_text_id;
  double license_text_score = 0;
  std::vector<std::string> derivative_rules;
  std::string signature = "unsigned";  // "verified", "unsigned", "untrusted", "invalid"
  std::string signature_detail;
  std::vector<std::string> findings;
  std::vector<std::string> refusals;  // why the verdict is deny (names the license, evidence, rule)
  nlohmann::json ToJson() const;
  std::string Summary() const;  // one line for errors
};

TrustReport Assess(const ModelView& model, const std::string& repo, const TrustContext& ctx);

// Which repos a base-model lookup may see: the caller's view. A base the caller may not read is
// treated as absent (its existence and license are not the caller's to learn). Empty: every repo.
using RepoVisible = std::function<bool(const store::RepoInfo&)>;

// The node's context: its trust store (and so its policy), the license matcher, now, and bases
// looked up in `st` (none when null) among the repos `visible` admits. `trust` and `matcher` must
// outlive the context.
TrustContext NodeContext(const verify::TrustStore& trust, const verify::LicenseMatcher* matcher, store::Store* st,
                         RepoVisible visible = {});

// Views of a directory and of a stored revision.
ModelView DirectoryView(const std::string& dir);
ModelView CommitView(store::Store& st, const store::RepoId& repo, const GitOid& commit);

// The manifest of a stored revision: the SHA-256s the store keeps for the files method (no
// re-hash); the shards method hashes each range through the store's reader.
Result<verify::Manifest> ManifestOfCommit(store::Store& st, const store::RepoId& repo, const GitOid& commit,
                                          const verify::Serialization& ser);

// The trust store file of a data directory (DATA/trust.json), re-read when it changes.
class TrustFile {
 public:
  explicit TrustFile(std::string path) : path_(std::move(path)) {}
  // The current trust store (empty when the file does not exist). DataLoss if malformed.
  Result<verify::TrustStore> Load();
  Status Save(const verify::TrustStore& t);

 private:
  std::string path_;
};

// The policy decision on a model staged in a folder (a pull, a pull-through): allow, hold for review, or deny (with the reason).
struct GateDecision {
  int verdict = 0;  // 0 allow, 1 review, 2 deny (verify::Verdict order)
  bool signature_required = false;
  std::string summary;
};
// Decides on the model staged in `dir` for `repo`; `full` = every file is there (else only the
// card, LICENSE and model.sig, for the pre-check).
using Gate = std::function<GateDecision(const std::string& dir, const store::RepoId& repo, bool full)>;

// The mirror's policy gate: the trust store (re-read each time), the default license policy,
// bases looked up in `st`.
Gate MakeGate(store::Store* st, std::string trust_path, const verify::LicenseMatcher* matcher);

// A TrustContext whose base lookups read this store (bases' card licenses at HEAD), among the
// repos `visible` admits (empty: all).
std::function<std::optional<std::string>(const std::string&)> StoreBaseLicense(store::Store* st,
                                                                              RepoVisible visible = {});

}  // namespace hubnode::hub

// Commits of the write API: NDJSON (or JSON) bodies read line by line, changes written, the
// node's policy applied before the ref moves. See write_api_impl.h.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "base/json_limits.h"
#include "base/log.h"
#include "hub/trust/trust_gate.h"
#include "hub/write/write_api_impl.h"

namespace hubnode::hub {

using namespace wapi;

Status WriteApi::Impl::CommitOp(const std::string& key, const json& v, CommitBody* cb) {
  if (!v.is_object()) return InvalidArgumentError("\"value\" must be an object");
  if (cb->changes.size() >= kMaxCommitOps) return InvalidArgumentError("too many operations in one commit");
  if (key == "header") {
    cb->saw_header = true;
    cb->summary = Str(v, "summary");
    cb->description = Str(v, "description");
    if (v.contains("parentCommit") && v["parentCommit"].is_string()) cb->parent = v["parentCommit"].get<std::string>();
    return OkStatus();
  }
  std::string path = Str(v, "path");
  if (path.empty()) return InvalidArgumentError(key + " needs a path");
  store::FileChange c;
  c.path = path;
  if (key == "file") {
    std::string encoding = Str(v, "encoding");
    std::string content = Str(v, "content");
    std::string raw;
    if (encoding == "base64") {
      ASSIGN_OR_RETURN(raw, verify::Base64Decode(content));
    } else if (encoding.empty() || encoding == "utf-8") {
      raw = content;
    } else {
      return InvalidArgumentError("unknown encoding " + encoding.substr(0, 40));
    }
    ASSIGN_OR_RETURN(store::ContentInfo info, PutRegularFile(path, raw));
    c = RegularFileChange(path, info);
    cb->bytes += info.size;
    cb->new_raw += info.new_raw_bytes;
    cb->new_stored += info.new_stored_bytes;
  } else if (key == "lfsFile") {
    std::string algo = Str(v, "algo");
    if (!algo.empty() && algo != "sha256") return InvalidArgumentError("LFS oids must be sha256");
    ASSIGN_OR_RETURN(c.sha256, Sha256Digest::FromHex(Str(v, "oid")));
    if (v.contains("size") && v["size"].is_number_unsigned()) {
      c.size = v["size"].get<uint64_t>();
    } else {
      return InvalidArgumentError(path + ": lfsFile needs a size");
    }
    c.lfs = true;
    ASSIGN_OR_RETURN(bool held, store->HasContent(c.sha256, c.size));
    if (held && !Uploaded(cb->repo, c.sha256)) {
      if (!cb->own) cb->own = RepoObjects(*store::RepoId::Parse(cb->repo));
      held = cb->own->count(c.sha256) > 0;
    }
    if (!held) {
      return FailedPreconditionError("LFS object " + c.sha256.hex() + " for " + path +
                                     " has not been uploaded to this repo (use the LFS batch API first)");
    }
    UploadStat s = TakeStat(c.sha256);
    cb->bytes += c.size;
    cb->new_raw += s.new_raw;
    cb->new_stored += s.new_stored;
  } else if (key == "deletedFile") {
    c.kind = store::FileChange::Kind::kDelete;
  } else if (key == "deletedFolder") {
    c.kind = store::FileChange::Kind::kDeleteFolder;
  } else {
    return InvalidArgumentError("unknown operation " + key.substr(0, 40));
  }
  cb->changes.push_back(std::move(c));
  return OkStatus();
}

Status WriteApi::Impl::TrackLfsPaths(const std::optional<GitOid>& head, CommitBody* cb) {
  std::vector<std::string> extra;
  for (const auto& c : cb->changes) {
    if (c.kind != store::FileChange::Kind::kPut) continue;
    if (c.path == ".gitattributes") return OkStatus();
    if (c.lfs && !store::StoresAsLfs(c.path, 0)) extra.push_back(c.path);
  }
  if (extra.empty()) return OkStatus();
  std::string attrs;
  if (head) {
    if (auto f = store->StatFile(*head, ".gitattributes"); f.ok() && f->size <= options.max_line) {
      ASSIGN_OR_RETURN(auto reader, store->OpenFile(*f));
      ASSIGN_OR_RETURN(attrs, reader->ReadToString(0, f->size));
    }
  }
  bool changed = false;
  for (std::string p : extra) {
    std::string escaped;
    for (char ch : p) escaped += ch == ' ' ? std::string("[[:space:]]") : std::string(1, ch);
    std::string line = escaped + " filter=lfs diff=lfs merge=lfs -text";
    if (attrs.find(line) != std::string::npos) continue;
    if (!attrs.empty() && attrs.back() != '\n') attrs += '\n';
    attrs += line + "\n";
    changed = true;
  }
  if (!changed) return OkStatus();
  ASSIGN_OR_RETURN(store::ContentInfo info, PutRegularFile(".gitattributes", attrs));
  cb->changes.push_back(RegularFileChange(".gitattributes", info));
  return OkStatus();
}

Status WriteApi::Impl::ReadCommitBody(const httplib::Request& req, const httplib::ContentReader& reader, CommitBody* cb,
                      bool* too_big) {
  bool ndjson = req.get_header_value("Content-Type").find("json") == std::string::npos ||
                req.get_header_value("Content-Type").find("ndjson") != std::string::npos;
  if (!ndjson) {
    std::string body;
    if (!ReadBody(reader, options.max_body, &body)) {
      *too_big = true;
      return ResourceExhaustedError("request body over " + std::to_string(options.max_body) + " bytes");
    }
    json j = (JsonDepthWithin(body) ? json::parse(body, nullptr, false) : json(json::value_t::discarded));
    if (!j.is_object()) return InvalidArgumentError("the body must be NDJSON or a JSON object");
    RETURN_IF_ERROR(CommitOp("header", j, cb));
    for (const auto& [field, key] : {std::pair{"files", "file"}, {"lfsFiles", "lfsFile"},
                                     {"deletedFiles", "deletedFile"}, {"deletedFolders", "deletedFolder"}}) {
      if (!j.contains(field)) continue;
      if (!j[field].is_array()) return InvalidArgumentError(std::string(field) + " must be an array");
      for (const auto& v : j[field]) RETURN_IF_ERROR(CommitOp(key, v, cb));
    }
    return OkStatus();
  }
  std::string line;
  Status st;
  auto process = [&](std::string_view l) -> Status {
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.remove_suffix(1);
    if (l.empty()) return OkStatus();
    json j = (JsonDepthWithin(l) ? json::parse(l, nullptr, false) : json(json::value_t::discarded));
    if (!j.is_object() || !j.contains("key") || !j["key"].is_string() || !j.contains("value")) {
      return InvalidArgumentError("each line must be {\"key\": ..., \"value\": {...}}");
    }
    return CommitOp(j["key"].get<std::string>(), j["value"], cb);
  };
  const bool complete = reader([&](const char* data, size_t n) {
    std::string_view chunk(data, n);
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      size_t take = nl == std::string_view::npos ? chunk.size() : nl;
      if (line.size() + take > options.max_line) {
        *too_big = true;
        st = ResourceExhaustedError("a commit line is over " + std::to_string(options.max_line) + " bytes");
        return false;
      }
      line.append(chunk.substr(0, take));
      if (nl == std::string_view::npos) break;
      chunk.remove_prefix(nl + 1);
      st = process(line);
      line.clear();
      if (!st.ok()) return false;
    }
    return true;
  });
  RETURN_IF_ERROR(st);
  // A body cut short (connection lost, read timeout) is never committed in part.
  if (!complete) return InvalidArgumentError("the commit body was cut short");
  return process(line);
}

void WriteApi::Impl::Commit(const WRoute& r, const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  // The repo's writers commit anywhere; any other write token may open a pull request on a repo
  // it can read (not a private one) and push to the pull requests it opened.
  bool writer = false;
  auto repo = ContributableRepo(r, who, &writer, res);
  if (!repo) return;
  bool create_pr = QueryFlag(req, "create_pr", false);
  std::string rev = r.rest == "HEAD" ? repo->default_branch : r.rest;
  std::string ref = BranchRefName(rev);
  if (!ref.starts_with("refs/heads/") && !ref.starts_with("refs/pr/")) {
    return SendError(res, 400, "BadRequest", "commits go to a branch or a refs/pr/N");
  }
  if (!writer && !create_pr && !(ref.starts_with("refs/pr/") && PrAuthor(repo->id, ref) == who->token_name)) {
    return SendError(res, 403, "Forbidden",
                     "this token may open pull requests on " + repo->id.str() + " and push to its own, nothing else");
  }
  // Where the branch is now for its writers (its staged head, when a commit is held on it); an
  // empty repo takes a root commit on its default branch.
  BranchState branch;
  if (Status s = ReadBranch(repo->id, ref, &branch); !s.ok()) return SendError(res, 400, "BadRequest", s.message());
  // A pull request starts from what every reader of the repo sees, never from a staged commit.
  std::optional<GitOid> head = create_pr ? branch.released : branch.head();
  if (!head && create_pr && branch.held) {
    return SendError(res, 409, "HeldForReview",
                     "everything on " + rev.substr(0, 200) + " is staged for review: a pull request needs a released commit");
  }
  if (!head) {
    auto refs = store->ListRefs(repo->id);
    bool empty = refs.ok() && refs->empty();
    if (!empty || create_pr || ref != "refs/heads/" + repo->default_branch) {
      return SendError(res, 404, "RevisionNotFound", "Invalid rev id: " + rev.substr(0, 200));
    }
  }

  CommitBody cb;
  cb.repo = repo->id.str();
  bool too_big = false;
  Status read = ReadCommitBody(req, reader, &cb, &too_big);
  if (!read.ok()) {
    if (too_big) return SendError(res, 413, "PayloadTooLarge", read.message());
    if (read.code() == StatusCode::kNotFound) return SendError(res, 404, "EntryNotFound", read.message());
    return SendWriteError(res, read, read.code() == StatusCode::kFailedPrecondition ? 422 : 400, "BadRequest");
  }
  if (!cb.saw_header) return SendError(res, 400, "BadRequest", "the commit has no header line");
  if (cb.summary.empty()) cb.summary = "Upload files with hubnode";
  if (cb.parent) {
    // 5 to 40 hex digits, as huggingface_hub allows (REGEX_COMMIT_OID): a prefix of the head.
    std::string want = *cb.parent;
    bool hex = want.size() >= 5 && want.size() <= 40 &&
               std::all_of(want.begin(), want.end(), [](unsigned char ch) { return std::isxdigit(ch); });
    if (!hex) return SendError(res, 400, "BadRequest", "parentCommit must be a commit id (5 to 40 hex digits)");
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (!head || !head->hex().starts_with(want)) {
      return SendError(res, 412, "PreconditionFailed",
                       "A commit has happened since. Please refresh and try again. (" + rev.substr(0, 200) +
                           " is at " + (head ? head->hex() : std::string("no commit")) + ")");
    }
  }

  if (Status s = TrackLfsPaths(head, &cb); !s.ok()) return SendWriteError(res, s, 400, "BadRequest");

  // Without parentCommit a commit lands on wherever the branch is then, as on the Hub: when a
  // concurrent commit moves the branch first, the same changes are applied again on top of it.
  const bool rebase = !cb.parent && !create_pr;
  store::CommitSpec spec;
  spec.changes = std::move(cb.changes);
  spec.author.name = who->token_name;
  spec.author.email = who->token_name + "@hubnode";
  spec.message = cb.summary + (cb.description.empty() ? "" : "\n\n" + cb.description);
  json bytes = {{"total", cb.bytes}, {"new", cb.new_raw}, {"newStored", cb.new_stored},
                {"held", cb.bytes >= cb.new_raw ? cb.bytes - cb.new_raw : 0}};
  std::string base = Base(req) + "/" + repo->id.str();
  for (int attempt = 1;; ++attempt) {
    spec.parent = head;
    auto written = store->WriteCommit(spec);
    if (!written.ok()) {
      const Status& s = written.status();
      if (s.code() == StatusCode::kNotFound) return SendError(res, 404, "EntryNotFound", s.message());
      return SendWriteError(res, s, 400, "BadRequest");
    }
    if (!written->changed && !create_pr) {
      return SendJson(res, {{"commitUrl", base + "/commit/" + written->commit.hex()},
                            {"commitOid", written->commit.hex()}, {"success", true}, {"changed", false},
                            {"bytes", bytes}});
    }

    // Policy before visibility: the new revision is assessed as it would be served.
    auto trust = options.trust_path.empty() ? Result<verify::TrustStore>(verify::TrustStore{})
                                            : TrustFile(options.trust_path).Load();
    if (!trust.ok()) return SendError(res, 500, "InternalError", "the trust store is unreadable");
    // Bases the writer may not read are absent: a refusal never quotes another namespace's
    // private model.
    auto visible = [who](const store::RepoInfo& base) {
      return base.visibility != store::Visibility::kPrivate || CanRead(who, base);
    };
    TrustReport report = hub::Assess(CommitView(*store, repo->id, written->commit), repo->id.str(),
                                NodeContext(*trust, &matcher, store, visible));
    if (report.verdict == verify::Verdict::kDeny) {
      LOG(Info) << "refused commit to " << repo->id.str() << ": " << report.Summary();
      SendJson(res, {{"error", "Refused by this node's policy: " + report.Summary()},
                     {"rules", report.refusals}, {"trust", report.ToJson()}}, 451);
      res.set_header("X-Error-Code", "PolicyRefused");
      return;
    }
    if (report.verdict == verify::Verdict::kReview && (create_pr || !ref.starts_with("refs/heads/"))) {
      // A pull request is a proposal: one that needs review is refused, not held over a branch.
      SendJson(res, {{"error", "Refused pending review by this node's policy: " + report.Summary()},
                     {"trust", report.ToJson()}}, 403);
      res.set_header("X-Error-Code", "PolicyReview");
      return;
    }
    const bool stage = report.verdict == verify::Verdict::kReview;
    std::string target = ref;
    std::string pr_url;
    Status moved;
    if (create_pr) {
      std::lock_guard<std::mutex> lock(pr_mu);
      auto next = NextDiscussionNumber(repo->id);
      if (!next.ok()) return SendWriteError(res, next.status(), 409, "Conflict");
      target = "refs/pr/" + std::to_string(*next);
      Status s = store->UpdateRef(repo->id, target, GitOid(), written->commit);
      if (!s.ok()) return SendWriteError(res, s);
      s = RecordPullRequest(repo->id, *next, cb.summary, cb.description, who->token_name, ref, written->commit,
                            cb.summary);
      if (!s.ok()) LOG(Warning) << "pull request #" << *next << " of " << repo->id.str() << ": " << s.ToString();
      pr_url = base + "/discussions/" + std::to_string(*next);
    } else if (ref.starts_with("refs/heads/")) {
      // Staged (review): the branch moves for its writers only (refs/held/<branch>); everyone else
      // keeps the last released commit until it is approved or a commit the policy allows
      // follows. Allowed: the branch moves, and whatever was staged under it goes out with it.
      moved = LandOnBranch(repo->id, ref, branch, written->commit, stage);
    } else {
      // A commit pushed to a pull request's ref: only while it is open.
      if (!PrOpen(repo->id, ref)) {
        return SendError(res, 409, "Conflict", "this pull request is merged or closed: it takes no more commits");
      }
      moved = store->UpdateRef(repo->id, ref, branch.released.value_or(GitOid()), written->commit);
    }
    if (moved.code() == StatusCode::kFailedPrecondition) {
      // The branch moved meanwhile: land on top of it again, or (with parentCommit) refuse.
      if (rebase && attempt < kCommitAttempts && ReadBranch(repo->id, ref, &branch).ok() && branch.head()) {
        head = branch.head();
        continue;
      }
      return SendError(res, 412, "PreconditionFailed", "A commit has happened since. Please refresh and try again.");
    }
    if (!moved.ok()) return SendWriteError(res, moved);
    if (!create_pr && ref.starts_with("refs/pr/")) RecordPrCommit(repo->id, ref, written->commit, cb.summary, who->token_name);
    if (stage) {
      const std::string held = "refs/held/" + ref.substr(11);
      LOG(Info) << "staged commit " << written->commit.hex() << " to " << repo->id.str() << " " << ref
                << " for review: " << report.Summary();
      const std::string why = "held for review by this node's policy: " + report.Summary();
      res.set_header("X-Hubnode-Held", why.substr(0, 1000));
      return SendJson(res, {{"commitUrl", base + "/commit/" + written->commit.hex()},
                            {"commitOid", written->commit.hex()},
                            {"success", true},
                            {"changed", true},
                            {"bytes", bytes},
                            {"held", {{"reason", why},
                                      {"ref", held},
                                      {"release", "hubnode approve " + repo->id.str() + "@" + held},
                                      {"trust", report.ToJson()}}}});
    }
    LOG(Info) << "commit " << written->commit.hex() << " to " << repo->id.str() << " " << target << ": "
              << cb.bytes << " bytes, " << cb.new_raw << " new";
    json out = {{"commitUrl", base + "/commit/" + written->commit.hex()},
                {"commitOid", written->commit.hex()},
                {"success", true},
                {"changed", written->changed},
                {"bytes", bytes}};
    if (!pr_url.empty()) {
      out["pullRequestUrl"] = pr_url;
      out["ref"] = target;
    }
    return SendJson(res, out);
  }
}

Status WriteApi::Impl::ReadBranch(const store::RepoId& repo, const std::string& ref, BranchState* out) {
  *out = BranchState();
  auto read = [&](const std::string& name, bool staged, std::optional<GitOid>* to) -> Status {
    auto r = staged ? store->ResolveStaged(repo, name) : store->Resolve(repo, name);
    if (r.ok()) *to = *r;
    return r.ok() || r.status().code() == StatusCode::kNotFound ? OkStatus() : r.status();
  };
  RETURN_IF_ERROR(read(ref, false, &out->released));
  if (ref.starts_with("refs/heads/")) RETURN_IF_ERROR(read("refs/held/" + ref.substr(11), true, &out->held));
  return OkStatus();
}

std::optional<GitOid> WriteApi::Impl::Released(const store::RepoId& repo, const std::string& ref) {
  auto r = store->Resolve(repo, ref);
  return r.ok() ? std::optional<GitOid>(*r) : std::nullopt;
}

TrustReport WriteApi::Impl::Assess(const store::RepoId& as, const GitOid& commit, const std::optional<Principal>& who) {
  auto trust = options.trust_path.empty() ? Result<verify::TrustStore>(verify::TrustStore{})
                                          : TrustFile(options.trust_path).Load();
  if (!trust.ok()) {
    TrustReport r;
    r.verdict = verify::Verdict::kDeny;
    r.refusals.push_back("the trust store is unreadable");
    return r;
  }
  auto visible = [who](const store::RepoInfo& base) {
    return base.visibility != store::Visibility::kPrivate || CanRead(who, base);
  };
  return hub::Assess(CommitView(*store, as, commit), as.str(), NodeContext(*trust, &matcher, store, visible));
}

bool WriteApi::Impl::HeadsAllowed(const store::RepoId& from, const store::RepoId& as,
                                  const std::optional<Principal>& who, httplib::Response& res) {
  auto refs = store->ListRefs(from);
  if (!refs.ok()) {
    SendStatus(res, refs.status());
    return false;
  }
  for (const store::RefInfo& ref : *refs) {
    if (!ref.name.starts_with("refs/heads/") && !ref.name.starts_with("refs/tags/")) continue;
    TrustReport report = Assess(as, ref.commit, who);
    if (report.verdict != verify::Verdict::kDeny) continue;
    const std::string why = ref.name + " would not be allowed as " + as.str() + ": " + report.Summary();
    SendJson(res, {{"error", "Refused by this node's policy: " + why}, {"rules", report.refusals}, {"trust", report.ToJson()}},
             403);
    res.set_header("X-Error-Code", "PolicyRefused");
    res.set_header("X-Error-Message", ("Refused by this node's policy: " + why).substr(0, 1000));
    return false;
  }
  return true;
}

}  // namespace hubnode::hub

// Git over smart HTTP (docs/http-api.md "Git"): the ref advertisement, upload-pack (clone and
// fetch, protocol v2 and v0) and receive-pack (push). Pushes go through the same rules as API
// commits: who may write where, LFS objects held for the repo, the node's policy before a ref
// moves (staging for review), pull requests open. The protocol itself is hub/git.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <set>

#include "base/file.h"
#include "base/log.h"
#include "hub/git/connectivity.h"
#include "hub/git/pack.h"
#include "hub/git/pkt_line.h"
#include "hub/git/upload_pack.h"
#include "hub/write/write_api_impl.h"
#include "store/git_objects.h"

namespace hubnode::hub {

using namespace wapi;

void wapi::GitAuthChallenge(httplib::Response& res) {
  res.set_header("WWW-Authenticate", "Basic realm=\"hubnode\"");
  res.set_header("LFS-Authenticate", "Basic realm=\"hubnode\"");
}

namespace {

constexpr uint64_t kMaxUploadPackBody = 16 << 20;
constexpr uint64_t kMaxCommandBytes = 4 << 20;
constexpr size_t kMaxCommands = 1000;
constexpr int kMaxConcurrentFetches = 16;
constexpr uint64_t kMaxPushPaths = 1'000'000;  // file paths checked in one push, over all its commits

bool ValidGitRef(const std::string& ref) {
  auto component_ok = [](std::string_view c) {
    return !c.empty() && c[0] != '.' && !c.ends_with(".lock") && c.find("..") == std::string_view::npos;
  };
  std::string_view rest;
  if (ref.starts_with("refs/heads/")) rest = std::string_view(ref).substr(11);
  else if (ref.starts_with("refs/tags/")) rest = std::string_view(ref).substr(10);
  else if (ref.starts_with("refs/pr/")) {
    std::string_view n = std::string_view(ref).substr(8);
    return !n.empty() && n.size() < 10 && n[0] != '0' && std::all_of(n.begin(), n.end(), ::isdigit);
  } else {
    return false;
  }
  if (rest.empty() || rest.size() > 200 || rest.back() == '/' || rest.back() == '.') return false;
  for (char c : rest) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' || c == '[' ||
        c == '\\')
      return false;
  }
  if (rest.find("@{") != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    if (!component_ok(rest.substr(start, end - start))) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::optional<store::RepoInfo> WriteApi::Impl::GitRepo(const WRoute& r, const std::optional<Principal>& who,
                                                      httplib::Response& res) {
  auto id = store::RepoId::Parse(r.repo);
  std::optional<store::RepoInfo> info;
  if (id.ok()) {
    auto got = store->GetRepo(*id);
    if (got.ok() && CanRead(who, *got)) info = *got;
  }
  if (!info) {
    // As on the Hub: one answer for missing and hidden repos. Anonymous callers are asked for
    // credentials (git then asks its credential helper; the token is the password).
    if (!who) GitAuthChallenge(res);
    SendError(res, who ? 404 : 401, "RepoNotFound", "Repository not found");
    return std::nullopt;
  }
  return info;
}

bool WriteApi::Impl::DeniedNow(const store::RepoInfo& repo, const GitOid& commit, const std::optional<Principal>& who) {
  std::string trust_text;
  if (!options.trust_path.empty()) trust_text = ReadFileToString(options.trust_path, 16 << 20).value_or("");
  const std::string view = !who ? "-" : who->ns.empty() ? "*" : who->ns;
  const std::string key = repo.id.str() + "\n" + commit.hex() + "\n" + view + "\n" + Sha256Of(trust_text).hex();
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(verdict_mu);
    auto it = verdicts.find(key);
    if (it != verdicts.end() && now - it->second.second < std::chrono::seconds(30)) return it->second.first;
  }
  const bool denied = Assess(repo.id, commit, who).verdict == verify::Verdict::kDeny;
  std::lock_guard<std::mutex> lock(verdict_mu);
  if (verdicts.size() >= 4096) verdicts.clear();
  verdicts[key] = {denied, now};
  return denied;
}

git::RepoView WriteApi::Impl::GitView(const store::RepoInfo& repo, const std::optional<Principal>& who, bool fetch) {
  git::RepoView view;
  view.store = store;
  view.head = "refs/heads/" + repo.default_branch;
  auto refs = store->ListRefs(repo.id);
  if (!refs.ok()) return view;
  const bool writer = CanWrite(who, repo.id);
  std::map<std::string, GitOid> held;
  for (const auto& rf : *refs) {
    if (rf.name.starts_with("refs/held/")) held["refs/heads/" + rf.name.substr(10)] = rf.commit;
  }
  std::set<std::string> names;
  for (const auto& rf : *refs) {
    if (!rf.name.starts_with("refs/heads/") && !rf.name.starts_with("refs/tags/") && !rf.name.starts_with("refs/pr/")) continue;
    store::RefInfo out = rf;
    // The repo's writers see a branch at its staged head, as the API shows it to them.
    if (writer && held.count(rf.name)) out.commit = held[rf.name];
    names.insert(rf.name);
    view.refs.push_back(out);
  }
  if (writer) {
    for (const auto& [name, oid] : held) {
      if (!names.count(name)) view.refs.push_back({name, oid});
    }
  }
  std::sort(view.refs.begin(), view.refs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  if (fetch) {
    // A head the policy denies today is not served (downloads answer it 451): not advertised,
    // and nothing is reachable through it.
    std::erase_if(view.refs, [&](const store::RefInfo& rf) { return DeniedNow(repo, rf.commit, who); });
  }
  return view;
}

void WriteApi::Impl::GitInfoRefs(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                                 const std::optional<Principal>& who) {
  const std::string service = req.get_param_value("service");
  res.set_header("Cache-Control", "no-cache");
  if (service != "git-upload-pack" && service != "git-receive-pack") {
    // The dumb protocol is not served.
    return SendError(res, 403, "Forbidden", "only the smart HTTP protocol is served (git 1.6.6 or later)");
  }
  auto repo = GitRepo(r, who, res);
  if (!repo) return;
  if (service == "git-receive-pack") {
    if (!who) {
      GitAuthChallenge(res);
      return SendError(res, 401, "Unauthorized", "pushing needs a write token (as the password)");
    }
    bool writer = false;
    if (!ContributableRepo(r, who, &writer, res)) return;
    git::RepoView view = GitView(*repo, who, /*fetch=*/false);
    std::string caps = "report-status report-status-v2 delete-refs side-band-64k quiet ofs-delta no-thin "
                       "object-format=sha1 agent=hubnode/1";
    std::string out = git::Pkt("# service=git-receive-pack\n") + git::Flush();
    bool first = true;
    for (const auto& rf : view.refs) {
      std::string line = rf.commit.hex() + " " + rf.name;
      if (first) line += std::string(1, '\0') + caps;
      first = false;
      out += git::Pkt(line + "\n");
    }
    if (first) out += git::Pkt(std::string(40, '0') + " capabilities^{}" + std::string(1, '\0') + caps + "\n");
    out += git::Flush();
    res.set_content(out, "application/x-git-receive-pack-advertisement");
    return;
  }
  git::RepoView view = GitView(*repo, who);
  const bool v2 = req.get_header_value("Git-Protocol").find("version=2") != std::string::npos;
  res.set_content(v2 ? git::AdvertiseV2() : git::AdvertiseUploadPackV0(view), "application/x-git-upload-pack-advertisement");
}

void WriteApi::Impl::GitUploadPack(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                                   const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  auto repo = GitRepo(r, who, res);
  if (!repo) return;
  // Fetches stream from workers: a bound on them leaves workers for everything else.
  struct Slot {
    std::atomic<int>* n;
    ~Slot() { n->fetch_sub(1); }
  };
  if (git_fetches.fetch_add(1) >= kMaxConcurrentFetches) {
    git_fetches.fetch_sub(1);
    res.set_header("Retry-After", "5");
    return SendError(res, 503, "Busy", "too many git fetches at once; retry shortly");
  }
  std::shared_ptr<Slot> slot(new Slot{&git_fetches});
  auto body = std::make_shared<std::string>();
  if (!ReadBody(reader, kMaxUploadPackBody, body.get())) {
    return SendError(res, 413, "PayloadTooLarge", "the fetch request is too large");
  }
  auto view = std::make_shared<git::RepoView>(GitView(*repo, who));
  const bool v2 = req.get_header_value("Git-Protocol").find("version=2") != std::string::npos;
  res.set_header("Cache-Control", "no-cache");
  const std::string name = repo->id.str();
  res.set_chunked_content_provider("application/x-git-upload-pack-result",
                                   [view, body, v2, name, slot](size_t, httplib::DataSink& sink) {
                                     auto write = [&sink](std::string_view data) {
                                       return sink.write(data.data(), data.size());
                                     };
                                     git::UploadLimits limits;
                                     Status s = v2 ? git::ServeV2(*view, *body, limits, write)
                                                   : git::ServeV0(*view, *body, limits, write);
                                     if (!s.ok() && s.code() != StatusCode::kCancelled) {
                                       LOG(Info) << "git fetch of " << name << ": " << s.ToString();
                                     }
                                     sink.done();
                                     return true;
                                   });
}

// ---- push -------------------------------------------------------------------------------------

namespace {

struct PushCommand {
  GitOid old_id, new_id;
  std::string ref;
  std::string error;  // set: refused, with this reason
  std::string note;   // a message for the pusher (held for review ...)
};

// A temporary file removed when it goes.
struct TempFile {
  std::string path;
  FILE* f = nullptr;
  ~TempFile() {
    if (f) std::fclose(f);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void WriteApi::Impl::GitReceivePack(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  (void)req;
  if (!who) {
    GitAuthChallenge(res);
    return SendError(res, 401, "Unauthorized", "pushing needs a write token (as the password)");
  }
  auto seen = GitRepo(r, who, res);
  if (!seen) return;
  bool writer = false;
  auto repo = ContributableRepo(r, who, &writer, res);
  if (!repo) return;

  // The commands, then the pack, spooled to disk as it arrives (never whole in memory).
  std::string head;
  bool commands_done = false;
  TempFile pack;
  std::error_code ec;
  fs::create_directories(options.uploads_dir, ec);
  pack.path = options.uploads_dir + "/push-" + std::to_string(::getpid()) + "-" +
              std::to_string(reinterpret_cast<uintptr_t>(&pack)) + "-" + std::to_string(std::time(nullptr));
  pack.f = std::fopen(pack.path.c_str(), "wb");
  if (!pack.f) return SendError(res, 500, "InternalError", "cannot spool the push");
  uint64_t pack_bytes = 0;
  std::string too_much;
  std::vector<PushCommand> commands;
  std::string caps;
  size_t parsed = 0;  // bytes of `head` already parsed
  size_t lines = 0;
  // Parses the complete pkt-lines of `head` past `parsed`; a partial line waits for more bytes.
  auto parse_commands = [&]() -> Status {
    while (!commands_done) {
      if (head.size() - parsed < 4) return OkStatus();
      size_t len = 0;
      for (size_t k = 0; k < 4; ++k) {
        char ch = head[parsed + k];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0) return InvalidArgumentError("malformed pkt-line in the push commands");
        len = len * 16 + static_cast<size_t>(v);
      }
      if (len == 0) {
        commands_done = true;
        std::string_view rest = std::string_view(head).substr(parsed + 4);
        if (!rest.empty()) {
          if (std::fwrite(rest.data(), 1, rest.size(), pack.f) != rest.size()) return InternalError("spool write failed");
          pack_bytes += rest.size();
        }
        head.clear();
        return OkStatus();
      }
      if (len < 4 || len > 65520) return InvalidArgumentError("malformed pkt-line in the push commands");
      if (head.size() - parsed < len) return OkStatus();
      std::string_view t = std::string_view(head).substr(parsed + 4, len - 4);
      parsed += len;
      if (++lines > kMaxCommands + 100) return ResourceExhaustedError("too many lines in the push commands");
      if (size_t nul = t.find('\0'); nul != std::string_view::npos) {
        caps = std::string(t.substr(nul + 1));
        t = t.substr(0, nul);
      }
      if (!t.empty() && t.back() == '\n') t.remove_suffix(1);
      if (t.starts_with("shallow ")) continue;  // a push from a shallow clone: its boundary
      if (t.size() < 83 || t[40] != ' ' || t[81] != ' ') return InvalidArgumentError("malformed push command");
      PushCommand c;
      auto o = GitOid::FromHex(t.substr(0, 40));
      auto n = GitOid::FromHex(t.substr(41, 40));
      if (!o.ok() || !n.ok()) return InvalidArgumentError("malformed object id in a push command");
      c.old_id = *o;
      c.new_id = *n;
      c.ref = std::string(t.substr(82));
      if (commands.size() >= kMaxCommands) return ResourceExhaustedError("too many ref updates in one push");
      commands.push_back(std::move(c));
    }
    return OkStatus();
  };
  Status parse_status;
  bool ok = true;
  reader([&](const char* data, size_t n) {
    if (commands_done) {
      if (pack_bytes + n > options.max_push) {
        too_much = "the push is larger than this node accepts (" + std::to_string(options.max_push) + " bytes)";
        return false;
      }
      if (std::fwrite(data, 1, n, pack.f) != n) {
        ok = false;
        return false;
      }
      pack_bytes += n;
      return true;
    }
    head.append(data, n);
    if (head.size() > kMaxCommandBytes) {
      too_much = "the push's commands are too long";
      return false;
    }
    parse_status = parse_commands();
    return parse_status.ok();
  });
  if (!too_much.empty()) return SendError(res, 413, "PayloadTooLarge", too_much);
  if (!ok) return SendError(res, 507, "InsufficientStorage", "cannot spool the push");
  if (!parse_status.ok()) return SendError(res, 400, "BadRequest", parse_status.message());
  if (!commands_done) return SendError(res, 400, "BadRequest", "the push ends before its commands do");
  std::fflush(pack.f);

  const bool sideband = caps.find("side-band-64k") != std::string::npos;
  std::string messages;  // for the pusher, on side band 2 ("remote: ...")
  auto say = [&](const std::string& m) { messages += "hubnode: " + m + "\n"; };
  const std::string default_ref = "refs/heads/" + repo->default_branch;

  // Who may update what is decided before a byte of the pack is stored: a push whose every
  // command is refused stores nothing.
  for (PushCommand& c : commands) {
    const std::string& ref = c.ref;
    if (!ValidGitRef(ref)) {
      c.error = "only refs/heads/*, refs/tags/* and refs/pr/N are accepted";
    } else if (!writer && !(ref.starts_with("refs/pr/") && PrAuthor(repo->id, ref) == who->token_name)) {
      c.error = "this token may push to the pull requests it opened on " + repo->id.str() + ", nothing else";
    } else if (ref.starts_with("refs/pr/") && !PrOpen(repo->id, ref)) {
      c.error = "no open pull request at " + ref + " (open one through the API first)";
    } else if (c.new_id.IsZero() && (!writer || ref.starts_with("refs/pr/"))) {
      c.error = "deleting " + ref + " is not allowed";
    } else if (c.new_id.IsZero() && ref == default_ref) {
      c.error = "the default branch cannot be deleted";
    }
  }
  const bool any_update = std::any_of(commands.begin(), commands.end(),
                                      [](const PushCommand& c) { return c.error.empty() && !c.new_id.IsZero(); });

  // Unpack: every object hashed, checked and stored (unreferenced until a ref moves).
  std::string unpack = "ok";
  std::set<GitOid> in_pack;
  if (any_update && pack_bytes > 0) {
    git::PackLimits limits;
    limits.max_object_bytes = options.max_push_object;
    limits.max_total_bytes = options.max_push_inflated;
    auto summary = git::UnpackToStore(*store, pack.path, limits, &in_pack);
    if (!summary.ok()) {
      unpack = std::string(summary.status().message().substr(0, 300));
      LOG(Info) << "push to " << repo->id.str() << " refused: " << summary.status().ToString();
    } else {
      say("received " + std::to_string(summary->objects) + " objects (" + std::to_string(summary->deltas) + " deltas)");
    }
  }

  // What every reader sees (released refs), and what the writers see.
  const git::RepoView released_view = GitView(*repo, std::nullopt, /*fetch=*/false);
  std::set<Sha256Digest> own;
  bool own_loaded = false;
  uint64_t path_budget = kMaxPushPaths;
  git::UploadLimits walk_limits;
  for (PushCommand& c : commands) {
    if (!c.error.empty()) continue;
    if (unpack != "ok") {
      c.error = "unpacker error";
      continue;
    }
    const std::string& ref = c.ref;
    const bool is_branch = ref.starts_with("refs/heads/"), is_pr = ref.starts_with("refs/pr/");
    BranchState branch;
    if (Status s = ReadBranch(repo->id, ref, &branch); !s.ok()) {
      c.error = std::string(s.message().substr(0, 200));
      continue;
    }
    std::optional<GitOid> current = is_branch ? branch.head() : branch.released;
    if (c.old_id.IsZero() ? current.has_value() : current != c.old_id) {
      c.error = "stale info: " + ref + " is at " + (current ? current->hex() : std::string("nothing")) + " (fetch first)";
      continue;
    }
    if (c.new_id.IsZero()) {
      Status s = store->UpdateRef(repo->id, ref, branch.released.value_or(GitOid()), GitOid());
      if (s.ok() && is_branch) DropHeld(repo->id, ref.substr(11));
      if (!s.ok()) c.error = std::string(s.message().substr(0, 200));
      continue;
    }
    // Connectivity: the new history is this push's objects and, beyond them, objects readers of
    // this repo already see (never another repo's, never one staged elsewhere). Objects outside
    // the push are looked up only as members of this repo: nothing tells whether they exist.
    auto history = git::WalkReceived(*store, c.new_id, in_pack, walk_limits.max_objects);
    if (!history.ok()) {
      c.error = std::string(history.status().message().substr(0, 200));
      continue;
    }
    bool connected = git::CheckAllReachable(released_view, history->external, walk_limits).ok();
    if (!connected && writer && is_branch) {
      // A writer may build on what is staged on this very branch (landing releases or re-stages it).
      git::RepoView staged = released_view;
      if (branch.held) staged.refs.push_back({"refs/held/" + ref.substr(11), *branch.held});
      connected = git::CheckAllReachable(staged, history->external, walk_limits).ok();
    }
    if (!connected) {
      c.error = "the pushed history names objects that are neither in the push nor released in " + repo->id.str();
      continue;
    }
    auto commit = store->GetCommit(c.new_id);
    if (!commit.ok()) {
      c.error = "missing commit " + c.new_id.hex() + " (annotated tags are not accepted)";
      continue;
    }
    std::string bad;
    // LFS pointers must name objects this node holds for this repo.
    for (const auto& blob : history->blobs) {
      auto obj = store->ReadGitObject(blob);
      if (!obj.ok() || obj->content) continue;
      auto ptr = store::ParseLfsPointerText(obj->body);  // (sha256, size)
      if (!ptr) continue;
      if (!own_loaded) {
        own = RepoObjects(repo->id);
        own_loaded = true;
      }
      auto held = store->HasContent(ptr->first, ptr->second);
      if (!held.ok() || !*held || !(own.count(ptr->first) || Uploaded(repo->id.str(), ptr->first))) {
        bad = "LFS object " + ptr->first.hex() + " is not on this node for " + repo->id.str() +
              " (git lfs push uploads it; is git-lfs installed?)";
        break;
      }
    }
    // Paths of every new commit, within one budget for the push (no tree bomb expands).
    for (const auto& nc : history->commits) {
      if (!bad.empty()) break;
      if (Status s = git::CheckPaths(*store, nc, &path_budget); !s.ok()) bad = std::string(s.message().substr(0, 200));
    }
    if (!bad.empty()) {
      c.error = bad;
      continue;
    }
    // Fast-forward unless a writer forces it.
    if (current) {
      // A fast-forward: the old head is in the new head's history.
      bool ff = false;
      std::deque<GitOid> q{c.new_id};
      std::set<GitOid> seen_c{c.new_id};
      while (!q.empty() && seen_c.size() < walk_limits.max_walk) {
        GitOid x = q.front();
        q.pop_front();
        if (x == *current) {
          ff = true;
          break;
        }
        auto ci = store->GetCommit(x);
        if (!ci.ok()) break;
        for (const auto& p : ci->parents) {
          if (seen_c.insert(p).second) q.push_back(p);
        }
      }
      if (!ff && !writer) {
        c.error = "non-fast-forward: only the repo's writers may force a push";
        continue;
      }
      if (!ff) say(ref + ": forced update by " + who->token_name);
    }
    // Policy before visibility, as for an API commit: every new commit is assessed (a denied one
    // in the middle of the history would be served by id otherwise); the head decides staging.
    std::string denied;
    for (const auto& nc : history->commits) {
      if (nc == c.new_id) continue;
      TrustReport r = Assess(repo->id, nc, who);
      if (r.verdict == verify::Verdict::kDeny) {
        denied = nc.hex().substr(0, 12) + ": " + r.Summary();
        for (const auto& rule : r.refusals) say("  rule: " + rule);
        break;
      }
    }
    if (!denied.empty()) {
      say("refused by this node's policy: commit " + denied);
      c.error = "refused by policy: commit " + denied.substr(0, 200);
      continue;
    }
    TrustReport report = Assess(repo->id, c.new_id, who);
    if (report.verdict == verify::Verdict::kDeny) {
      say("refused by this node's policy: " + report.Summary());
      for (const auto& rule : report.refusals) say("  rule: " + rule);
      c.error = "refused by policy: " + report.Summary().substr(0, 200);
      continue;
    }
    if (report.verdict == verify::Verdict::kReview && !is_branch) {
      say("needs review by this node's policy: " + report.Summary());
      c.error = "needs review (only branches hold commits for review)";
      continue;
    }
    if (Status s = store->IndexCommit(c.new_id); !s.ok()) {
      c.error = std::string(s.message().substr(0, 200));
      continue;
    }
    const bool stage = report.verdict == verify::Verdict::kReview;
    Status moved;
    if (is_branch) {
      moved = LandOnBranch(repo->id, ref, branch, c.new_id, stage);
    } else {
      moved = store->UpdateRef(repo->id, ref, branch.released.value_or(GitOid()), c.new_id);
    }
    if (!moved.ok()) {
      c.error = moved.code() == StatusCode::kFailedPrecondition ? "the ref moved meanwhile (fetch first)"
                                                                 : std::string(moved.message().substr(0, 200));
      continue;
    }
    if (is_pr) RecordPrCommit(repo->id, ref, c.new_id, commit->Title(), who->token_name);
    if (stage) {
      say(ref + " is held for review: " + report.Summary());
      say("its writers see it now; everyone else once an operator runs `hubnode approve " + repo->id.str() + "@" +
          ref.substr(11) + "`");
    }
    LOG(Info) << "push to " << repo->id.str() << " " << ref << " -> " << c.new_id.hex() << (stage ? " (held)" : "");
  }

  std::string report = git::Pkt("unpack " + unpack + "\n");
  for (const auto& c : commands) {
    std::string reason = c.error;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    report += git::Pkt(c.error.empty() ? "ok " + c.ref + "\n" : "ng " + c.ref + " " + reason + "\n");
  }
  report += git::Flush();
  std::string out;
  if (sideband) {
    if (!messages.empty()) out += git::SideBand(2, messages);
    out += git::SideBand(1, report);
    out += git::Flush();
  } else {
    out = report;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_content(out, "application/x-git-receive-pack-result");
}

}  // namespace hubnode::hub

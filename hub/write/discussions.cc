// Discussions and pull requests, as the Hub's API serves them (docs/http-api.md "Discussions"):
// list, open, details with events and a diff, comment, edit and hide a comment, rename, change
// status, and merge a pull request into its target branch. Each discussion is one record of its
// repo (store RepoData "discussions/NNNNNNN"), moved and deleted with the repo; a pull request's
// commits live on refs/pr/N.
//
// Who may do what: reading follows the repo (a private repo's discussions are as absent as the
// repo); any token holder who can read a public repo opens discussions and pull requests and
// comments; a comment's author or a namespace writer edits or hides it; the discussion's author or
// a writer renames it; namespace writers change status and merge. Merging runs the node's policy
// on the merged result: denied is refused (451) and changes nothing; one that needs review is
// staged on the target branch as any commit would be.
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <unordered_set>

#include "base/hex.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "hub/write/write_api_impl.h"

namespace hubnode::hub {

using namespace wapi;

namespace {

constexpr size_t kPageSize = 50;
constexpr size_t kMaxTitle = 200;
constexpr size_t kMaxComment = 16384;
constexpr size_t kMaxEvents = 1000;
constexpr size_t kMaxDiffBytes = 1 << 20;
constexpr size_t kMaxDiffFileBytes = 256 << 10;
constexpr size_t kMaxAncestors = 100000;
constexpr size_t kMaxRecordBytes = 256 << 10;      // one discussion's record
constexpr size_t kWriterReserve = 16 << 10;        // of it, kept for writers' status changes and merges
constexpr size_t kMaxDiscussions = 10000;          // per repo
constexpr size_t kMaxOpenPerAuthor = 50;           // open discussions of one token per repo
constexpr size_t kMaxDiffFiles = 1000;

std::string RecordKey(int num) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "discussions/%07d", num);
  return buf;
}

std::string IndexKey(int num) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "discussion-index/%07d", num);
  return buf;
}

std::string NewEventId() {
  unsigned char b[12];
  RAND_bytes(b, sizeof b);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Comments are shown as text: the HTML form escapes everything, paragraph per blank line.
std::string CommentHtml(std::string_view raw) {
  std::string out = "<p>";
  std::string text = HtmlEscape(raw);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && i + 1 < text.size() && text[i + 1] == '\n') {
      out += "</p>\n<p>";
      while (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out += text[i];
    }
  }
  return out + "</p>";
}

void SendSaveError(httplib::Response& res, const Status& s) {
  if (s.code() == StatusCode::kFailedPrecondition) return SendError(res, 409, "DiscussionFull", s.message());
  SendWriteError(res, s);
}

json Author(const std::string& name) { return {{"name", name}, {"type", "user"}, {"fullname", name}}; }

json Event(const std::string& type, const std::string& author, json data) {
  return {{"id", NewEventId()}, {"type", type}, {"createdAt", IsoTime(std::time(nullptr))},
          {"author", Author(author)}, {"data", std::move(data)}};
}

json CommentEvent(const std::string& author, const std::string& raw) {
  const std::string now = IsoTime(std::time(nullptr));
  json latest = {{"raw", raw}, {"updatedAt", now}, {"author", Author(author)}};
  return Event("comment", author,
               {{"edited", false}, {"hidden", false}, {"latest", latest}, {"numEdits", 0},
                {"editors", json::array({author})}, {"history", json::array({latest})}});
}

// An event as clients read it: a comment's text also as HTML (rendered here, not stored).
json Rendered(json e) {
  if (e.value("type", "") != "comment" || !e.contains("data")) return e;
  json& d = e["data"];
  if (d.contains("latest")) d["latest"]["html"] = CommentHtml(d["latest"].value("raw", ""));
  if (d.contains("history")) {
    for (auto& h : d["history"]) h["html"] = CommentHtml(h.value("raw", ""));
  }
  return e;
}

bool ValidText(const std::string& s) {
  // UTF-8 only: the record is JSON, and a reader's client decodes it.
  json probe = s;
  try {
    (void)probe.dump();
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

// Parses "N" or "N/what...": the discussion number and the rest.
bool ParseNum(const std::string& rest, int* num, std::string* what) {
  size_t slash = rest.find('/');
  std::string n = rest.substr(0, slash);
  auto r = std::from_chars(n.data(), n.data() + n.size(), *num);
  if (r.ec != std::errc() || r.ptr != n.data() + n.size() || *num <= 0 || *num > kMaxPrNumber) return false;
  *what = slash == std::string::npos ? "" : rest.substr(slash + 1);
  return true;
}

std::string Lines(std::string_view text, char mark) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    out += mark;
    out += line;
    out += '\n';
    if (nl == std::string_view::npos) {
      out += "\\ No newline at end of file\n";
      break;
    }
    start = nl + 1;
  }
  return out;
}

size_t CountLines(std::string_view text) {
  if (text.empty()) return 0;
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + (text.back() == '\n' ? 0 : 1);
}

}  // namespace

// ---- shared with commits ---------------------------------------------------------------------

Status WriteApi::Impl::LandOnBranch(const store::RepoId& repo, const std::string& ref, const BranchState& branch,
                                    const GitOid& commit, bool stage) {
  if (!ref.starts_with("refs/heads/")) return InvalidArgumentError("only a branch takes commits this way");
  // One branch move at a time per node: its two refs (released, held) move together.
  std::lock_guard<std::mutex> lock(branch_mu);
  if (Released(repo, ref) != branch.released) return FailedPreconditionError("the branch moved");
  const std::string held = "refs/held/" + ref.substr(11);
  if (stage) {
    RETURN_IF_ERROR(store->UpdateRef(repo, held, branch.held.value_or(GitOid()), commit));
    if (!branch.held && Released(repo, ref) != branch.released) {
      (void)store->UpdateRef(repo, held, commit, GitOid());
      return FailedPreconditionError("the branch moved");
    }
    return OkStatus();
  }
  RETURN_IF_ERROR(store->UpdateRef(repo, ref, branch.released.value_or(GitOid()), commit));
  if (branch.held) {
    if (Status d = store->UpdateRef(repo, held, *branch.held, GitOid()); !d.ok()) {
      LOG(Warning) << "could not clear " << held << " of " << repo.str() << ": " << d.ToString();
    } else {
      LOG(Info) << "released the commits staged on " << repo.str() << " " << ref;
    }
  }
  return OkStatus();
}

Result<int> WriteApi::Impl::NextDiscussionNumber(const store::RepoId& repo) {
  int next = 1;
  ASSIGN_OR_RETURN(auto refs, store->ListRefs(repo));
  for (const auto& rf : refs) {
    if (!rf.name.starts_with("refs/pr/")) continue;
    int n = 0;
    std::string num = rf.name.substr(8);
    auto p = std::from_chars(num.data(), num.data() + num.size(), n);
    if (p.ec == std::errc() && n >= next) next = n + 1;
  }
  ASSIGN_OR_RETURN(auto index, store->ListRepoData(repo, "discussion-index/"));
  if (index.size() >= kMaxDiscussions) return OutOfRangeError("this repo has 10,000 discussions, the most it keeps");
  if (!index.empty()) {
    int n = 0;
    const std::string& last = index.back().first;
    auto p = std::from_chars(last.data() + 17, last.data() + last.size(), n);
    if (p.ec == std::errc() && n >= next) next = n + 1;
  }
  if (next > kMaxPrNumber) return OutOfRangeError("too many discussions");
  return next;
}

Status WriteApi::Impl::SaveDiscussion(const store::RepoId& repo, const json& d, bool writer) {
  std::string text = d.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxRecordBytes - (writer ? 0 : kWriterReserve)) {
    return FailedPreconditionError("this discussion is full (256 KiB of events)");
  }
  // Beside each record, its summary: what listings read, a few hundred bytes each.
  size_t comments = 0;
  for (const auto& e : d["events"]) comments += e.value("type", "") == "comment";
  json summary = {{"num", d["num"]},         {"title", d["title"]},   {"status", d["status"]},
                  {"createdAt", d["createdAt"]}, {"isPullRequest", d["isPullRequest"]},
                  {"author", d.value("author", "deleted")}, {"numComments", comments}};
  const int num = d["num"].get<int>();
  return store->PutRepoData(repo, {{RecordKey(num), std::move(text)},
                                   {IndexKey(num), summary.dump(-1, ' ', false, json::error_handler_t::replace)}});
}

Result<json> WriteApi::Impl::LoadDiscussion(const store::RepoId& repo, int num) {
  ASSIGN_OR_RETURN(auto text, store->GetRepoData(repo, RecordKey(num)));
  if (!text) return NotFoundError("Discussion not found");
  json d = JsonDepthWithin(*text) ? json::parse(*text, nullptr, false) : json(json::value_t::discarded);
  if (!d.is_object()) return DataLossError("discussion record " + std::to_string(num) + " is damaged");
  return d;
}

Status WriteApi::Impl::RecordPullRequest(const store::RepoId& repo, int num, const std::string& title,
                                         const std::string& description, const std::string& author,
                                         const std::string& base, const GitOid& commit, const std::string& subject) {
  json d = {{"num", num},
            {"title", title.substr(0, kMaxTitle)},
            {"author", author},
            {"createdAt", IsoTime(std::time(nullptr))},
            {"status", "open"},
            {"isPullRequest", true},
            {"base", base},
            {"events", json::array()}};
  d["events"].push_back(CommentEvent(author, description.empty() ? subject : description.substr(0, kMaxComment)));
  d["events"].push_back(Event("commit", author, {{"subject", subject.substr(0, kMaxTitle)}, {"oid", commit.hex()}}));
  return SaveDiscussion(repo, d, true);
}

std::string WriteApi::Impl::PrAuthor(const store::RepoId& repo, const std::string& pr_ref) {
  int num = 0;
  std::string rest;
  if (!ParseNum(pr_ref.substr(8), &num, &rest) || !rest.empty()) return "";
  auto d = LoadDiscussion(repo, num);
  return d.ok() ? d->value("author", "") : "";
}

bool WriteApi::Impl::PrOpen(const store::RepoId& repo, const std::string& pr_ref) {
  int num = 0;
  std::string rest;
  if (!ParseNum(pr_ref.substr(8), &num, &rest) || !rest.empty()) return false;
  auto d = LoadDiscussion(repo, num);
  // A refs/pr/N without a record (made before discussions existed) takes commits as before.
  if (!d.ok()) return d.status().code() == StatusCode::kNotFound;
  const std::string status = d->value("status", "");
  return status == "open" || status == "draft";
}

void WriteApi::Impl::RecordPrCommit(const store::RepoId& repo, const std::string& pr_ref, const GitOid& commit,
                                    const std::string& subject, const std::string& author) {
  int num = 0;
  std::string rest;
  if (!ParseNum(pr_ref.substr(8), &num, &rest) || !rest.empty()) return;
  std::lock_guard<std::mutex> lock(pr_mu);
  auto d = LoadDiscussion(repo, num);
  if (!d.ok() || (*d)["events"].size() >= kMaxEvents) return;
  (*d)["events"].push_back(Event("commit", author, {{"subject", subject.substr(0, kMaxTitle)}, {"oid", commit.hex()}}));
  if (Status s = SaveDiscussion(repo, *d, true); !s.ok()) LOG(Warning) << "discussion " << num << ": " << s.ToString();
}

// ---- the routes ------------------------------------------------------------------------------

std::optional<store::RepoInfo> WriteApi::Impl::ReadableRepo(const WRoute& r, const std::optional<Principal>& who,
                                                            httplib::Response& res) {
  return FindRepo(r, who, /*private_only=*/false, res);
}

json WriteApi::Impl::DiscussionSummary(const store::RepoInfo& repo, const json& d) {
  size_t comments = d.value("numComments", size_t{0});
  if (d.contains("events")) {
    comments = 0;
    for (const auto& e : d["events"]) comments += e.value("type", "") == "comment";
  }
  return {{"num", d["num"]},
          {"title", d["title"]},
          {"status", d["status"]},
          {"createdAt", d["createdAt"]},
          {"isPullRequest", d["isPullRequest"]},
          {"author", Author(d.value("author", "deleted"))},
          {"repo", {{"name", repo.id.str()}, {"type", "model"}}},
          {"numComments", comments},
          {"pinned", false},
          {"topReactions", json::array()}};
}

void WriteApi::Impl::Discussions(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                                 const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  auto repo = ReadableRepo(r, who, res);
  if (!repo) return;
  const bool writer = CanWrite(who, repo->id);
  if (req.method == "GET" && r.rest.empty()) return ListDiscussions(*repo, req, res);
  if (req.method == "POST" && r.rest.empty()) return OpenDiscussion(*repo, res, reader, who);
  int num = 0;
  std::string what;
  if (!ParseNum(r.rest, &num, &what)) return SendError(res, 404, "NotFound", "no such discussion route");
  if (req.method == "GET" && what.empty()) return DiscussionDetails(*repo, num, req, res, who);
  if (req.method != "POST") return SendError(res, 405, "MethodNotAllowed", "method not allowed");
  // Every change needs a token; changes to a private repo's discussions need its writers' (the
  // others do not see it at all).
  if (!who) return SendError(res, 401, "Unauthorized", "a token is required (Authorization: Bearer hf_...)");
  if (who->scope != Scope::kWrite) return SendError(res, 403, "Forbidden", "this token is read-only");
  if (!writer && repo->visibility == store::Visibility::kPrivate) {
    return SendError(res, 403, "Forbidden", "only the repo's writers take part in a private repo's discussions");
  }
  // A merge or hide may come without a body (huggingface_hub sends none): that is {}.
  std::string raw;
  if (!ReadBody(reader, options.max_body, &raw)) {
    return SendError(res, 413, "PayloadTooLarge", "request body over " + std::to_string(options.max_body) + " bytes");
  }
  std::optional<json> body = json::object();
  if (raw.find_first_not_of(" \t\r\n") != std::string::npos) {
    body = JsonDepthWithin(raw) ? json::parse(raw, nullptr, false) : json(json::value_t::discarded);
    if (!body->is_object()) return SendError(res, 400, "BadRequest", "the body must be a JSON object");
  }
  std::lock_guard<std::mutex> lock(pr_mu);
  auto d = LoadDiscussion(repo->id, num);
  if (!d.ok()) {
    if (d.status().code() == StatusCode::kNotFound) return SendError(res, 404, "DiscussionNotFound", "Discussion not found");
    return SendStatus(res, d.status());
  }
  json& disc = *d;
  const std::string me = who->token_name;
  auto full = [&]() { return disc["events"].size() >= kMaxEvents; };

  if (what == "comment") {
    std::string text = Str(*body, "comment");
    if (text.empty() || text.size() > kMaxComment || !ValidText(text)) {
      return SendError(res, 400, "BadRequest", "comment must be 1 to 16384 bytes of UTF-8 text");
    }
    if (full()) return SendError(res, 409, "Conflict", "this discussion has too many events");
    json e = CommentEvent(me, text);
    disc["events"].push_back(e);
    if (Status s = SaveDiscussion(repo->id, disc, writer); !s.ok()) return SendSaveError(res, s);
    return SendJson(res, {{"newMessage", Rendered(e)}});
  }
  if (what == "title") {
    if (me != disc.value("author", "") && !writer) {
      return SendError(res, 403, "Forbidden", "only the discussion's author or the repo's writers rename it");
    }
    std::string title = Str(*body, "title");
    if (title.empty() || title.size() > kMaxTitle || !ValidText(title)) {
      return SendError(res, 400, "BadRequest", "title must be 1 to 200 bytes of UTF-8 text");
    }
    if (full()) return SendError(res, 409, "Conflict", "this discussion has too many events");
    json e = Event("title-change", me, {{"from", disc["title"]}, {"to", title}});
    disc["title"] = title;
    disc["events"].push_back(e);
    if (Status s = SaveDiscussion(repo->id, disc, writer); !s.ok()) return SendSaveError(res, s);
    return SendJson(res, {{"newTitle", e}});
  }
  if (what == "status") {
    if (!writer) return SendError(res, 403, "Forbidden", "only the repo's writers open and close discussions");
    std::string status = Str(*body, "status");
    if (status != "open" && status != "closed") return SendError(res, 400, "BadRequest", "status must be open or closed");
    if (disc["status"] == "merged") return SendError(res, 409, "Conflict", "a merged pull request stays merged");
    std::string comment = Str(*body, "comment");
    if (comment.size() > kMaxComment || !ValidText(comment)) return SendError(res, 400, "BadRequest", "comment too long");
    if (full()) return SendError(res, 409, "Conflict", "this discussion has too many events");
    if (!comment.empty()) disc["events"].push_back(CommentEvent(me, comment));
    json e = Event("status-change", me, {{"status", status}});
    disc["status"] = status;
    disc["events"].push_back(e);
    if (Status s = SaveDiscussion(repo->id, disc, writer); !s.ok()) return SendSaveError(res, s);
    return SendJson(res, {{"newStatus", e}});
  }
  if (what == "merge") return MergePullRequest(*repo, disc, *body, res, who);
  // comment/{id}/edit and comment/{id}/hide
  if (what.starts_with("comment/")) {
    std::string rest = what.substr(8);
    size_t slash = rest.find('/');
    std::string id = rest.substr(0, slash), action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    for (auto& e : disc["events"]) {
      if (e.value("id", "") != id || e.value("type", "") != "comment") continue;
      const std::string author = e["author"].value("name", "");
      if (action == "edit") {
        if (me != author) return SendError(res, 403, "Forbidden", "only a comment's author edits it");
        if (e["data"].value("hidden", false)) return SendError(res, 409, "Conflict", "a hidden comment stays hidden");
        std::string text = Str(*body, "content");
        if (text.empty() || text.size() > kMaxComment || !ValidText(text)) {
          return SendError(res, 400, "BadRequest", "content must be 1 to 16384 bytes of UTF-8 text");
        }
        if (e["data"]["history"].size() >= 100) return SendError(res, 409, "Conflict", "this comment has too many edits");
        json latest = {{"raw", text}, {"updatedAt", IsoTime(std::time(nullptr))}, {"author", Author(me)}};
        e["data"]["latest"] = latest;
        e["data"]["edited"] = true;
        e["data"]["numEdits"] = e["data"].value("numEdits", 0) + 1;
        e["data"]["history"].insert(e["data"]["history"].begin(), latest);
      } else if (action == "hide") {
        if (me != author && !writer) return SendError(res, 403, "Forbidden", "only a comment's author or the repo's writers hide it");
        e["data"]["hidden"] = true;
        // A hidden comment's text is gone for every reader, its edits too.
        json gone = {{"raw", ""}, {"updatedAt", IsoTime(std::time(nullptr))}, {"author", Author(me)}};
        e["data"]["latest"] = gone;
        e["data"]["history"] = json::array({gone});
      } else {
        return SendError(res, 404, "NotFound", "no such discussion route");
      }
      json updated = e;
      if (Status s = SaveDiscussion(repo->id, disc, writer); !s.ok()) return SendSaveError(res, s);
      return SendJson(res, {{"updatedComment", Rendered(updated)}});
    }
    return SendError(res, 404, "CommentNotFound", "no comment " + id.substr(0, 40) + " in this discussion");
  }
  SendError(res, 404, "NotFound", "no such discussion route");
}

void WriteApi::Impl::ListDiscussions(const store::RepoInfo& repo, const httplib::Request& req, httplib::Response& res) {
  std::string type = req.has_param("type") ? req.get_param_value("type") : "all";
  std::string status = req.has_param("status") ? req.get_param_value("status") : "all";
  std::string author = req.get_param_value("author");
  if (type != "all" && type != "discussion" && type != "pull_request") {
    return SendError(res, 400, "BadRequest", "type must be all, discussion or pull_request");
  }
  if (status != "all" && status != "open" && status != "closed" && status != "merged" && status != "draft") {
    return SendError(res, 400, "BadRequest", "status must be all, open, closed, merged or draft");
  }
  uint64_t page = 0;
  if (req.has_param("p") && (!ParseU64(req.get_param_value("p"), &page) || page > 100000)) {
    return SendError(res, 400, "BadRequest", "p must be a page number");
  }
  auto records = store->ListRepoData(repo.id, "discussion-index/");
  if (!records.ok()) return SendStatus(res, records.status());
  std::vector<json> match;
  size_t closed = 0;
  // Newest first, as the Hub lists them.
  for (auto it = records->rbegin(); it != records->rend(); ++it) {
    json d = JsonDepthWithin(it->second) ? json::parse(it->second, nullptr, false) : json(json::value_t::discarded);
    if (!d.is_object()) continue;
    const bool pr = d.value("isPullRequest", false);
    if (type == "discussion" && pr) continue;
    if (type == "pull_request" && !pr) continue;
    if (!author.empty() && d.value("author", "") != author) continue;
    if (d.value("status", "") == "closed") ++closed;
    if (status != "all" && d.value("status", "") != status) continue;
    match.push_back(DiscussionSummary(repo, d));
  }
  json list = json::array();
  for (size_t i = page * kPageSize; i < match.size() && i < (page + 1) * kPageSize; ++i) list.push_back(match[i]);
  SendJson(res, {{"discussions", list},
                 {"count", match.size()},
                 {"start", page * kPageSize},
                 {"numItemsPerPage", kPageSize},
                 {"numClosedDiscussions", closed}});
}

void WriteApi::Impl::OpenDiscussion(const store::RepoInfo& repo, httplib::Response& res,
                                    const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  if (!who) return SendError(res, 401, "Unauthorized", "a token is required (Authorization: Bearer hf_...)");
  if (who->scope != Scope::kWrite) return SendError(res, 403, "Forbidden", "this token is read-only");
  const bool writer = CanWrite(who, repo.id);
  // Others may open discussions on a repo every reader sees; a private repo's are its writers'.
  if (!writer && repo.visibility == store::Visibility::kPrivate) {
    return SendError(res, 404, "RepoNotFound", "Repository not found");
  }
  auto body = JsonBody(reader, res);
  if (!body) return;
  std::string title = Str(*body, "title"), description = Str(*body, "description");
  const bool pr = Bool(*body, "pullRequest");
  if (title.empty() || title.size() > kMaxTitle || !ValidText(title)) {
    return SendError(res, 400, "BadRequest", "title must be 1 to 200 bytes of UTF-8 text");
  }
  if (description.size() > kMaxComment || !ValidText(description)) {
    return SendError(res, 400, "BadRequest", "description must be at most 16384 bytes of UTF-8 text");
  }
  std::lock_guard<std::mutex> lock(pr_mu);
  const std::string me = who->token_name;
  if (!writer) {
    auto index = store->ListRepoData(repo.id, "discussion-index/");
    if (!index.ok()) return SendStatus(res, index.status());
    size_t open = 0;
    for (const auto& [k, v] : *index) {
      json e = json::parse(v, nullptr, false);
      open += e.is_object() && e.value("author", "") == me && (e.value("status", "") == "open" || e.value("status", "") == "draft");
    }
    if (open >= kMaxOpenPerAuthor) {
      return SendError(res, 429, "TooManyDiscussions", "this token has 50 open discussions on this repo already");
    }
  }
  auto num = NextDiscussionNumber(repo.id);
  if (!num.ok()) return SendWriteError(res, num.status(), 409, "Conflict");
  json d = {{"num", *num},        {"title", title},         {"author", me}, {"createdAt", IsoTime(std::time(nullptr))},
            {"status", pr ? "draft" : "open"}, {"isPullRequest", pr}, {"events", json::array()}};
  if (!description.empty()) d["events"].push_back(CommentEvent(me, description));
  if (pr) {
    // An empty pull request starts where its target is for this caller; commits go to refs/pr/N.
    BranchState branch;
    const std::string base = "refs/heads/" + repo.default_branch;
    if (Status s = ReadBranch(repo.id, base, &branch); !s.ok()) return SendStatus(res, s);
    // On the released head, even for a writer: a pull request is read by everyone who reads the
    // repo, and what is staged is not theirs to see.
    auto head = branch.released;
    if (!head) return SendError(res, 409, "Conflict", "the repo has no released commit to open a pull request on");
    d["base"] = base;
    Status s = store->UpdateRef(repo.id, "refs/pr/" + std::to_string(*num), GitOid(), *head);
    if (!s.ok()) return SendWriteError(res, s);
  }
  if (Status s = SaveDiscussion(repo.id, d, writer); !s.ok()) return SendSaveError(res, s);
  LOG(Info) << me << " opened " << (pr ? "pull request" : "discussion") << " #" << *num << " on " << repo.id.str();
  SendJson(res, {{"num", *num}, {"pullRequest", pr}, {"url", "/" + repo.id.str() + "/discussions/" + std::to_string(*num)}});
}

void WriteApi::Impl::DiscussionDetails(const store::RepoInfo& repo, int num, const httplib::Request& req,
                                       httplib::Response& res, const std::optional<Principal>& who) {
  auto d = LoadDiscussion(repo.id, num);
  if (!d.ok()) {
    if (d.status().code() == StatusCode::kNotFound) return SendError(res, 404, "DiscussionNotFound", "Discussion not found");
    return SendStatus(res, d.status());
  }
  json out = DiscussionSummary(repo, *d);
  out["events"] = json::array();
  for (const auto& e : (*d)["events"]) out["events"].push_back(Rendered(e));
  if (d->value("isPullRequest", false)) {
    const std::string base = d->value("base", "refs/heads/" + repo.default_branch);
    json changes = {{"base", base}};
    if (d->contains("mergeCommitId")) changes["mergeCommitId"] = (*d)["mergeCommitId"];
    out["changes"] = changes;
    out["filesWithConflicts"] = json::array();
    auto head = store->Resolve(repo.id, "refs/pr/" + std::to_string(num));
    std::optional<GitOid> target;
    BranchState branch;
    if (ReadBranch(repo.id, base, &branch).ok()) target = CanWrite(who, repo.id) ? branch.head() : branch.released;
    if (head.ok() && target && (*d)["status"] != "merged") {
      auto plan = PlanMerge(*target, *head);
      if (plan.ok()) {
        out["filesWithConflicts"] = plan->conflicts;
        if (QueryFlag(req, "diff", false)) {
          auto diff = Diff(plan->base, *head);
          if (diff.ok()) out["diff"] = *diff;
        }
      }
    } else if (head.ok() && QueryFlag(req, "diff", false) && d->contains("mergeBase")) {
      auto mb = GitOid::FromHex((*d)["mergeBase"].get<std::string>());
      if (mb.ok()) {
        auto diff = Diff(*mb, *head);
        if (diff.ok()) out["diff"] = *diff;
      }
    }
  }
  SendJson(res, out);
}

// ---- merging ---------------------------------------------------------------------------------

Result<WriteApi::Impl::MergePlan> WriteApi::Impl::PlanMerge(const GitOid& target, const GitOid& head) {
  MergePlan plan;
  // The ancestors of the pull request's head, then the first of the target's that is one.
  std::unordered_set<GitOid, DigestHash> ancestors;
  std::vector<GitOid> stack = {head};
  while (!stack.empty() && ancestors.size() < kMaxAncestors) {
    GitOid c = stack.back();
    stack.pop_back();
    if (!ancestors.insert(c).second) continue;
    ASSIGN_OR_RETURN(store::CommitInfo ci, store->GetCommit(c));
    for (const auto& p : ci.parents) stack.push_back(p);
  }
  plan.fast_forward = ancestors.count(target) > 0;
  std::optional<GitOid> base;
  std::vector<GitOid> queue = {target};
  std::unordered_set<GitOid, DigestHash> seen;
  for (size_t i = 0; i < queue.size() && seen.size() < kMaxAncestors; ++i) {
    if (!seen.insert(queue[i]).second) continue;
    if (ancestors.count(queue[i])) {
      base = queue[i];
      break;
    }
    ASSIGN_OR_RETURN(store::CommitInfo ci, store->GetCommit(queue[i]));
    for (const auto& p : ci.parents) queue.push_back(p);
  }
  if (!base) return FailedPreconditionError("the pull request and its target share no history");
  plan.base = *base;
  if (plan.fast_forward) return plan;
  auto files_of = [&](const GitOid& c) -> Result<std::map<std::string, store::FileEntry>> {
    ASSIGN_OR_RETURN(auto list, store->ListFiles(c));
    std::map<std::string, store::FileEntry> m;
    for (auto& f : list) m.emplace(f.path, std::move(f));
    return m;
  };
  ASSIGN_OR_RETURN(auto mb, files_of(*base));
  ASSIGN_OR_RETURN(auto tf, files_of(target));
  ASSIGN_OR_RETURN(auto pf, files_of(head));
  std::set<std::string> paths;
  for (const auto* m : {&mb, &tf, &pf}) {
    for (const auto& [p, f] : *m) paths.insert(p);
  }
  auto blob = [](const std::map<std::string, store::FileEntry>& m, const std::string& p) {
    auto it = m.find(p);
    return it == m.end() ? std::optional<GitOid>() : std::optional<GitOid>(it->second.blob);
  };
  for (const std::string& p : paths) {
    auto b = blob(mb, p), t = blob(tf, p), h = blob(pf, p);
    if (h == b || h == t) continue;  // the pull request did not change it, or made the same change
    if (t != b) {
      plan.conflicts.push_back(p);
      continue;
    }
    store::FileChange c;
    c.path = p;
    if (!h) {
      c.kind = store::FileChange::Kind::kDelete;
    } else {
      const store::FileEntry& f = pf.at(p);
      c.sha256 = f.sha256;
      c.size = f.size;
      c.lfs = f.lfs;
      c.git_blob = f.lfs ? GitOid() : f.blob;
    }
    plan.changes.push_back(std::move(c));
  }
  return plan;
}

Result<std::string> WriteApi::Impl::Diff(const GitOid& from, const GitOid& to) {
  ASSIGN_OR_RETURN(auto a, store->ListFiles(from));
  ASSIGN_OR_RETURN(auto b, store->ListFiles(to));
  std::map<std::string, const store::FileEntry*> am, bm;
  for (const auto& f : a) am[f.path] = &f;
  for (const auto& f : b) bm[f.path] = &f;
  std::set<std::string> paths;
  for (const auto& [p, f] : am) paths.insert(p);
  for (const auto& [p, f] : bm) paths.insert(p);
  std::string diff;
  // Text as git shows it: an LFS file by its pointer, a large or binary one as "Binary files".
  auto text = [&](const store::FileEntry* f, std::string* out) -> Result<bool> {
    out->clear();
    if (!f) return true;
    if (f->lfs) {
      *out = "version https://git-lfs.github.com/spec/v1\noid sha256:" + f->sha256.hex() + "\nsize " +
             std::to_string(f->size) + "\n";
      return true;
    }
    if (f->size > kMaxDiffFileBytes || diff.size() + f->size > 2 * kMaxDiffBytes) return false;
    ASSIGN_OR_RETURN(auto reader, store->OpenFile(*f));
    ASSIGN_OR_RETURN(*out, reader->ReadToString(0, f->size));
    return out->find('\0') == std::string::npos;
  };
  size_t files = 0;
  for (const std::string& p : paths) {
    const store::FileEntry* x = am.count(p) ? am[p] : nullptr;
    const store::FileEntry* y = bm.count(p) ? bm[p] : nullptr;
    if (x && y && x->blob == y->blob) continue;
    if (diff.size() > kMaxDiffBytes || ++files > kMaxDiffFiles) {
      diff += "# (diff cut at 1 MiB or 1,000 files)\n";
      break;
    }
    diff += "diff --git a/" + p + " b/" + p + "\n";
    if (!x) diff += "new file mode 100644\n";
    if (!y) diff += "deleted file mode 100644\n";
    diff += "index " + (x ? x->blob.hex().substr(0, 7) : std::string("0000000")) + ".." +
            (y ? y->blob.hex().substr(0, 7) : std::string("0000000")) + "\n";
    std::string old_text, new_text;
    ASSIGN_OR_RETURN(bool old_ok, text(x, &old_text));
    ASSIGN_OR_RETURN(bool new_ok, text(y, &new_text));
    if (!old_ok || !new_ok) {
      diff += "Binary files " + (x ? "a/" + p : std::string("/dev/null")) + " and " + (y ? "b/" + p : std::string("/dev/null")) +
              " differ\n";
      continue;
    }
    diff += "--- " + (x ? "a/" + p : std::string("/dev/null")) + "\n";
    diff += "+++ " + (y ? "b/" + p : std::string("/dev/null")) + "\n";
    size_t ol = CountLines(old_text), nl = CountLines(new_text);
    diff += "@@ -" + std::string(ol ? "1," : "0,") + std::to_string(ol) + " +" + std::string(nl ? "1," : "0,") +
            std::to_string(nl) + " @@\n";
    diff += Lines(old_text, '-') + Lines(new_text, '+');
  }
  return diff;
}

void WriteApi::Impl::MergePullRequest(const store::RepoInfo& repo, json& disc, const json& body, httplib::Response& res,
                                      const std::optional<Principal>& who) {
  if (!CanWrite(who, repo.id)) return SendError(res, 403, "Forbidden", "only the repo's writers merge pull requests");
  if (!disc.value("isPullRequest", false)) return SendError(res, 400, "BadRequest", "this discussion is not a pull request");
  const std::string status = disc.value("status", "");
  if (status != "open" && status != "draft") {
    return SendError(res, 409, "Conflict", "this pull request is " + status + ": only an open one merges");
  }
  const int num = disc["num"].get<int>();
  const std::string base = disc.value("base", "refs/heads/" + repo.default_branch);
  if (!base.starts_with("refs/heads/")) return SendError(res, 409, "Conflict", "this pull request targets no branch");
  auto head = store->Resolve(repo.id, "refs/pr/" + std::to_string(num));
  if (!head.ok()) return SendError(res, 409, "Conflict", "the pull request's ref refs/pr/" + std::to_string(num) + " is gone");
  std::string comment = Str(body, "comment");
  if (comment.size() > kMaxComment || !ValidText(comment)) return SendError(res, 400, "BadRequest", "comment too long");

  for (int attempt = 1;; ++attempt) {
    BranchState branch;
    if (Status s = ReadBranch(repo.id, base, &branch); !s.ok()) return SendStatus(res, s);
    auto target = branch.head();
    if (!target) return SendError(res, 409, "Conflict", "the target branch " + base.substr(11) + " is gone");
    auto plan = PlanMerge(*target, *head);
    if (!plan.ok()) return SendError(res, 409, "Conflict", plan.status().message());
    if (plan->base == *head) {
      return SendError(res, 409, "NothingToMerge", "the target branch already has every commit of this pull request");
    }
    if (!plan->conflicts.empty()) {
      std::string list;
      for (const auto& p : plan->conflicts) list += (list.empty() ? "" : ", ") + p;
      SendJson(res, {{"error", "Cannot merge: these files changed on both sides: " + list.substr(0, 800)},
                     {"filesWithConflicts", plan->conflicts}},
               409);
      res.set_header("X-Error-Code", "MergeConflict");
      return;
    }
    GitOid merged = *head;
    if (!plan->fast_forward) {
      store::CommitSpec spec;
      spec.parent = *target;
      spec.merged = {*head};
      spec.changes = plan->changes;
      spec.author.name = who->token_name;
      spec.author.email = who->token_name + "@hubnode";
      spec.message = "Merge pull request #" + std::to_string(num) + ": " + disc.value("title", "");
      auto written = store->WriteCommit(spec);
      if (!written.ok()) return SendWriteError(res, written.status(), 409, "Conflict");
      merged = written->commit;
    }
    // The policy judges what the branch will hold.
    TrustReport report = Assess(repo.id, merged, who);
    if (report.verdict == verify::Verdict::kDeny) {
      SendJson(res, {{"error", "Refused by this node's policy: " + report.Summary()},
                     {"rules", report.refusals}, {"trust", report.ToJson()}}, 451);
      res.set_header("X-Error-Code", "PolicyRefused");
      return;
    }
    const bool stage = report.verdict == verify::Verdict::kReview;
    const std::string me = who->token_name;
    json after = disc;
    if (!comment.empty()) after["events"].push_back(CommentEvent(me, comment));
    after["events"].push_back(Event("status-change", me, {{"status", "merged"}}));
    after["status"] = "merged";
    after["mergeCommitId"] = merged.hex();
    after["mergeBase"] = plan->base.hex();
    if (after.dump().size() > kMaxRecordBytes) {
      return SendError(res, 409, "DiscussionFull", "this pull request's record is full; nothing was merged");
    }
    Status s = LandOnBranch(repo.id, base, branch, merged, stage);
    if (s.code() == StatusCode::kFailedPrecondition && attempt < kCommitAttempts) continue;
    if (s.code() == StatusCode::kFailedPrecondition) {
      return SendError(res, 412, "PreconditionFailed", "The target branch moved meanwhile. Please try again.");
    }
    if (!s.ok()) return SendWriteError(res, s);
    disc = std::move(after);
    if (Status w = SaveDiscussion(repo.id, disc, true); !w.ok()) LOG(Warning) << "discussion " << num << ": " << w.ToString();
    LOG(Info) << me << " merged pull request #" << num << " of " << repo.id.str() << " into " << base << " at "
              << merged.hex() << (stage ? " (staged for review)" : "");
    if (stage) res.set_header("X-Hubnode-Held", ("held for review by this node's policy: " + report.Summary()).substr(0, 1000));
    return SendJson(res, {{"mergeCommitId", merged.hex()}, {"fastForward", plan->fast_forward}, {"held", stage}});
  }
}

}  // namespace hubnode::hub

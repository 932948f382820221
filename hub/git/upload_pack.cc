#include "hub/git/upload_pack.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <optional>

#include "hub/git/connectivity.h"
#include "hub/git/pack.h"
#include "hub/git/pkt_line.h"
#include "store/git_objects.h"

namespace hubnode::hub::git {

using store::GitObjectType;

namespace {

constexpr std::string_view kAgent = "agent=hubnode/1";

struct Request {
  std::vector<GitOid> wants, haves, client_shallow;
  uint32_t deepen = 0;
  bool done = false, sideband = true, no_progress = false;
  bool filter_blobs = false;
  bool ofs_delta = false;  // the client reads OFS_DELTA entries
  std::optional<uint64_t> blob_limit;
  std::vector<std::string> ref_prefixes;
  bool peel = false, symrefs = false, unborn = false;
};

Status ParseOid(std::string_view hex, GitOid* out) {
  auto oid = GitOid::FromHex(hex);
  if (!oid.ok()) return InvalidArgumentError("malformed object id");
  *out = *oid;
  return OkStatus();
}

Status ParseFilter(std::string_view spec, Request* r) {
  if (spec == "blob:none") {
    r->filter_blobs = true;
    return OkStatus();
  }
  if (spec.starts_with("blob:limit=")) {
    std::string_view n = spec.substr(11);
    uint64_t mult = 1;
    if (!n.empty() && (n.back() == 'k' || n.back() == 'K')) mult = 1024, n.remove_suffix(1);
    else if (!n.empty() && (n.back() == 'm' || n.back() == 'M')) mult = 1 << 20, n.remove_suffix(1);
    else if (!n.empty() && (n.back() == 'g' || n.back() == 'G')) mult = 1 << 30, n.remove_suffix(1);
    uint64_t v = 0;
    auto res = std::from_chars(n.data(), n.data() + n.size(), v);
    if (res.ec != std::errc() || res.ptr != n.data() + n.size()) return InvalidArgumentError("malformed filter");
    r->blob_limit = v * mult;
    return OkStatus();
  }
  return InvalidArgumentError("filter '" + std::string(spec.substr(0, 64)) + "' is not supported (blob:none, blob:limit=N)");
}

// The lines v2 and v0 requests share: want, have, shallow, deepen, filter. True when `t` was one
// of them (and is now in `r`); an error for a malformed one or past a limit.
Result<bool> ParseNegotiationLine(std::string_view t, const UploadLimits& limits, Request* r) {
  GitOid oid;
  if (t.starts_with("want ")) {
    RETURN_IF_ERROR(ParseOid(t.substr(5), &oid));
    // Consecutive duplicates are common (HEAD and its branch); CheckWants takes a set anyway.
    if (std::find(r->wants.end() - std::min<size_t>(r->wants.size(), 8), r->wants.end(), oid) == r->wants.end()) {
      r->wants.push_back(oid);
    }
    if (r->wants.size() > limits.max_wants) return ResourceExhaustedError("too many wants");
  } else if (t.starts_with("have ")) {
    RETURN_IF_ERROR(ParseOid(t.substr(5), &oid));
    if (r->haves.size() >= limits.max_haves) return ResourceExhaustedError("too many haves");
    r->haves.push_back(oid);
  } else if (t.starts_with("shallow ")) {
    RETURN_IF_ERROR(ParseOid(t.substr(8), &oid));
    if (r->client_shallow.size() >= limits.max_haves) return ResourceExhaustedError("too many shallow lines");
    r->client_shallow.push_back(oid);
  } else if (t.starts_with("deepen ")) {
    std::string_view n = t.substr(7);
    auto res = std::from_chars(n.data(), n.data() + n.size(), r->deepen);
    if (res.ec != std::errc() || res.ptr != n.data() + n.size() || r->deepen == 0) {
      return InvalidArgumentError("malformed deepen");
    }
  } else if (t.starts_with("deepen-since ") || t.starts_with("deepen-not ") || t == "deepen-relative") {
    return InvalidArgumentError(std::string(t.substr(0, t.find(' '))) + " is not supported; use --depth");
  } else if (t.starts_with("filter ")) {
    RETURN_IF_ERROR(ParseFilter(t.substr(7), r));
  } else {
    return false;
  }
  return true;
}

std::string Err(std::string_view message) { return Pkt("ERR " + std::string(message) + "\n"); }

// Walks commits (all parents) from `from`, calling visit; stops past `limit` visits.
template <typename Visit>
Status WalkCommits(store::Store& store, const std::vector<GitOid>& from, uint64_t limit, Visit visit) {
  std::set<GitOid> seen;
  std::deque<GitOid> queue;
  for (const auto& c : from) {
    if (seen.insert(c).second) queue.push_back(c);
  }
  while (!queue.empty()) {
    if (seen.size() > limit) return ResourceExhaustedError("history too long to walk");
    GitOid c = queue.front();
    queue.pop_front();
    ASSIGN_OR_RETURN(store::CommitInfo info, store.GetCommit(c));
    if (!visit(info)) continue;
    for (const auto& p : info.parents) {
      if (seen.insert(p).second) queue.push_back(p);
    }
  }
  return OkStatus();
}

// Adds tree `root` and everything below it to `out` (and `seen`), skipping what `seen` holds.
// With `bases`, each blob planned at a path where an earlier planned blob sits (a newer version,
// as commits are walked newest first) gets that blob as its delta base: bases[i] is the index of
// out[i]'s base, or -1.
struct DeltaBases {
  std::vector<int32_t> base;
  std::vector<uint16_t> depth;
  std::map<std::string, int32_t> last_at_path;  // path -> index of the blob last planned there
};
constexpr uint16_t kMaxSendDeltaDepth = 50;

Status CollectTree(store::Store& store, const GitOid& root, std::set<GitOid>& seen,
                   std::vector<std::pair<GitOid, GitObjectType>>* out, const Request* filter, uint64_t limit,
                   DeltaBases* bases = nullptr) {
  if (!seen.insert(root).second) return OkStatus();
  auto plan = [&](const GitOid& oid, GitObjectType type, const std::string* path) {
    out->emplace_back(oid, type);
    if (!bases) return;
    int32_t base = -1;
    uint16_t depth = 0;
    if (path) {
      auto it = bases->last_at_path.find(*path);
      if (it != bases->last_at_path.end() && bases->depth[it->second] < kMaxSendDeltaDepth) {
        base = it->second;
        depth = static_cast<uint16_t>(bases->depth[it->second] + 1);
      }
      bases->last_at_path[*path] = static_cast<int32_t>(out->size() - 1);
    }
    bases->base.push_back(base);
    bases->depth.push_back(depth);
  };
  if (out) plan(root, GitObjectType::kTree, nullptr);
  struct Frame {
    GitOid tree;
    int depth;
    std::string prefix;
  };
  std::vector<Frame> stack{{root, 0, ""}};
  while (!stack.empty()) {
    Frame frame = std::move(stack.back());
    stack.pop_back();
    const GitOid tree = frame.tree;
    const int depth = frame.depth;
    if (depth > 64) return DataLossError("trees nested too deeply");
    ASSIGN_OR_RETURN(store::GitObject obj, store.ReadGitObject(tree));
    if (obj.type != GitObjectType::kTree) return DataLossError(tree.hex() + " is not a tree");
    ASSIGN_OR_RETURN(auto entries, store::DecodeTree(obj.body));
    for (const auto& e : entries) {
      if (seen.size() > limit) return ResourceExhaustedError("too many objects for one pack");
      std::string path = bases ? (frame.prefix.empty() ? e.name : frame.prefix + "/" + e.name) : std::string();
      if (e.mode == store::kModeTree) {
        if (!seen.insert(e.oid).second) continue;
        if (out) plan(e.oid, GitObjectType::kTree, nullptr);
        stack.push_back(Frame{e.oid, depth + 1, std::move(path)});
      } else {
        if (seen.count(e.oid)) continue;
        if (out && filter) {
          if (filter->filter_blobs) continue;
          if (filter->blob_limit) {
            ASSIGN_OR_RETURN(store::GitObject blob, store.ReadGitObject(e.oid));
            if (blob.size > *filter->blob_limit) continue;
          }
        }
        seen.insert(e.oid);
        if (out) plan(e.oid, GitObjectType::kBlob, bases ? &path : nullptr);
      }
    }
  }
  return OkStatus();
}

struct Plan {
  std::vector<std::pair<GitOid, GitObjectType>> objects;
  DeltaBases bases;  // entries for objects; commits have no base
  std::vector<GitOid> shallow;
};

Result<Plan> PlanPack(store::Store& store, const Request& r, const std::vector<GitOid>& common, const UploadLimits& limits) {
  const std::set<GitOid> client_shallow(r.client_shallow.begin(), r.client_shallow.end());
  // What the client holds: the history of its common haves, down to its shallow boundary.
  std::set<GitOid> has;
  RETURN_IF_ERROR(WalkCommits(store, common, limits.max_walk, [&](const store::CommitInfo& c) {
    has.insert(c.id);
    return !client_shallow.count(c.id);
  }));
  const bool deepening = r.deepen > 0;
  Plan plan;
  std::vector<GitOid> commits;
  std::vector<std::pair<GitOid, GitObjectType>> loose;  // wanted trees and blobs (lazy fetches)
  std::set<GitOid> edges;
  std::map<GitOid, uint32_t> depth;
  std::set<GitOid> seen;
  std::deque<GitOid> queue;
  for (const auto& w : r.wants) {
    if (!seen.insert(w).second) continue;
    ASSIGN_OR_RETURN(store::GitObject obj, store.ReadGitObject(w));
    if (obj.type == GitObjectType::kCommit) {
      depth[w] = 1;
      queue.push_back(w);
    } else {
      loose.emplace_back(w, obj.type);
    }
  }
  // Breadth first from the wants, so a commit's depth is its shortest distance. A deepening
  // request walks through what the client has to reach its shallow boundary.
  while (!queue.empty()) {
    GitOid c = queue.front();
    queue.pop_front();
    const bool client_has = has.count(c) > 0;
    if (client_has && !deepening) {
      edges.insert(c);
      continue;
    }
    if (commits.size() > limits.max_objects || seen.size() > limits.max_walk) {
      return ResourceExhaustedError("too many commits for one pack");
    }
    ASSIGN_OR_RETURN(store::CommitInfo info, store.GetCommit(c));
    if (!client_has) commits.push_back(c);
    const uint32_t d = depth[c];
    if (deepening && d >= r.deepen) {
      if (!client_has && !info.parents.empty()) plan.shallow.push_back(c);
      continue;
    }
    for (const auto& p : info.parents) {
      if (seen.insert(p).second) {
        depth[p] = d + 1;
        queue.push_back(p);
      }
    }
  }
  // Trees and blobs the client holds: those of the edge commits and of its common haves.
  std::set<GitOid> seen_objects;
  std::set<GitOid> holders = edges;
  for (size_t i = 0; i < common.size() && i < 32; ++i) holders.insert(common[i]);
  for (const auto& h : holders) {
    ASSIGN_OR_RETURN(store::CommitInfo info, store.GetCommit(h));
    RETURN_IF_ERROR(CollectTree(store, info.tree, seen_objects, nullptr, nullptr, limits.max_walk));
  }
  for (const auto& c : commits) {
    plan.objects.emplace_back(c, GitObjectType::kCommit);
    plan.bases.base.push_back(-1);
    plan.bases.depth.push_back(0);
  }
  DeltaBases* bases = r.ofs_delta ? &plan.bases : nullptr;
  for (const auto& c : commits) {
    ASSIGN_OR_RETURN(store::CommitInfo info, store.GetCommit(c));
    RETURN_IF_ERROR(CollectTree(store, info.tree, seen_objects, &plan.objects, &r, limits.max_walk, bases));
    if (plan.objects.size() > limits.max_objects) return ResourceExhaustedError("too many objects for one pack");
  }
  // Objects asked for by id (a partial clone's missing blobs): always sent, whatever the filter.
  for (const auto& [oid, type] : loose) {
    if (type == GitObjectType::kTree) {
      RETURN_IF_ERROR(CollectTree(store, oid, seen_objects, &plan.objects, &r, limits.max_walk, bases));
    } else if (seen_objects.insert(oid).second) {
      plan.objects.emplace_back(oid, type);
      if (bases) {
        bases->base.push_back(-1);
        bases->depth.push_back(0);
      }
    }
  }
  return plan;
}

// Wants that are not tips must be reachable from one (all checked in one walk).
Status CheckWants(const RepoView& view, const std::vector<GitOid>& wants, const UploadLimits& limits) {
  std::set<GitOid> tips;
  for (const auto& r : view.refs) tips.insert(r.commit);
  std::set<GitOid> others;
  for (const auto& w : wants) {
    if (!tips.count(w)) others.insert(w);
  }
  if (!CheckAllReachable(view, others, limits).ok()) return NotFoundError("not our ref");
  return OkStatus();
}

// The commits among `haves` that the caller can see (reachable from the view's refs).
Result<std::vector<GitOid>> CommonHaves(const RepoView& view, const std::vector<GitOid>& haves, const UploadLimits& limits) {
  std::vector<GitOid> out;
  if (haves.empty()) return out;
  std::set<GitOid> want(haves.begin(), haves.end());
  std::vector<GitOid> tips;
  for (const auto& r : view.refs) tips.push_back(r.commit);
  // Ancestors of the visible refs, until every have was met (or the history ends).
  size_t found = 0;
  Status s = WalkCommits(*view.store, tips, limits.max_walk, [&](const store::CommitInfo& c) {
    if (want.count(c.id)) {
      out.push_back(c.id);
      ++found;
    }
    return found < want.size();
  });
  if (!s.ok() && s.code() != StatusCode::kResourceExhausted) return s;
  // Keep the client's order (most recent first, as it sends them).
  std::set<GitOid> got(out.begin(), out.end());
  out.clear();
  for (const auto& h : haves) {
    if (got.count(h)) out.push_back(h);
  }
  return out;
}

Status SendPack(store::Store& store, const Plan& plan, bool sideband, const Sink& sink) {
  // Pack bytes leave in pieces of about 64 KiB (one side-band packet each), not one write per
  // object header and deflate call.
  std::string pending;
  constexpr size_t kPiece = kMaxPktPayload - 1;
  auto flush = [&]() {
    if (pending.empty()) return true;
    bool ok = sideband ? sink(SideBand(1, pending)) : sink(pending);
    pending.clear();
    return ok;
  };
  auto send = [&](std::string_view data) {
    pending.append(data);
    while (pending.size() >= kPiece) {
      std::string_view head(pending.data(), kPiece);
      if (!(sideband ? sink(SideBand(1, head)) : sink(head))) return false;
      pending.erase(0, kPiece);
    }
    return true;
  };
  PackWriter pack(static_cast<uint32_t>(plan.objects.size()), send);
  std::vector<uint64_t> offsets(plan.objects.size(), 0);
  // Bodies of recent small blobs, the bases of the deltas that follow them (bounded).
  constexpr uint64_t kMaxDeltaObject = 1 << 20, kBodyCacheBytes = uint64_t{64} << 20;
  std::map<size_t, std::string> bodies;
  std::deque<size_t> order;
  uint64_t cached = 0;
  const bool deltas = plan.bases.base.size() == plan.objects.size();
  for (size_t i = 0; i < plan.objects.size(); ++i) {
    const auto& [oid, type] = plan.objects[i];
    offsets[i] = pack.next_offset();
    ASSIGN_OR_RETURN(store::GitObject obj, store.ReadGitObject(oid));
    if (obj.type != type) return DataLossError(oid.hex() + " is not a " + std::string(store::GitTypeName(type)));
    if (obj.size > kMaxDeltaObject || !deltas || type != GitObjectType::kBlob) {
      if (!obj.content) {
        RETURN_IF_ERROR(pack.Add(type, obj.body));
        continue;
      }
      ASSIGN_OR_RETURN(auto reader, store.OpenFile(*obj.content));
      RETURN_IF_ERROR(pack.AddStreamed(type, obj.size, [&](const std::function<Status(std::string_view)>& piece) {
        return reader->Read(0, obj.size, piece);
      }));
      continue;
    }
    std::string body = std::move(obj.body);
    if (obj.content) {
      ASSIGN_OR_RETURN(auto reader, store.OpenFile(*obj.content));
      ASSIGN_OR_RETURN(body, reader->ReadToString(0, obj.size));
    }
    const int32_t b = plan.bases.base[i];
    bool sent = false;
    if (b >= 0) {
      auto base = bodies.find(static_cast<size_t>(b));
      if (base != bodies.end()) {
        std::string delta = MakeDelta(base->second, body);
        if (delta.size() < body.size() / 2) {
          RETURN_IF_ERROR(pack.AddOfsDelta(offsets[b], delta));
          sent = true;
        }
        // A blob is the base of one later blob at most (the next older version at its path).
        cached -= base->second.size();
        bodies.erase(base);
      }
    }
    if (!sent) RETURN_IF_ERROR(pack.Add(type, body));
    cached += body.size();
    bodies.emplace(i, std::move(body));
    order.push_back(i);
    while (cached > kBodyCacheBytes && !order.empty()) {
      auto it = bodies.find(order.front());
      if (it != bodies.end()) {
        cached -= it->second.size();
        bodies.erase(it);
      }
      order.pop_front();
    }
  }
  RETURN_IF_ERROR(pack.Finish());
  if (!flush()) return CancelledError("the client went away");
  return OkStatus();
}

}  // namespace

std::string AdvertiseV2() {
  std::string out = Pkt("version 2\n");
  out += Pkt(std::string(kAgent) + "\n");
  out += Pkt("ls-refs=unborn\n");
  out += Pkt("fetch=shallow filter\n");
  out += Pkt("object-format=sha1\n");
  out += Flush();
  return out;
}

std::string AdvertiseUploadPackV0(const RepoView& view) {
  std::string out = Pkt("# service=git-upload-pack\n") + Flush();
  std::string caps = "side-band-64k side-band ofs-delta shallow no-progress filter allow-reachable-sha1-in-want "
                     "object-format=sha1 " + std::string(kAgent);
  std::optional<GitOid> head;
  for (const auto& r : view.refs) {
    if (r.name == view.head) head = r.commit;
  }
  bool first = true;
  auto line = [&](const GitOid& oid, const std::string& name, const std::string& extra) {
    std::string l = oid.hex() + " " + name;
    if (first) l += std::string(1, '\0') + caps + extra;
    first = false;
    out += Pkt(l + "\n");
  };
  if (head) line(*head, "HEAD", " symref=HEAD:" + view.head);
  for (const auto& r : view.refs) line(r.commit, r.name, "");
  if (first) out += Pkt(std::string(40, '0') + " capabilities^{}" + std::string(1, '\0') + caps + "\n");
  out += Flush();
  return out;
}

Status ServeV2(const RepoView& view, std::string_view body, const UploadLimits& limits, const Sink& sink) {
  PktReader in(body);
  std::string command;
  Request r;
  bool args = false;
  auto fail = [&](const Status& s) {
    sink(Err(s.message()));
    return s;
  };
  while (true) {
    auto line = in.Next();
    if (!line.ok()) return fail(line.status());
    if (!*line || (*line)->kind == PktLine::Kind::kFlush) break;
    if ((*line)->kind == PktLine::Kind::kDelim) {
      args = true;
      continue;
    }
    if ((*line)->kind != PktLine::Kind::kData) return fail(InvalidArgumentError("unexpected pkt-line"));
    std::string_view t = (*line)->text();
    if (!args) {
      if (t.starts_with("command=")) command = std::string(t.substr(8));
      else if (t.starts_with("object-format=") && t != "object-format=sha1") {
        return fail(InvalidArgumentError("only sha1 objects are served"));
      }
      continue;
    }
    if (auto parsed = ParseNegotiationLine(t, limits, &r); !parsed.ok()) {
      return fail(parsed.status());
    } else if (*parsed) {
      continue;
    } else if (t == "done") {
      r.done = true;
    } else if (t == "no-progress") {
      r.no_progress = true;
    } else if (t == "ofs-delta") {
      r.ofs_delta = true;
    } else if (t == "peel") {
      r.peel = true;
    } else if (t == "symrefs") {
      r.symrefs = true;
    } else if (t == "unborn") {
      r.unborn = true;
    } else if (t.starts_with("ref-prefix ")) {
      if (r.ref_prefixes.size() < 256) r.ref_prefixes.emplace_back(t.substr(11));
    }
    // Other arguments (thin-pack, include-tag, wait-for-done, server-option ...)
    // change nothing here: deltas are against objects of the same pack and there are no
    // annotated tags.
  }

  if (command == "ls-refs") {
    auto wanted = [&](const std::string& name) {
      if (r.ref_prefixes.empty()) return true;
      return std::any_of(r.ref_prefixes.begin(), r.ref_prefixes.end(),
                         [&](const std::string& p) { return name.starts_with(p); });
    };
    std::string out;
    std::optional<GitOid> head;
    for (const auto& ref : view.refs) {
      if (ref.name == view.head) head = ref.commit;
    }
    if (wanted("HEAD")) {
      std::string sym = r.symrefs ? " symref-target:" + view.head : "";
      if (head) out += Pkt(head->hex() + " HEAD" + sym + "\n");
      else if (r.unborn) out += Pkt("unborn HEAD" + sym + "\n");
    }
    for (const auto& ref : view.refs) {
      if (wanted(ref.name)) out += Pkt(ref.commit.hex() + " " + ref.name + "\n");
    }
    out += Flush();
    sink(out);
    return OkStatus();
  }
  if (command != "fetch") return fail(InvalidArgumentError("unknown command '" + command.substr(0, 64) + "'"));
  if (r.wants.empty()) return fail(InvalidArgumentError("no want lines"));
  if (Status s = CheckWants(view, r.wants, limits); !s.ok()) return fail(s);
  auto common = CommonHaves(view, r.haves, limits);
  if (!common.ok()) return fail(common.status());
  std::string out;
  if (!r.done) {
    out += Pkt("acknowledgments\n");
    if (common->empty()) out += Pkt("NAK\n");
    for (const auto& c : *common) out += Pkt("ACK " + c.hex() + "\n");
    if (common->empty()) {
      // Nothing in common yet: the client sends more haves, or done.
      out += Flush();
      sink(out);
      return OkStatus();
    }
    out += Pkt("ready\n");
    out += Delim();
  }
  auto plan = PlanPack(*view.store, r, *common, limits);
  if (!plan.ok()) return fail(plan.status());
  if (r.deepen || !r.client_shallow.empty()) {
    out += Pkt("shallow-info\n");
    for (const auto& s : plan->shallow) out += Pkt("shallow " + s.hex() + "\n");
    // Client shallow commits whose parents this pack now carries are no longer shallow.
    std::set<GitOid> sent;
    for (const auto& [oid, type] : plan->objects) {
      if (type == GitObjectType::kCommit) sent.insert(oid);
    }
    for (const auto& cs : r.client_shallow) {
      if (std::find(plan->shallow.begin(), plan->shallow.end(), cs) != plan->shallow.end()) continue;
      auto info = view.store->GetCommit(cs);
      if (info.ok() && !info->parents.empty() && sent.count(info->parents[0])) out += Pkt("unshallow " + cs.hex() + "\n");
    }
    out += Delim();
  }
  out += Pkt("packfile\n");
  if (!sink(out)) return CancelledError("the client went away");
  RETURN_IF_ERROR(SendPack(*view.store, *plan, true, sink));
  sink(Flush());
  return OkStatus();
}

Status ServeV0(const RepoView& view, std::string_view body, const UploadLimits& limits, const Sink& sink) {
  PktReader in(body);
  Request r;
  r.sideband = false;
  bool first = true;
  auto fail = [&](const Status& s) {
    sink(Err(s.message()));
    return s;
  };
  while (true) {
    auto line = in.Next();
    if (!line.ok()) return fail(line.status());
    if (!*line) break;
    if ((*line)->kind != PktLine::Kind::kData) continue;
    std::string_view t = (*line)->text();
    if (t.starts_with("want ") && t.size() > 45 && first) {
      // The first want carries the client's capabilities after the id.
      std::string_view caps = t.substr(45);
      r.sideband = caps.find("side-band") != std::string_view::npos;
      r.ofs_delta = caps.find("ofs-delta") != std::string_view::npos;
      t = t.substr(0, 45);
    }
    if (t.starts_with("want ")) first = false;
    if (auto parsed = ParseNegotiationLine(t, limits, &r); !parsed.ok()) {
      return fail(parsed.status());
    } else if (*parsed) {
      continue;
    } else if (t == "done") {
      r.done = true;
    }
  }
  if (r.wants.empty()) return fail(InvalidArgumentError("no want lines"));
  if (Status s = CheckWants(view, r.wants, limits); !s.ok()) return fail(s);
  auto common = CommonHaves(view, r.haves, limits);
  if (!common.ok()) return fail(common.status());
  std::string out;
  auto plan = PlanPack(*view.store, r, *common, limits);
  if (!plan.ok()) return fail(plan.status());
  if (r.deepen) {
    for (const auto& s : plan->shallow) out += Pkt("shallow " + s.hex() + "\n");
    out += Flush();
  }
  if (!r.done) {
    // Without multi_ack a round answers ACK for the first common commit, or NAK; the pack
    // follows the request that says done.
    sink(out + (common->empty() ? Pkt("NAK\n") : Pkt("ACK " + (*common)[0].hex() + "\n")));
    return OkStatus();
  } else {
    out += common->empty() ? Pkt("NAK\n") : Pkt("ACK " + common->back().hex() + "\n");
  }
  if (!sink(out)) return CancelledError("the client went away");
  RETURN_IF_ERROR(SendPack(*view.store, *plan, r.sideband, sink));
  if (r.sideband) sink(Flush());
  return OkStatus();
}

}  // namespace hubnode::hub::git

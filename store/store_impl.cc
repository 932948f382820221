#include "store/store_impl.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <set>
#include <unordered_set>

#include "base/bytes.h"
#include "base/hex.h"
#include "base/log.h"
#include "store/tier.h"

namespace hubnode::store {
namespace {

constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kFormatValue = "hubnode-store 1";
constexpr size_t kMaxReachabilityWalk = 1'000'000;

bool ValidNamePart(std::string_view p) {
  if (p.empty() || p.size() > 96 || p[0] == '.' || p[0] == '-') return false;
  if (p.find("..") != std::string_view::npos) return false;
  for (char c : p) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

// ---- names -------------------------------------------------------------------------------------

Result<RepoId> RepoId::Parse(std::string_view s) {
  size_t slash = s.find('/');
  bool ok = slash == std::string_view::npos
                ? ValidNamePart(s)
                : ValidNamePart(s.substr(0, slash)) && ValidNamePart(s.substr(slash + 1));
  if (!ok) {
    return InvalidArgumentError("invalid repo name '" + std::string(s.substr(0, 200)) +
                                "': expected NAME or NAMESPACE/NAME of [A-Za-z0-9._-]");
  }
  RepoId id;
  id.name_ = std::string(s);
  return id;
}

std::string CommitInfo::Title() const { return message.substr(0, message.find('\n')); }

Status ValidateRefName(std::string_view ref) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid ref name '" + std::string(ref.substr(0, 200)) + "': " + std::string(why));
  };
  if (ref.size() > 255) return bad("longer than 255 bytes");
  std::string_view rest;
  if (ref.rfind("refs/mirror/", 0) == 0) {
    // An alias from an upstream commit id to the local commit that mirrors it.
    rest = ref.substr(12);
    if (rest.size() != 40 || !IsLowerHex(rest)) return bad("a mirror ref is refs/mirror/<40 hex>");
    return OkStatus();
  }
  if (ref.rfind("refs/pr/", 0) == 0) {
    rest = ref.substr(8);
    if (rest.empty() || rest.size() > 9 || rest[0] == '0') return bad("a PR ref is refs/pr/N");
    for (char c : rest) {
      if (c < '0' || c > '9') return bad("a PR ref is refs/pr/N");
    }
    return OkStatus();
  }
  if (ref.rfind("refs/heads/", 0) == 0) {
    rest = ref.substr(11);
  } else if (ref.rfind("refs/held/", 0) == 0) {
    // A commit held for license review, for the branch named after the prefix.
    rest = ref.substr(10);
  } else if (ref.rfind("refs/tags/", 0) == 0) {
    rest = ref.substr(10);
  } else {
    return bad("must start with refs/heads/, refs/tags/, refs/pr/, refs/held/ or refs/mirror/");
  }
  if (rest.empty() || rest.find("..") != std::string_view::npos || rest.find("//") != std::string_view::npos ||
      rest.front() == '/' || rest.back() == '/' || rest.back() == '.' || rest.find("@{") != std::string_view::npos ||
      (rest.size() >= 5 && rest.substr(rest.size() - 5) == ".lock")) {
    return bad("not a valid git ref name");
  }
  for (char c : rest) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == ' ' || c == '~' || c == '^' || c == ':' || c == '?' || c == '*' ||
        c == '[' || c == '\\') {
      return bad("contains a character git forbids");
    }
  }
  return OkStatus();
}

Status ValidatePath(std::string_view path) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("invalid path '" + std::string(path.substr(0, 200)) + "': " + std::string(why));
  };
  if (path.empty()) return bad("empty");
  if (path.size() > kMaxPathBytes) return bad("longer than " + std::to_string(kMaxPathBytes) + " bytes");
  size_t start = 0, depth = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return bad("empty, '.' or '..' component");
    if (part.size() == 4 && part[0] == '.' && (part[1] | 0x20) == 'g' && (part[2] | 0x20) == 'i' &&
        (part[3] | 0x20) == 't') {
      return bad("'.git' is reserved");  // in any case: case-insensitive file systems check it out as .git
    }
    if (part.size() > kMaxPathComponentBytes) {
      return bad("a component is longer than " + std::to_string(kMaxPathComponentBytes) + " bytes");
    }
    if (++depth > kMaxPathDepth) return bad("deeper than " + std::to_string(kMaxPathDepth) + " directories");
    start = end + 1;
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return bad("control character or backslash");
  }
  return OkStatus();
}

std::optional<LfsPointerInfo> ParseLfsPointer(std::string_view text) {
  constexpr std::string_view kHead = "version https://git-lfs.github.com/spec/v1\noid sha256:";
  if (text.size() > 200 || text.substr(0, kHead.size()) != kHead) return std::nullopt;
  text.remove_prefix(kHead.size());
  if (text.size() < 64 + 6) return std::nullopt;
  auto oid = Sha256Digest::FromHex(text.substr(0, 64));
  if (!oid.ok() || text.substr(64, 6) != "\nsize ") return std::nullopt;
  text.remove_prefix(70);
  uint64_t size = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), size);
  if (r.ec != std::errc() || std::string_view(r.ptr, text.data() + text.size() - r.ptr) != "\n") return std::nullopt;
  return LfsPointerInfo{*oid, size};
}

// ---- pins ---------------------------------------------------------------------------------------

void PinSet::Pin(const ChunkId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ++pins_[id];
}

void PinSet::UnpinAll(const std::vector<ChunkId>& ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : ids) {
    auto it = pins_.find(id);
    if (it != pins_.end() && --it->second == 0) pins_.erase(it);
  }
}

bool PinSet::IsPinned(const ChunkId& id) { return pins_.count(id) != 0; }

// ---- open ---------------------------------------------------------------------------------------

Result<std::unique_ptr<Store>> Store::Open(const Options& options) {
  Db::OpenOptions dbo;
  dbo.min_free_bytes = options.min_free_bytes;
  dbo.read_only = options.read_only;
  ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(options.data_dir + "/db", dbo));
  ASSIGN_OR_RETURN(auto format, db->Get(Cf::kDefault, kFormatKey));
  if (!format && db->read_only()) {
    return FailedPreconditionError("no store at " + options.data_dir + " (and it cannot be created read-only)");
  }
  if (!format) {
    auto b = db->NewBatch();
    b.Put(Cf::kDefault, kFormatKey, kFormatValue);
    RETURN_IF_ERROR(db->Write(b, /*sync=*/true));
  } else if (*format != kFormatValue) {
    return FailedPreconditionError("store at " + options.data_dir + " has format '" + format->substr(0, 64) +
                                   "'; this hubnode reads '" + std::string(kFormatValue) + "'");
  }
  auto impl = std::make_unique<StoreImpl>(options, std::move(db));
  RETURN_IF_ERROR(impl->LoadTierCache());
  return std::unique_ptr<Store>(std::move(impl));
}

Status Store::Restore(const std::string& backup_dir, const std::string& data_dir) {
  RETURN_IF_ERROR(Db::Restore(backup_dir, data_dir + "/db"));
  // A restored copy is another store: it gets its own id at first use, so it never passes for
  // the original as a chunk tier's writer.
  ASSIGN_OR_RETURN(std::unique_ptr<Db> db, Db::Open(data_dir + "/db", Db::OpenOptions()));
  auto b = db->NewBatch();
  b.Delete(Cf::kDefault, kStoreIdKey);
  return db->Write(b, /*sync=*/true);
}

StoreImpl::StoreImpl(const Options& options, std::unique_ptr<Db> db)
    : options_(options), db_(std::move(db)), pool_(options.ingest_threads) {
  // A pack's index is within its size (PackBuilder::bytes), and readers refuse indexes over
  // kMaxPackIndexBytes: no pack may be larger.
  options_.pack_bytes = std::clamp<uint64_t>(options_.pack_bytes, 1, kMaxPackIndexBytes);
}

// ---- repos and refs -----------------------------------------------------------------------------

Result<std::vector<RepoInfo>> StoreImpl::ListRepos() {
  std::vector<RepoInfo> out;
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kRepos, "", [&](std::string_view k, std::string_view v) {
    auto id = RepoId::Parse(k);
    auto info = id.ok() ? DecodeRepo(*id, v) : Result<RepoInfo>(id.status());
    if (!info.ok()) {
      err = DataLossError("corrupt repo record: " + info.status().message());
      return false;
    }
    out.push_back(*info);
    return true;
  }));
  RETURN_IF_ERROR(err);
  return out;
}

Result<RepoInfo> StoreImpl::GetRepo(const RepoId& repo) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kRepos, repo.str()));
  if (!v) return NotFoundError("repository '" + repo.str() + "' not found");
  return DecodeRepo(repo, *v);
}

Status StoreImpl::SetVisibility(const RepoId& repo, Visibility visibility) {
  RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(commit_mu_);
  ASSIGN_OR_RETURN(RepoInfo info, GetRepo(repo));
  info.visibility = visibility;
  auto b = db_->NewBatch();
  b.Put(Cf::kRepos, repo.str(), EncodeRepo(info));
  return db_->Write(b, /*sync=*/true);
}

Result<std::vector<RefInfo>> StoreImpl::ListRefs(const RepoId& repo) {
  RETURN_IF_ERROR(GetRepo(repo).status());
  std::vector<RefInfo> out;
  std::string prefix = RefKey(repo, "");
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kRefs, prefix, [&](std::string_view k, std::string_view v) {
    auto oid = GitOid::FromBytes(v);
    if (!oid.ok()) {
      err = DataLossError("corrupt ref record");
      return false;
    }
    out.push_back(RefInfo{std::string(k.substr(prefix.size())), *oid});
    return true;
  }));
  RETURN_IF_ERROR(err);
  return out;
}

Result<std::optional<GitOid>> StoreImpl::ReadRef(const RepoId& repo, std::string_view ref) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kRefs, RefKey(repo, ref)));
  if (!v) return std::optional<GitOid>();
  ASSIGN_OR_RETURN(GitOid oid, GitOid::FromBytes(*v));
  return std::optional<GitOid>(oid);
}

Result<std::string> StoreImpl::BranchRef(std::string_view branch) {
  std::string ref = branch.rfind("refs/", 0) == 0 ? std::string(branch) : "refs/heads/" + std::string(branch);
  RETURN_IF_ERROR(ValidateRefName(ref));
  return ref;
}

Result<GitOid> StoreImpl::Resolve(const RepoId& repo, std::string_view rev, bool staged) {
  ASSIGN_OR_RETURN(RepoInfo info, GetRepo(repo));
  if (rev.empty() || rev.size() > 255) return InvalidArgumentError("invalid revision");
  if (rev == "HEAD") rev = info.default_branch;
  auto not_found = [&] {
    return NotFoundError("revision '" + std::string(rev) + "' not found in " + repo.str());
  };
  if (rev.size() == 40 && IsLowerHex(rev)) {
    ASSIGN_OR_RETURN(GitOid want, GitOid::FromHex(rev));
    // A commit id resolves only if one of this repo's refs reaches it: objects are shared across
    // repos, and a commit of another (maybe private) repo must not be readable through this one.
    ASSIGN_OR_RETURN(auto refs, ListRefs(repo));
    std::vector<GitOid> stack;
    std::unordered_set<GitOid, DigestHash> seen;
    for (const auto& r : refs) {
      // Staged commits (refs/held/) are served to the repo's writers only.
      if (staged || r.name.rfind("refs/held/", 0) != 0) stack.push_back(r.commit);
    }
    while (!stack.empty() && seen.size() < kMaxReachabilityWalk) {
      GitOid c = stack.back();
      stack.pop_back();
      if (!seen.insert(c).second) continue;
      if (c == want) return want;
      ASSIGN_OR_RETURN(CommitInfo ci, GetCommit(c));
      for (const auto& p : ci.parents) stack.push_back(p);
    }
    // An upstream commit id this repo mirrors.
    ASSIGN_OR_RETURN(auto alias, ReadRef(repo, "refs/mirror/" + std::string(rev)));
    if (alias) return *alias;
    return not_found();
  }
  std::vector<std::string> candidates;
  if (rev.rfind("refs/", 0) == 0) {
    if (staged && rev.rfind("refs/heads/", 0) == 0) candidates.push_back("refs/held/" + std::string(rev.substr(11)));
    candidates.emplace_back(rev);
  } else {
    if (staged) candidates.push_back("refs/held/" + std::string(rev));
    candidates.push_back("refs/heads/" + std::string(rev));
    candidates.push_back("refs/tags/" + std::string(rev));
  }
  for (const auto& ref : candidates) {
    if (!ValidateRefName(ref).ok()) continue;
    if (ref.rfind("refs/held/", 0) == 0 && !(staged && candidates.front() == ref)) continue;
    ASSIGN_OR_RETURN(auto oid, ReadRef(repo, ref));
    if (oid) return *oid;
  }
  return not_found();
}

Status StoreImpl::UpdateRef(const RepoId& repo, std::string_view ref, const GitOid& expected,
                            const GitOid& target) {
  RETURN_IF_ERROR(CheckWritable());
  RETURN_IF_ERROR(ValidateRefName(ref));
  // Checked under the lock GC and repo deletes hold: the repo and the target cannot go between
  // check and write.
  std::lock_guard<std::mutex> lock(commit_mu_);
  RETURN_IF_ERROR(GetRepo(repo).status());
  if (!target.IsZero()) {
    ASSIGN_OR_RETURN(StoredObject o, GetObject(target, "commit"));
    if (o.type != ObjectType::kCommit) return InvalidArgumentError(target.hex() + " is not a commit");
  }
  ASSIGN_OR_RETURN(auto current, ReadRef(repo, ref));
  GitOid cur = current.value_or(GitOid());
  if (cur != expected) {
    return FailedPreconditionError(std::string(ref) + " of " + repo.str() + " is at " +
                                   (current ? cur.hex() : std::string("(none)")) + ", expected " +
                                   (expected.IsZero() ? std::string("(none)") : expected.hex()));
  }
  auto b = db_->NewBatch();
  if (target.IsZero()) {
    b.Delete(Cf::kRefs, RefKey(repo, ref));
  } else {
    b.Put(Cf::kRefs, RefKey(repo, ref), target.view());
  }
  return db_->Write(b, /*sync=*/true);
}

// ---- objects ------------------------------------------------------------------------------------

Result<StoredObject> StoreImpl::GetObject(const GitOid& oid, std::string_view what) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kObjects, oid.view()));
  if (!v) return NotFoundError(std::string(what) + " " + oid.hex() + " not found");
  return DecodeObject(*v);
}

Result<FileRecord> StoreImpl::GetFileRecord(const Sha256Digest& content) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kFiles, content.view()));
  if (!v) return DataLossError("file content " + content.hex() + " is missing from the store");
  return DecodeFileRecord(*v);
}

Result<CommitInfo> StoreImpl::GetCommit(const GitOid& commit) {
  ASSIGN_OR_RETURN(StoredObject o, GetObject(commit, "commit"));
  if (o.type != ObjectType::kCommit) return NotFoundError(commit.hex() + " is not a commit");
  ASSIGN_OR_RETURN(CommitObject c, DecodeCommit(o.body));
  CommitInfo info;
  info.id = commit;
  info.tree = c.tree;
  info.parents = c.parents;
  info.author = c.author;
  info.committer = c.committer;
  info.message = c.message;
  return info;
}

Result<std::vector<CommitInfo>> StoreImpl::Log(const GitOid& commit, size_t limit) {
  std::vector<CommitInfo> out;
  GitOid cur = commit;
  while (out.size() < limit) {
    ASSIGN_OR_RETURN(CommitInfo c, GetCommit(cur));
    bool has_parent = !c.parents.empty();
    if (has_parent) cur = c.parents[0];
    out.push_back(std::move(c));
    if (!has_parent) break;
  }
  return out;
}

Result<FileEntry> StoreImpl::EntryFor(const std::string& path, const TreeEntry& e) {
  ASSIGN_OR_RETURN(StoredObject o, GetObject(e.oid, "blob"));
  FileEntry f;
  f.path = path;
  f.mode = e.mode;
  f.blob = e.oid;
  if (o.type == ObjectType::kChunkedBlob) {
    f.size = o.size;
    f.sha256 = o.content;
  } else if (o.type == ObjectType::kInlineBlob) {
    auto ptr = ParseLfsPointer(o.body);
    if (!ptr) return DataLossError("inline blob " + e.oid.hex() + " is not an LFS pointer");
    f.lfs = true;
    f.size = ptr->size;
    f.sha256 = ptr->oid;
    f.pointer_size = o.body.size();
  } else {
    return DataLossError("tree entry " + path + " does not name a blob");
  }
  return f;
}

Status StoreImpl::WalkTree(const GitOid& oid, const std::string& prefix,
                           const std::function<Status(const std::string&, const TreeEntry&)>& fn) {
  ASSIGN_OR_RETURN(StoredObject o, GetObject(oid, "tree"));
  if (o.type != ObjectType::kTree) return DataLossError(oid.hex() + " is not a tree");
  ASSIGN_OR_RETURN(auto entries, DecodeTree(o.body));
  for (const auto& e : entries) {
    std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.mode == kModeTree) {
      RETURN_IF_ERROR(WalkTree(e.oid, path, fn));
    } else {
      RETURN_IF_ERROR(fn(path, e));
    }
  }
  return OkStatus();
}

Result<std::vector<FileEntry>> StoreImpl::ListFiles(const GitOid& commit) {
  ASSIGN_OR_RETURN(CommitInfo c, GetCommit(commit));
  std::vector<FileEntry> out;
  RETURN_IF_ERROR(WalkTree(c.tree, "", [&](const std::string& path, const TreeEntry& e) -> Status {
    ASSIGN_OR_RETURN(FileEntry f, EntryFor(path, e));
    out.push_back(std::move(f));
    return OkStatus();
  }));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return out;
}

Result<TreeItem> StoreImpl::StatPath(const GitOid& commit, std::string_view path) {
  ASSIGN_OR_RETURN(CommitInfo c, GetCommit(commit));
  TreeItem item;
  item.is_dir = true;
  item.oid = c.tree;
  uint32_t mode = kModeTree;
  if (path.empty()) return item;
  RETURN_IF_ERROR(ValidatePath(path));
  std::string_view rest = path;
  while (true) {
    if (!item.is_dir) return NotFoundError("'" + std::string(path) + "' not found in " + commit.hex());
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    ASSIGN_OR_RETURN(StoredObject o, GetObject(item.oid, "tree"));
    if (o.type != ObjectType::kTree) return DataLossError(item.oid.hex() + " is not a tree");
    ASSIGN_OR_RETURN(auto entries, DecodeTree(o.body));
    auto it = std::find_if(entries.begin(), entries.end(), [&](const TreeEntry& e) { return e.name == part; });
    if (it == entries.end()) return NotFoundError("'" + std::string(path) + "' not found in " + commit.hex());
    item.is_dir = it->mode == kModeTree;
    item.oid = it->oid;
    mode = it->mode;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  item.path = std::string(path);
  if (!item.is_dir) {
    ASSIGN_OR_RETURN(item.file, EntryFor(item.path, TreeEntry{mode, "", item.oid}));
  }
  return item;
}

Result<FileEntry> StoreImpl::StatFile(const GitOid& commit, std::string_view path) {
  RETURN_IF_ERROR(ValidatePath(path));
  ASSIGN_OR_RETURN(TreeItem item, StatPath(commit, path));
  if (item.is_dir) return NotFoundError("'" + std::string(path) + "' is a directory");
  return item.file;
}

Result<std::vector<TreeItem>> StoreImpl::ListTree(const GitOid& commit, std::string_view path, bool recursive) {
  ASSIGN_OR_RETURN(TreeItem dir, StatPath(commit, path));
  if (!dir.is_dir) return NotFoundError("'" + std::string(path) + "' is not a directory");
  std::vector<TreeItem> out;
  std::function<Status(const GitOid&, const std::string&)> list = [&](const GitOid& tree,
                                                                     const std::string& prefix) -> Status {
    ASSIGN_OR_RETURN(StoredObject o, GetObject(tree, "tree"));
    if (o.type != ObjectType::kTree) return DataLossError(tree.hex() + " is not a tree");
    ASSIGN_OR_RETURN(auto entries, DecodeTree(o.body));
    for (const auto& e : entries) {
      TreeItem item;
      item.path = prefix.empty() ? e.name : prefix + "/" + e.name;
      item.oid = e.oid;
      item.is_dir = e.mode == kModeTree;
      if (!item.is_dir) {
        ASSIGN_OR_RETURN(item.file, EntryFor(item.path, e));
      }
      out.push_back(item);
      if (item.is_dir && recursive) RETURN_IF_ERROR(list(e.oid, item.path));
    }
    return OkStatus();
  };
  RETURN_IF_ERROR(list(dir.oid, std::string(path)));
  return out;
}

// ---- tensors and experts ------------------------------------------------------------------------

Result<std::vector<FileChunk>> StoreImpl::ListChunks(const FileEntry& file) {
  ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(file.sha256));
  std::vector<FileChunk> out;
  out.reserve(r.chunks.size());
  uint64_t offset = 0;
  for (const ChunkRef& c : r.chunks) {
    out.push_back(FileChunk{c.id, offset, c.raw_len});
    offset += c.raw_len;
  }
  if (offset != r.size) return DataLossError("file record of " + file.path + ": chunk sizes do not sum to its size");
  return out;
}

Result<std::string> StoreImpl::ReadChunkRecord(const ChunkId& id) {
  ASSIGN_OR_RETURN(auto rec, db_->Get(Cf::kChunks, id.view()));
  if (!rec) {
    // A tiered chunk comes from its pack, checked against its id.
    ASSIGN_OR_RETURN(auto tiered, FetchTiered(id));
    if (tiered) return std::move(tiered->record);
    return NotFoundError("chunk " + id.hex() + " is not held here");
  }
  return std::move(*rec);
}

Result<std::vector<bool>> StoreImpl::HasChunks(const std::vector<ChunkId>& ids) {
  std::vector<bool> out;
  out.reserve(ids.size());
  bool missing = false;
  for (const ChunkId& id : ids) {
    ASSIGN_OR_RETURN(bool has, db_->Has(Cf::kChunkMeta, id.view()));
    out.push_back(has);
    missing = missing || !has;
  }
  // With a chunk tier, a chunk another node put in the bucket counts as held once its pack is
  // indexed here (a reader node pulls a writer's commits without fetching their chunks).
  if (missing && tier()) {
    for (bool full : {false, true}) {
      Status s = IndexPacks(full, /*urgent=*/false);
      if (!s.ok()) LOG(Warning) << "chunk tier: " << s.message();
      missing = false;
      for (size_t i = 0; i < ids.size(); ++i) {
        if (out[i]) continue;
        ASSIGN_OR_RETURN(bool has, db_->Has(Cf::kChunkMeta, ids[i].view()));
        out[i] = has;
        missing = missing || !has;
      }
      if (!missing) break;
    }
  }
  return out;
}

Result<std::string> DecodeVerifiedChunk(const ChunkId& id, std::string_view record) {
  ASSIGN_OR_RETURN(std::string raw, DecodeChunk(record));
  if (ChunkIdOf(raw) != id) return DataLossError("chunk " + id.hex() + ": the bytes do not hash to its id");
  return raw;
}

Result<std::vector<TensorInfo>> StoreImpl::ListTensors(const FileEntry& file) {
  ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(file.sha256));
  return r.tensors;
}

Result<TensorLocation> StoreImpl::FindTensor(const GitOid& commit, std::string_view name) {
  ASSIGN_OR_RETURN(auto files, ListFiles(commit));
  for (const auto& f : files) {
    if (f.path.size() < 12 || f.path.substr(f.path.size() - 12) != ".safetensors") continue;
    ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(f.sha256));
    for (const auto& t : r.tensors) {
      if (t.name == name) return TensorLocation{f, t};
    }
  }
  return NotFoundError("tensor '" + std::string(name.substr(0, 300)) + "' not found in " + commit.hex());
}

Result<ExpertIndex> StoreImpl::GetExpertIndex(const GitOid& commit) {
  RETURN_IF_ERROR(GetCommit(commit).status());
  ExpertIndex out;
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kExperts, commit.view(), [&](std::string_view k, std::string_view v) {
    if (k.size() != 28) {
      err = DataLossError("corrupt expert index key");
      return false;
    }
    ExpertKey key{DecodeBigEndian32(k.data() + 20), DecodeBigEndian32(k.data() + 24)};
    auto parts = DecodeExpertParts(v);
    if (!parts.ok()) {
      err = parts.status();
      return false;
    }
    out[key] = std::move(*parts);
    return true;
  }));
  RETURN_IF_ERROR(err);
  return out;
}

// ---- stats --------------------------------------------------------------------------------------

Result<Stats> StoreImpl::GetStats() {
  Stats s;
  ASSIGN_OR_RETURN(auto repos, ListRepos());
  s.repos = repos.size();
  for (const auto& r : repos) {
    ASSIGN_OR_RETURN(auto refs, ListRefs(r.id));
    s.refs += refs.size();
    for (const auto& ref : refs) {
      ASSIGN_OR_RETURN(auto files, ListFiles(ref.commit));
      for (const auto& f : files) s.logical_bytes += f.size;
    }
  }
  RETURN_IF_ERROR(db_->Scan(Cf::kObjects, "", [&](std::string_view, std::string_view v) {
    if (!v.empty() && v[0] == static_cast<char>(ObjectType::kCommit)) ++s.commits;
    if (!v.empty() && v[0] == static_cast<char>(ObjectType::kTree)) ++s.trees;
    return true;
  }));
  RETURN_IF_ERROR(db_->Scan(Cf::kFiles, "", [&](std::string_view, std::string_view v) {
    ++s.files;
    if (v.size() >= 10) s.file_bytes += DecodeFixed64(v.data() + 2);
    return true;
  }));
  Status err;
  RETURN_IF_ERROR(db_->Scan(Cf::kChunkMeta, "", [&](std::string_view, std::string_view v) {
    auto m = DecodeChunkMeta(v);
    if (!m.ok()) {
      err = m.status();
      return false;
    }
    ++s.chunks;
    s.chunk_raw_bytes += m->raw_len;
    s.chunk_stored_bytes += m->stored_len;
    ++s.chunks_by_codec[std::string(CodecName(m->codec))];
    return true;
  }));
  RETURN_IF_ERROR(err);
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, kTierLocPrefix, [&](std::string_view, std::string_view v) {
    auto loc = DecodeChunkLoc(v);
    if (loc.ok()) {
      ++s.remote_chunks;
      s.remote_bytes += loc->length;
    }
    return true;
  }));
  s.cached_chunks = tier_cache_.count();
  s.cached_bytes = tier_cache_.bytes();
  s.local_only_chunks = s.chunks - std::min(s.chunks, s.remote_chunks);
  // A location's length is the whole record: header and stored payload.
  const uint64_t remote_payload = s.remote_bytes - std::min(s.remote_bytes, s.remote_chunks * kChunkRecordHeader);
  s.local_only_bytes = s.chunk_stored_bytes - std::min(s.chunk_stored_bytes, remote_payload);
  s.disk_bytes = db_->DiskBytes();
  return s;
}

Result<std::string> FileReader::ReadToString(uint64_t offset, uint64_t length) {
  std::string out;
  out.reserve(length);
  RETURN_IF_ERROR(Read(offset, length, [&](std::string_view piece) {
    out.append(piece);
    return OkStatus();
  }));
  return out;
}

}  // namespace hubnode::store

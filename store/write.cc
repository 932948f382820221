// The write API of the store: content streamed in as it arrives (uploads), commits built from a
// parent and a list of changes, and repo create / delete / move.
#include <algorithm>
#include <cctype>
#include <ctime>
#include <deque>
#include <map>

#include "store/chunk_writer.h"
#include "store/chunker.h"
#include "store/expert_index.h"
#include "store/store_impl.h"

#include <cctype>

namespace hubnode::store {
namespace {

bool IsSafetensorsPath(std::string_view path) {
  return path.size() >= 12 && path.substr(path.size() - 12) == ".safetensors";
}

class ContentWriterImpl final : public ContentWriter {
 public:
  ContentWriterImpl(StoreImpl& store, ContentSpec spec)
      : store_(store), spec_(std::move(spec)), chunks_(store), strict_(IsSafetensorsPath(spec_.path)) {
    record_.size = spec_.size;
    if (spec_.git_blob) sha1_.Update(ObjectHeader("blob", spec_.size));
  }
  // Pool tasks write into slots_: wait for them before the members go.
  ~ContentWriterImpl() override { (void)group_.Wait(); }

  Status Write(std::string_view bytes) override {
    RETURN_IF_ERROR(status_);
    if (finished_) return FailedPreconditionError("content writer already finished");
    if (bytes.size() > spec_.size - received_) {
      return status_ = InvalidArgumentError("more bytes than the announced size of " + std::to_string(spec_.size));
    }
    received_ += bytes.size();
    sha256_.Update(bytes);
    if (spec_.git_blob) sha1_.Update(bytes);
    status_ = mode_ == Mode::kPlain ? FeedPlain(bytes) : FeedSafetensors(bytes);
    if (status_.ok() && group_.failed()) status_ = group_.Wait();
    return status_;
  }

  Result<ContentInfo> Finish() override {
    RETURN_IF_ERROR(status_);
    if (finished_) return FailedPreconditionError("content writer already finished");
    finished_ = true;
    if (received_ != spec_.size) {
      return status_ = InvalidArgumentError("got " + std::to_string(received_) + " bytes of the announced " +
                                            std::to_string(spec_.size));
    }
    if (mode_ == Mode::kUnknown) RETURN_IF_ERROR(status_ = FallBackToPlain({}));
    if (mode_ == Mode::kPlain && !pending_->empty()) Emit(std::move(pending_), ElementKind::kBytes);
    RETURN_IF_ERROR(status_ = group_.Wait().WithContext(spec_.path));
    RETURN_IF_ERROR(status_ = chunks_.Flush().WithContext(spec_.path));
    ContentInfo info;
    info.sha256 = sha256_.Finish();
    if (spec_.sha256 && *spec_.sha256 != info.sha256) {
      return status_ = InvalidArgumentError("content SHA-256 " + info.sha256.hex() + " is not the announced " +
                                            spec_.sha256->hex());
    }
    if (spec_.git_blob) info.git_blob = sha1_.Finish();
    info.size = spec_.size;
    record_.chunks.assign(slots_.begin(), slots_.end());
    ChunkCounts c = chunks_.counts();
    info.chunks = record_.chunks.size();
    info.new_chunks = c.new_chunks;
    info.new_raw_bytes = c.new_raw_bytes;
    info.new_stored_bytes = c.new_stored_bytes;
    // Same bytes, same record, except that content first stored as a plain file (an import
    // under another name) gets its tensor-aware record once it is known to be safetensors.
    ASSIGN_OR_RETURN(auto existing, store_.db().Get(Cf::kFiles, info.sha256.view()));
    bool write = !existing;
    if (existing && record_.kind == FileRecord::Kind::kSafetensors) {
      auto old = DecodeFileRecord(*existing);
      write = !old.ok() || old->kind != FileRecord::Kind::kSafetensors;
    }
    if (write) {
      auto batch = store_.db().NewBatch();
      batch.Put(Cf::kFiles, info.sha256.view(), EncodeFileRecord(record_));
      RETURN_IF_ERROR(store_.db().Write(batch, /*sync=*/false));
    }
    return info;
  }

 private:
  void Emit(std::shared_ptr<std::string> data, ElementKind kind) {
    slots_.emplace_back();
    chunks_.Submit(std::move(data), kind, &slots_.back(), &group_);
  }

  Status FeedPlain(std::string_view view) {
    while (!view.empty()) {
      size_t cut = gear_.Next(view);
      if (cut == GearChunker::kNoCut) {
        pending_->append(view);
        break;
      }
      pending_->append(view.substr(0, cut));
      view.remove_prefix(cut);
      Emit(std::move(pending_), ElementKind::kBytes);
      pending_ = std::make_shared<std::string>();
    }
    return OkStatus();
  }

  // Not (yet) known to be safetensors: the head is kept whole until its header is parsed. A
  // content that turns out not to be safetensors is chunked by content from its first byte.
  Status FallBackToPlain(std::string_view rest) {
    if (strict_) return InvalidArgumentError(spec_.path + ": not a valid safetensors file");
    mode_ = Mode::kPlain;
    std::string head = std::move(head_);
    head_.clear();
    RETURN_IF_ERROR(FeedPlain(head));
    return FeedPlain(rest);
  }

  Status FeedSafetensors(std::string_view view) {
    if (!pieces_.empty()) return CutPieces(view);
    size_t want = header_end_ == 0 ? 9 : static_cast<size_t>(header_end_);
    size_t take = std::min(view.size(), want - std::min(want, head_.size()));
    head_.append(view.substr(0, take));
    view.remove_prefix(take);
    if (header_end_ == 0) {
      if (head_.size() < 9) return OkStatus();
      uint64_t n = 0;
      for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(head_[i]);
      // A sniffed header (not a `.safetensors` path) is held in memory only up to 16 MiB: real
      // headers are far smaller, and an upload must not pin 100 MB of look-alike bytes.
      const uint64_t limit = strict_ ? kMaxSafetensorsHeader : uint64_t{16} << 20;
      if (head_[8] != '{' || n > limit || 8 + n > spec_.size) {
        if (strict_ && n > kMaxSafetensorsHeader) {
          return InvalidArgumentError(spec_.path + ": safetensors header of " + std::to_string(n) +
                                      " bytes is over the limit of " + std::to_string(kMaxSafetensorsHeader));
        }
        if (strict_ && 8 + n > spec_.size) return InvalidArgumentError(spec_.path + ": safetensors header runs past the file");
        return FallBackToPlain(view);
      }
      header_end_ = 8 + n;
      return FeedSafetensors(view);
    }
    if (head_.size() < header_end_) return OkStatus();
    auto header = ParseSafetensorsHeader(std::string_view(head_).substr(8), spec_.size);
    if (!header.ok()) {
      if (strict_) return header.status().WithContext(spec_.path);
      return FallBackToPlain(view);
    }
    std::vector<Piece> pieces = PlanSafetensorsChunks(*header, store_.options().max_chunk_size);
    uint64_t at = 0;
    for (const auto& p : pieces) {
      if (p.offset != at) break;
      at += p.length;
    }
    if (at != spec_.size) {
      if (strict_) return InvalidArgumentError(spec_.path + ": the tensors do not cover the file");
      return FallBackToPlain(view);
    }
    mode_ = Mode::kSafetensors;
    record_.kind = FileRecord::Kind::kSafetensors;
    record_.header_end = header->header_end;
    for (const auto& t : header->tensors) record_.tensors.push_back(TensorInfo{t.name, t.dtype, t.shape, t.begin, t.end});
    pieces_ = std::move(pieces);
    std::string head = std::move(head_);
    head_.clear();
    RETURN_IF_ERROR(CutPieces(head));
    return CutPieces(view);
  }

  Status CutPieces(std::string_view view) {
    while (!view.empty()) {
      if (piece_ >= pieces_.size()) return InternalError("safetensors piece plan exhausted");
      const Piece& p = pieces_[piece_];
      if (!cur_) {
        cur_ = std::make_shared<std::string>();
        cur_->reserve(p.length);
      }
      size_t take = static_cast<size_t>(std::min<uint64_t>(view.size(), p.length - cur_->size()));
      cur_->append(view.substr(0, take));
      view.remove_prefix(take);
      if (cur_->size() == p.length) {
        Emit(std::move(cur_), p.kind);
        cur_.reset();
        ++piece_;
      }
    }
    return OkStatus();
  }

  StoreImpl& store_;
  ContentSpec spec_;
  ChunkWriter chunks_;
  TaskGroup group_;
  std::deque<ChunkRef> slots_;  // stable addresses as it grows
  // A `.safetensors` path must hold a valid safetensors file; any other content is sniffed.
  bool strict_;
  enum class Mode { kUnknown, kSafetensors, kPlain };
  Mode mode_ = Mode::kUnknown;
  Sha256 sha256_;
  Sha1 sha1_;
  uint64_t received_ = 0;
  bool finished_ = false;
  Status status_;
  FileRecord record_;
  // Plain files.
  GearChunker gear_;
  std::shared_ptr<std::string> pending_ = std::make_shared<std::string>();
  // Safetensors files.
  std::string head_;
  uint64_t header_end_ = 0;
  std::vector<Piece> pieces_;
  size_t piece_ = 0;
  std::shared_ptr<std::string> cur_;
};

struct TreeSlot {
  uint32_t mode = kModeFile;
  GitOid blob;
  Sha256Digest sha256;
  uint64_t size = 0;
};

}  // namespace

Result<std::unique_ptr<ContentWriter>> StoreImpl::NewContentWriter(const ContentSpec& spec) {
  RETURN_IF_ERROR(CheckWritable());
  RETURN_IF_ERROR(ValidatePath(spec.path));
  return std::unique_ptr<ContentWriter>(new ContentWriterImpl(*this, spec));
}

Result<bool> StoreImpl::HasContent(const Sha256Digest& sha256, uint64_t size) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kFiles, sha256.view()));
  if (!v) return false;
  ASSIGN_OR_RETURN(FileRecord r, DecodeFileRecord(*v));
  return r.size == size;
}

Result<WrittenCommit> StoreImpl::WriteCommit(const CommitSpec& spec) {
  RETURN_IF_ERROR(CheckWritable());
  std::map<std::string, TreeSlot> files;
  GitOid parent_tree;
  if (spec.parent) {
    ASSIGN_OR_RETURN(CommitInfo pc, GetCommit(*spec.parent));
    parent_tree = pc.tree;
    ASSIGN_OR_RETURN(auto entries, ListFiles(*spec.parent));
    for (const auto& e : entries) files[e.path] = TreeSlot{e.mode, e.blob, e.sha256, e.size};
  }
  auto is_dir = [&](const std::string& path) {
    auto it = files.lower_bound(path + "/");
    return it != files.end() && it->first.starts_with(path + "/");
  };

  std::map<GitOid, std::string> objects;
  for (const FileChange& c : spec.changes) {
    std::string path = c.path;
    if (c.kind == FileChange::Kind::kDeleteFolder) {
      while (!path.empty() && path.back() == '/') path.pop_back();
      RETURN_IF_ERROR(ValidatePath(path));
      auto it = files.lower_bound(path + "/");
      if (it == files.end() || !it->first.starts_with(path + "/")) {
        return NotFoundError("no folder " + path + " to delete");
      }
      while (it != files.end() && it->first.starts_with(path + "/")) it = files.erase(it);
      continue;
    }
    RETURN_IF_ERROR(ValidatePath(path));
    if (c.kind == FileChange::Kind::kDelete) {
      if (files.erase(path) == 0) return NotFoundError("no file " + path + " to delete");
      continue;
    }
    if (is_dir(path)) return InvalidArgumentError(path + " is a folder; it cannot become a file");
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      if (files.count(path.substr(0, slash))) {
        return InvalidArgumentError(path.substr(0, slash) + " is a file; it cannot hold " + path);
      }
    }
    ASSIGN_OR_RETURN(bool held, HasContent(c.sha256, c.size));
    if (!held) {
      return NotFoundError("content " + c.sha256.hex() + " of " + std::to_string(c.size) + " bytes for " + path +
                           " is not on this node (upload it first)");
    }
    if (IsSafetensorsPath(path)) {
      ASSIGN_OR_RETURN(FileRecord rec, GetFileRecord(c.sha256));
      if (rec.kind != FileRecord::Kind::kSafetensors) {
        return InvalidArgumentError(path + " is not a valid safetensors file (its header did not parse)");
      }
    }
    TreeSlot slot;
    auto old = files.find(path);
    if (old != files.end()) slot.mode = old->second.mode;
    slot.sha256 = c.sha256;
    slot.size = c.size;
    if (c.lfs) {
      std::string pointer = LfsPointer(c.sha256, c.size);
      slot.blob = HashObject("blob", pointer);
      objects[slot.blob] = EncodeObject(StoredObject{ObjectType::kInlineBlob, pointer, {}, 0});
    } else {
      if (c.git_blob.IsZero()) return InvalidArgumentError(path + ": a regular file needs its git blob id");
      // A stored blob of that id must hold these very bytes (the id is the caller's word).
      ASSIGN_OR_RETURN(auto stored, db_->Get(Cf::kObjects, c.git_blob.view()));
      if (stored) {
        ASSIGN_OR_RETURN(StoredObject o, DecodeObject(*stored));
        bool same = (o.type == ObjectType::kChunkedBlob && o.content == c.sha256 && o.size == c.size) ||
                    (o.type == ObjectType::kInlineBlob && o.body.size() == c.size && Sha256Of(o.body) == c.sha256);
        if (!same) return InvalidArgumentError(path + ": git blob id " + c.git_blob.hex() + " does not match its content");
      }
      slot.blob = c.git_blob;
      objects[slot.blob] = EncodeObject(StoredObject{ObjectType::kChunkedBlob, {}, c.sha256, c.size});
    }
    files[path] = slot;
  }

  std::vector<TreeFile> tree_files;
  tree_files.reserve(files.size());
  for (const auto& [path, slot] : files) tree_files.push_back(TreeFile{path, slot.mode, slot.blob});
  GitOid tree = BuildTrees(tree_files, [&](const GitOid& oid, const std::string& body) {
    objects[oid] = EncodeObject(StoredObject{ObjectType::kTree, body, {}, 0});
  });
  WrittenCommit out;
  out.files = files.size();
  for (const GitOid& m : spec.merged) RETURN_IF_ERROR(GetCommit(m).status());
  if (spec.parent && tree == parent_tree && spec.merged.empty()) {
    out.commit = *spec.parent;
    out.changed = false;
    return out;
  }

  ExpertIndex experts;
  for (const auto& [path, slot] : files) {
    if (!IsSafetensorsPath(path)) continue;
    ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(slot.sha256));
    AddExpertParts(path, r.tensors, &experts);
  }
  CommitObject commit;
  commit.tree = tree;
  if (spec.parent) commit.parents.push_back(*spec.parent);
  for (const GitOid& m : spec.merged) commit.parents.push_back(m);
  commit.author = spec.author;
  if (commit.author.time == 0) commit.author.time = static_cast<int64_t>(std::time(nullptr));
  commit.committer = commit.author;
  commit.message = spec.message.empty() ? "Update files" : spec.message;
  std::string body = EncodeCommit(commit);
  out.commit = HashObject("commit", body);
  objects[out.commit] = EncodeObject(StoredObject{ObjectType::kCommit, body, {}, 0});

  auto batch = db_->NewBatch();
  // An object id names its bytes: one already stored is never replaced (a regular file whose text
  // is an LFS pointer has the pointer blob's id, and must not turn that blob into a chunked one).
  for (const auto& [oid, value] : objects) {
    ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kObjects, oid.view()));
    if (!have) batch.Put(Cf::kObjects, oid.view(), value);
  }
  for (const auto& [key, parts] : experts) batch.Put(Cf::kExperts, ExpertKeyBytes(out.commit, key), EncodeExpertParts(parts));
  RETURN_IF_ERROR(db_->Write(batch, /*sync=*/false));
  return out;
}

ElementKindHint ElementKindForDtype(std::string_view dtype) {
  if (dtype == "BF16" || dtype == "F16") return ElementKindHint::k2Byte;
  if (dtype == "F32") return ElementKindHint::k4Byte;
  return ElementKindHint::kBytes;
}

Status StoreImpl::PutChunk(const ChunkId& id, std::string_view raw, ElementKindHint hint) {
  if (raw.size() > (uint64_t{128} << 20)) return InvalidArgumentError("chunk over 128 MiB");
  if (ChunkIdOf(raw) != id) return InvalidArgumentError("chunk bytes do not hash to " + id.hex());
  ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kChunkMeta, id.view()));
  if (have) return OkStatus();
  return ReplaceChunk(id, raw, hint);
}

Status StoreImpl::ReplaceChunk(const ChunkId& id, std::string_view raw, ElementKindHint hint) {
  const Options& o = options();
  CodecPolicy policy = !o.compress ? CodecPolicy::kRawOnly : o.byte_grouping ? CodecPolicy::kAuto : CodecPolicy::kZstdOnly;
  ElementKind kind = hint == ElementKindHint::k2Byte ? ElementKind::k2Byte
                     : hint == ElementKindHint::k4Byte ? ElementKind::k4Byte
                                                       : ElementKind::kBytes;
  EncodedChunk enc = EncodeChunk(raw, kind, policy, o.zstd_level);
  uint32_t stored = static_cast<uint32_t>(enc.record.size() - kChunkRecordHeader);
  auto batch = db_->NewBatch();
  batch.Put(Cf::kChunks, id.view(), enc.record);
  batch.Put(Cf::kChunkMeta, id.view(), EncodeChunkMeta(ChunkMeta{enc.codec, static_cast<uint32_t>(raw.size()), stored}));
  return db_->Write(batch, /*sync=*/false);
}

Status StoreImpl::RecordContent(const PartialContent& content) {
  RETURN_IF_ERROR(CheckWritable());
  RETURN_IF_ERROR(ValidatePath(content.path));
  FileRecord record;
  record.size = content.size;
  uint64_t at = 0;
  for (const auto& c : content.chunks) {
    if (c.offset != at || c.size == 0) return InvalidArgumentError(content.path + ": the chunk list has a gap or an empty chunk");
    if (c.size > (uint32_t{128} << 20)) return InvalidArgumentError(content.path + ": a chunk over 128 MiB");
    record.chunks.push_back(ChunkRef{c.id, c.size});
    at += c.size;
  }
  if (at != content.size) return InvalidArgumentError(content.path + ": the chunks do not add up to the file's size");
  if (IsSafetensorsPath(content.path) && !content.chunks.empty()) {
    // The header is the first chunk; the tensors it lists must be cut exactly as this store cuts.
    ASSIGN_OR_RETURN(auto rec, db_->Get(Cf::kChunks, content.chunks[0].id.view()));
    if (!rec) return FailedPreconditionError(content.path + ": its header chunk is not held");
    ASSIGN_OR_RETURN(std::string head, DecodeOwnedChunk(std::move(*rec)));
    if (head.size() < 8) return InvalidArgumentError(content.path + ": header chunk too short");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(head[i]);
    if (8 + n != head.size()) return InvalidArgumentError(content.path + ": the first chunk is not exactly the header");
    ASSIGN_OR_RETURN(SafetensorsHeader header, ParseSafetensorsHeader(std::string_view(head).substr(8), content.size));
    std::vector<Piece> plan = PlanSafetensorsChunks(header, options().max_chunk_size);
    if (plan.size() != content.chunks.size()) {
      return InvalidArgumentError(content.path + ": chunked differently from this store (" + std::to_string(plan.size()) +
                                  " chunks planned, " + std::to_string(content.chunks.size()) + " listed)");
    }
    for (size_t i = 0; i < plan.size(); ++i) {
      if (plan[i].offset != content.chunks[i].offset || plan[i].length != content.chunks[i].size) {
        return InvalidArgumentError(content.path + ": chunk " + std::to_string(i) + " is cut differently from this store");
      }
    }
    record.kind = FileRecord::Kind::kSafetensors;
    record.header_end = header.header_end;
    for (const auto& t : header.tensors) record.tensors.push_back(TensorInfo{t.name, t.dtype, t.shape, t.begin, t.end});
  }
  ASSIGN_OR_RETURN(auto existing, db_->Get(Cf::kFiles, content.sha256.view()));
  if (existing) {
    auto old = DecodeFileRecord(*existing);
    if (old.ok() && (old->kind == FileRecord::Kind::kSafetensors || record.kind != FileRecord::Kind::kSafetensors)) {
      return OkStatus();
    }
    // The same bytes were stored plain (imported under another name): re-cut them by tensor here
    // when every old chunk is held, so nothing has to be fetched; then the tensor-aware record wins.
    if (old.ok()) {
      std::vector<ChunkId> ids;
      for (const auto& c : old->chunks) ids.push_back(c.id);
      ASSIGN_OR_RETURN(std::vector<bool> held, HasChunks(ids));
      if (std::find(held.begin(), held.end(), false) == held.end()) {
        FileEntry entry;
        entry.path = content.path;
        entry.size = content.size;
        entry.sha256 = content.sha256;
        ASSIGN_OR_RETURN(auto reader, OpenFile(entry));
        for (size_t i = 0; i < content.chunks.size(); ++i) {
          const FileChunk& c = content.chunks[i];
          ASSIGN_OR_RETURN(std::string piece, reader->ReadToString(c.offset, c.size));
          ElementKindHint hint = ElementKindHint::kBytes;
          for (const auto& t : record.tensors) {
            if (c.offset >= t.begin && c.offset < t.end) hint = ElementKindForDtype(t.dtype);
          }
          RETURN_IF_ERROR(PutChunk(c.id, piece, hint));
        }
      }
    }
  }
  auto batch = db_->NewBatch();
  batch.Put(Cf::kFiles, content.sha256.view(), EncodeFileRecord(record));
  return db_->Write(batch, /*sync=*/false);
}

void StoreImpl::SetChunkSource(ChunkSource source) {
  std::lock_guard<std::mutex> lock(source_mu_);
  source_ = source ? std::make_shared<const ChunkSource>(std::move(source)) : nullptr;
}

std::shared_ptr<const ChunkSource> StoreImpl::chunk_source() {
  std::lock_guard<std::mutex> lock(source_mu_);
  return source_;
}

bool ReservedRepoName(const RepoId& repo) {
  static constexpr std::string_view kReserved[] = {"api", "datasets", "spaces", "models", "v1", "metrics", "health", "static"};
  const std::string& s = repo.str();
  const std::string first = s.substr(0, s.find('/'));
  std::string lower = first;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view r : kReserved) {
    if (lower == r) return true;
  }
  return false;
}

Status StoreImpl::CheckNewRepoName(const RepoId& repo, const RepoId* except) {
  if (ReservedRepoName(repo)) {
    return InvalidArgumentError("'" + repo.str() + "' is not a repo name this node can serve: '" +
                                repo.str().substr(0, repo.str().find('/')) + "' is a path of its API");
  }
  auto fold = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const std::string want = fold(repo.str());
  Status taken;
  RETURN_IF_ERROR(db_->Scan(Cf::kRepos, "", [&](std::string_view k, std::string_view) {
    if (fold(k) == want && !(except && k == except->str())) {
      // The other repo is not named: it may be private to another namespace.
      taken = AlreadyExistsError("repository '" + repo.str() + "' is taken: repo names are compared without case");
      return false;
    }
    return true;
  }));
  return taken;
}

Status StoreImpl::CreateRepo(const RepoId& repo, Visibility visibility) {
  RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(commit_mu_);
  ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kRepos, repo.str()));
  if (have) return AlreadyExistsError("repository '" + repo.str() + "' already exists");
  RETURN_IF_ERROR(CheckNewRepoName(repo, nullptr));
  RepoInfo info{repo};
  info.created = static_cast<int64_t>(std::time(nullptr));
  info.visibility = visibility;
  auto b = db_->NewBatch();
  b.Put(Cf::kRepos, repo.str(), EncodeRepo(info));
  return db_->Write(b, /*sync=*/true);
}

namespace {

// Repo records live in the default column family under "repodata/<repo>\0<key>".
std::string RepoDataKey(const RepoId& repo, std::string_view key) { return "repodata/" + RefKey(repo, key); }

Status ValidRepoDataKey(std::string_view key) {
  if (key.empty() || key.size() > 255 || key.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("invalid repo record key");
  }
  return OkStatus();
}

}  // namespace

Result<std::optional<std::string>> StoreImpl::GetRepoData(const RepoId& repo, std::string_view key) {
  RETURN_IF_ERROR(ValidRepoDataKey(key));
  RETURN_IF_ERROR(GetRepo(repo).status());
  return db_->Get(Cf::kDefault, RepoDataKey(repo, key));
}

Status StoreImpl::PutRepoData(const RepoId& repo,
                              const std::vector<std::pair<std::string, std::optional<std::string>>>& puts) {
  RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(commit_mu_);
  RETURN_IF_ERROR(GetRepo(repo).status());
  auto b = db_->NewBatch();
  for (const auto& [key, value] : puts) {
    RETURN_IF_ERROR(ValidRepoDataKey(key));
    if (value && value->size() > (1u << 20)) return InvalidArgumentError("a repo record is over 1 MiB");
    if (value) {
      b.Put(Cf::kDefault, RepoDataKey(repo, key), *value);
    } else {
      b.Delete(Cf::kDefault, RepoDataKey(repo, key));
    }
  }
  return db_->Write(b, /*sync=*/true);
}

Result<std::vector<std::pair<std::string, std::string>>> StoreImpl::ListRepoData(const RepoId& repo,
                                                                                 std::string_view prefix) {
  RETURN_IF_ERROR(GetRepo(repo).status());
  std::vector<std::pair<std::string, std::string>> out;
  const std::string base = RepoDataKey(repo, "");
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, base + std::string(prefix), [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k.substr(base.size())), std::string(v));
    return true;
  }));
  return out;
}

Status StoreImpl::DeleteRepo(const RepoId& repo) {
  RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(commit_mu_);
  ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kRepos, repo.str()));
  if (!have) return NotFoundError("repository '" + repo.str() + "' not found");
  auto b = db_->NewBatch();
  RETURN_IF_ERROR(db_->Scan(Cf::kRefs, RefKey(repo, ""), [&](std::string_view k, std::string_view) {
    b.Delete(Cf::kRefs, k);
    return true;
  }));
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, RepoDataKey(repo, ""), [&](std::string_view k, std::string_view) {
    b.Delete(Cf::kDefault, k);
    return true;
  }));
  b.Delete(Cf::kRepos, repo.str());
  return db_->Write(b, /*sync=*/true);
}

Status StoreImpl::MoveRepo(const RepoId& from, const RepoId& to) {
  RETURN_IF_ERROR(CheckWritable());
  std::lock_guard<std::mutex> lock(commit_mu_);
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kRepos, from.str()));
  if (!v) return NotFoundError("repository '" + from.str() + "' not found");
  ASSIGN_OR_RETURN(bool taken, db_->Has(Cf::kRepos, to.str()));
  if (taken) return AlreadyExistsError("repository '" + to.str() + "' already exists");
  RETURN_IF_ERROR(CheckNewRepoName(to, &from));
  ASSIGN_OR_RETURN(RepoInfo info, DecodeRepo(from, *v));
  info.id = to;
  auto b = db_->NewBatch();
  std::string prefix = RefKey(from, "");
  RETURN_IF_ERROR(db_->Scan(Cf::kRefs, prefix, [&](std::string_view k, std::string_view value) {
    b.Put(Cf::kRefs, RefKey(to, k.substr(prefix.size())), value);
    b.Delete(Cf::kRefs, k);
    return true;
  }));
  const std::string data = RepoDataKey(from, "");
  RETURN_IF_ERROR(db_->Scan(Cf::kDefault, data, [&](std::string_view k, std::string_view value) {
    b.Put(Cf::kDefault, RepoDataKey(to, k.substr(data.size())), value);
    b.Delete(Cf::kDefault, k);
    return true;
  }));
  b.Delete(Cf::kRepos, from.str());
  b.Put(Cf::kRepos, to.str(), EncodeRepo(info));
  return db_->Write(b, /*sync=*/true);
}

}  // namespace hubnode::store

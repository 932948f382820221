// Importing a directory as one commit: validate everything, write chunks in parallel, then commit
// objects, file records, the expert index and the ref in one synced batch.
#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>

#include "store/chunk_writer.h"
#include "store/chunker.h"
#include "store/expert_index.h"
#include "store/safetensors.h"
#include "store/store_impl.h"

namespace hubnode::store {
namespace {

namespace fs = std::filesystem;

struct SourceFile {
  std::string abs;
  std::string rel;
  uint32_t mode = kModeFile;
  uint64_t size = 0;
};

bool IsSafetensors(std::string_view path) {
  return path.size() >= 12 && path.substr(path.size() - 12) == ".safetensors";
}

Status Collect(const std::string& root, const std::string& rel, std::vector<SourceFile>* out) {
  std::error_code ec;
  fs::directory_iterator it(rel.empty() ? fs::path(root) : fs::path(root) / rel, ec);
  if (ec) return InvalidArgumentError("cannot read directory " + (rel.empty() ? root : rel) + ": " + ec.message());
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    std::string child = rel.empty() ? name : rel + "/" + name;
    fs::file_status st = entry.symlink_status(ec);
    if (ec) return InvalidArgumentError("cannot stat " + child + ": " + ec.message());
    if (fs::is_symlink(st)) return InvalidArgumentError("symlinks are not imported: " + child);
    if (fs::is_directory(st)) {
      if (name == ".git") continue;  // a git checkout's own metadata is not content
      RETURN_IF_ERROR(Collect(root, child, out));
    } else if (fs::is_regular_file(st)) {
      RETURN_IF_ERROR(ValidatePath(child));
      SourceFile f;
      f.abs = entry.path().string();
      f.rel = child;
      f.size = entry.file_size(ec);
      if (ec) return InvalidArgumentError("cannot stat " + child + ": " + ec.message());
      if ((st.permissions() & fs::perms::owner_exec) != fs::perms::none) f.mode = kModeExecutable;
      out->push_back(std::move(f));
    } else {
      return InvalidArgumentError("not a regular file or directory: " + child);
    }
  }
  return OkStatus();
}

struct IngestedFile {
  SourceFile src;
  FileRecord record;
  Sha256Digest sha256;
  GitOid blob;
  bool lfs = false;
  std::string pointer;  // LFS pointer text
};

// One import: its chunk writer and what it wrote.
class Ingest {
 public:
  Ingest(StoreImpl& store, const ImportOptions& options, uint64_t total)
      : store_(store), options_(options), total_(total), chunks_(store) {}

  Result<IngestedFile> File(const SourceFile& src);
  // Uploads the last pack (with a chunk tier) before the commit names its chunks.
  Status Flush() { return chunks_.Flush(); }
  ImportResult result() {
    ImportResult r = result_;
    ChunkCounts c = chunks_.counts();
    r.new_chunks = c.new_chunks;
    r.new_raw_bytes = c.new_raw_bytes;
    r.new_stored_bytes = c.new_stored_bytes;
    return r;
  }

 private:
  void Submit(std::shared_ptr<std::string> data, ElementKind kind, ChunkRef* slot, TaskGroup* group) {
    chunks_.Submit(std::move(data), kind, slot, group);
  }
  void Progress(const std::string& file, uint64_t n) {
    done_ += n;
    if (options_.progress) options_.progress(ImportProgress{done_, total_, file});
  }

  StoreImpl& store_;
  const ImportOptions& options_;
  uint64_t total_;
  uint64_t done_ = 0;
  ChunkWriter chunks_;
  ImportResult result_;
};

Result<IngestedFile> Ingest::File(const SourceFile& src) {
  ASSIGN_OR_RETURN(ReadFile file, ReadFile::Open(src.abs));
  IngestedFile out;
  out.src = src;
  out.src.size = file.size();
  out.lfs = ShouldStoreAsLfs(src.rel, file.size());
  out.record.size = file.size();

  Sha256 sha256;
  Sha1 sha1;
  if (!out.lfs) sha1.Update(ObjectHeader("blob", file.size()));
  auto consume = [&](std::string_view bytes) {
    sha256.Update(bytes);
    if (!out.lfs) sha1.Update(bytes);
  };

  TaskGroup group;
  std::deque<ChunkRef> slots;  // stable addresses as it grows
  Status read_status;
  if (IsSafetensors(src.rel)) {
    auto header = ReadSafetensorsHeader(file);
    if (!header.ok()) return header.status().WithContext(src.rel);
    out.record.kind = FileRecord::Kind::kSafetensors;
    out.record.header_end = header->header_end;
    for (const auto& t : header->tensors) {
      out.record.tensors.push_back(TensorInfo{t.name, t.dtype, t.shape, t.begin, t.end});
    }
    for (const Piece& p : PlanSafetensorsChunks(*header, store_.options().max_chunk_size)) {
      if (group.failed()) break;
      auto buf = std::make_shared<std::string>(p.length, '\0');
      read_status = file.ReadAt(p.offset, p.length, buf->data());
      if (!read_status.ok()) break;
      consume(*buf);
      slots.emplace_back();
      Submit(buf, p.kind, &slots.back(), &group);
      Progress(src.rel, p.length);
    }
  } else {
    GearChunker chunker;
    constexpr size_t kBlock = 1 << 20;
    std::string block(kBlock, '\0');
    auto pending = std::make_shared<std::string>();
    for (uint64_t off = 0; off < file.size() && !group.failed();) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, file.size() - off));
      read_status = file.ReadAt(off, n, block.data());
      if (!read_status.ok()) break;
      std::string_view view(block.data(), n);
      consume(view);
      while (!view.empty()) {
        size_t cut = chunker.Next(view);
        if (cut == GearChunker::kNoCut) {
          pending->append(view);
          break;
        }
        pending->append(view.substr(0, cut));
        view.remove_prefix(cut);
        slots.emplace_back();
        Submit(pending, ElementKind::kBytes, &slots.back(), &group);
        pending = std::make_shared<std::string>();
      }
      off += n;
      Progress(src.rel, n);
    }
    if (read_status.ok() && !pending->empty()) {
      slots.emplace_back();
      Submit(pending, ElementKind::kBytes, &slots.back(), &group);
    }
  }
  Status chunks_status = group.Wait();
  RETURN_IF_ERROR(read_status);
  RETURN_IF_ERROR(chunks_status.WithContext(src.rel));

  out.record.chunks.assign(slots.begin(), slots.end());
  out.sha256 = sha256.Finish();
  if (out.lfs) {
    out.pointer = LfsPointer(out.sha256, out.record.size);
    out.blob = HashObject("blob", out.pointer);
  } else {
    out.blob = sha1.Finish();
  }
  result_.chunks += out.record.chunks.size();
  result_.bytes += out.record.size;
  ++result_.files;
  return out;
}

Status MovedError(const RepoId& repo, const std::string& ref, const std::optional<GitOid>& current,
                  const std::optional<GitOid>& expected) {
  return FailedPreconditionError(ref + " of " + repo.str() + " is at " +
                                 (current ? current->hex() : std::string("(none)")) + ", expected " +
                                 (expected ? expected->hex() : std::string("(none)")));
}

}  // namespace

Result<ImportResult> StoreImpl::ImportDirectory(const std::string& dir, const RepoId& repo,
                                                const ImportOptions& options) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(std::string ref, BranchRef(options.branch));

  // 1. Validate everything before writing anything.
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return InvalidArgumentError("not a directory: " + dir);
  std::vector<SourceFile> sources;
  RETURN_IF_ERROR(Collect(dir, "", &sources));
  if (sources.empty()) return InvalidArgumentError("nothing to import: " + dir + " has no files");
  uint64_t total = 0;
  for (const auto& s : sources) {
    total += s.size;
    if (!IsSafetensors(s.rel)) continue;
    ASSIGN_OR_RETURN(ReadFile f, ReadFile::Open(s.abs));
    auto h = ReadSafetensorsHeader(f);
    if (!h.ok()) return h.status().WithContext(s.rel);
  }

  auto existing = GetRepo(repo);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) return existing.status();
  bool new_repo = !existing.ok();
  std::optional<GitOid> parent;
  if (options.expected_parent) {
    if (!options.expected_parent->IsZero()) parent = *options.expected_parent;
  } else if (!new_repo) {
    ASSIGN_OR_RETURN(parent, ReadRef(repo, ref));
  }

  // 2. Chunks, in parallel, each file in turn.
  Ingest ingest(*this, options, total);
  std::vector<IngestedFile> files;
  for (const auto& s : sources) {
    ASSIGN_OR_RETURN(IngestedFile f, ingest.File(s));
    files.push_back(std::move(f));
  }
  RETURN_IF_ERROR(ingest.Flush());

  // 3. Objects, file records, expert index, ref: one synced batch.
  std::map<GitOid, std::string> objects;
  std::vector<TreeFile> tree_files;
  ExpertIndex experts;
  auto batch = db_->NewBatch();
  for (const auto& f : files) {
    tree_files.push_back(TreeFile{f.src.rel, f.src.mode, f.blob});
    objects[f.blob] = f.lfs ? EncodeObject(StoredObject{ObjectType::kInlineBlob, f.pointer, {}, 0})
                            : EncodeObject(StoredObject{ObjectType::kChunkedBlob, {}, f.sha256, f.record.size});
    ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kFiles, f.sha256.view()));
    if (!have) batch.Put(Cf::kFiles, f.sha256.view(), EncodeFileRecord(f.record));
    AddExpertParts(f.src.rel, f.record.tensors, &experts);
  }
  GitOid tree = BuildTrees(tree_files, [&](const GitOid& oid, const std::string& body) {
    objects[oid] = EncodeObject(StoredObject{ObjectType::kTree, body, {}, 0});
  });

  ImportResult result = ingest.result();
  if (parent) {
    ASSIGN_OR_RETURN(CommitInfo pc, GetCommit(*parent));
    if (pc.tree == tree) {
      // Nothing to commit; but the branch must still be where the caller expected it.
      std::lock_guard<std::mutex> lock(commit_mu_);
      ASSIGN_OR_RETURN(auto current, ReadRef(repo, ref));
      if (current != parent) return MovedError(repo, ref, current, parent);
      result.commit = *parent;
      result.changed = false;
      return result;
    }
  }
  CommitObject commit;
  commit.tree = tree;
  if (parent) commit.parents.push_back(*parent);
  commit.author = options.author;
  if (commit.author.time == 0) commit.author.time = static_cast<int64_t>(std::time(nullptr));
  commit.committer = commit.author;
  commit.message = options.message.empty() ? "Import " + fs::path(dir).filename().string() : options.message;
  std::string body = EncodeCommit(commit);
  GitOid commit_id = HashObject("commit", body);
  objects[commit_id] = EncodeObject(StoredObject{ObjectType::kCommit, body, {}, 0});

  for (const auto& [oid, value] : objects) {
    ASSIGN_OR_RETURN(bool have, db_->Has(Cf::kObjects, oid.view()));
    if (!have) batch.Put(Cf::kObjects, oid.view(), value);  // never replace a stored object
  }
  for (const auto& [key, parts] : experts) batch.Put(Cf::kExperts, ExpertKeyBytes(commit_id, key), EncodeExpertParts(parts));
  batch.Put(Cf::kRefs, RefKey(repo, ref), commit_id.view());

  std::lock_guard<std::mutex> lock(commit_mu_);
  ASSIGN_OR_RETURN(auto current, ReadRef(repo, ref));
  if (current != parent) return MovedError(repo, ref, current, parent);
  // Another import may have created the repo meanwhile; its record then stays as it is.
  ASSIGN_OR_RETURN(bool have_repo, db_->Has(Cf::kRepos, repo.str()));
  if (!have_repo) {
    RETURN_IF_ERROR(CheckNewRepoName(repo, nullptr));
    RepoInfo info{repo};
    info.created = commit.committer.time;
    info.visibility = options.visibility;
    batch.Put(Cf::kRepos, repo.str(), EncodeRepo(info));
  }
  RETURN_IF_ERROR(db_->Write(batch, /*sync=*/true));
  result.commit = commit_id;
  return result;
}

}  // namespace hubnode::store

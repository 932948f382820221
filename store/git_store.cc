// Git objects as the git protocol moves them: read one by id (upload-pack), store one received
// from a client or an upstream (receive-pack, the git mirror) after checking it.
#include <algorithm>
#include <set>

#include "store/expert_index.h"
#include "store/git_objects.h"
#include "store/records.h"
#include "store/store_impl.h"

namespace hubnode::store {

std::string_view GitTypeName(GitObjectType type) {
  switch (type) {
    case GitObjectType::kCommit: return "commit";
    case GitObjectType::kTree: return "tree";
    case GitObjectType::kBlob: return "blob";
    case GitObjectType::kTag: return "tag";
  }
  return "unknown";
}

std::optional<std::pair<Sha256Digest, uint64_t>> ParseLfsPointerText(std::string_view text) {
  auto p = ParseLfsPointer(text);
  if (!p) return std::nullopt;
  return std::make_pair(p->oid, p->size);
}

Result<GitObject> StoreImpl::ReadGitObject(const GitOid& oid) {
  ASSIGN_OR_RETURN(auto v, db_->Get(Cf::kObjects, oid.view()));
  if (!v) return NotFoundError("object " + oid.hex() + " not found");
  ASSIGN_OR_RETURN(StoredObject o, DecodeObject(*v));
  GitObject out;
  switch (o.type) {
    case ObjectType::kCommit: out.type = GitObjectType::kCommit; break;
    case ObjectType::kTree: out.type = GitObjectType::kTree; break;
    case ObjectType::kInlineBlob: out.type = GitObjectType::kBlob; break;
    case ObjectType::kChunkedBlob: {
      out.type = GitObjectType::kBlob;
      out.size = o.size;
      FileEntry f;
      f.size = o.size;
      f.sha256 = o.content;
      f.blob = oid;
      out.content = std::move(f);
      return out;
    }
  }
  out.size = o.body.size();
  out.body = std::move(o.body);
  return out;
}

Result<bool> StoreImpl::HasGitObject(const GitOid& oid) { return db_->Has(Cf::kObjects, oid.view()); }

namespace {

std::string SortKey(const TreeEntry& e) { return e.mode == kModeTree ? e.name + "/" : e.name; }

Status CheckTree(std::string_view body) {
  auto entries = DecodeTree(body);
  if (!entries.ok()) return InvalidArgumentError("malformed tree");
  std::set<std::string_view> names;
  for (size_t i = 0; i < entries->size(); ++i) {
    const TreeEntry& e = (*entries)[i];
    // A name once, whatever its mode (git's order alone lets "a" and "a/" sit apart).
    if (!names.insert(e.name).second) return InvalidArgumentError("tree entries duplicated (" + e.name.substr(0, 200) + ")");
    if (e.mode == 0120000) return InvalidArgumentError("symbolic links are not accepted (" + e.name.substr(0, 200) + ")");
    if (e.mode == 0160000) return InvalidArgumentError("submodules are not accepted (" + e.name.substr(0, 200) + ")");
    if (e.mode != kModeFile && e.mode != kModeExecutable && e.mode != kModeTree) {
      return InvalidArgumentError("tree entry " + e.name.substr(0, 200) + " has an unknown mode");
    }
    if (e.name.find('/') != std::string::npos) return InvalidArgumentError("a tree entry name holds '/'");
    RETURN_IF_ERROR(ValidatePath(e.name));
    if (i > 0) {
      const TreeEntry& prev = (*entries)[i - 1];
      if (!(SortKey(prev) < SortKey(e)) || prev.name == e.name) {
        return InvalidArgumentError("tree entries out of git's order or duplicated (" + e.name.substr(0, 200) + ")");
      }
    }
  }
  return OkStatus();
}

}  // namespace

Status StoreImpl::PutGitObject(const GitOid& oid, GitObjectType type, std::string_view body) {
  RETURN_IF_ERROR(CheckWritable());
  if (read_only()) return FailedPreconditionError("the store is open read-only");
  if (HashObject(GitTypeName(type), body) != oid) {
    return InvalidArgumentError(std::string(GitTypeName(type)) + " " + oid.hex() + " does not hash to its id");
  }
  ASSIGN_OR_RETURN(bool have, HasGitObject(oid));
  if (have) return OkStatus();
  StoredObject o;
  switch (type) {
    case GitObjectType::kTag:
      return InvalidArgumentError("annotated tags are not accepted; push a lightweight tag (git tag NAME)");
    case GitObjectType::kCommit: {
      auto c = DecodeCommit(body);
      if (!c.ok()) return InvalidArgumentError("commit " + oid.hex() + " is malformed: " + c.status().message());
      o.type = ObjectType::kCommit;
      o.body = std::string(body);
      break;
    }
    case GitObjectType::kTree:
      if (Status s = CheckTree(body); !s.ok()) {
        return InvalidArgumentError("tree " + oid.hex() + ": " + s.message());
      }
      o.type = ObjectType::kTree;
      o.body = std::string(body);
      break;
    case GitObjectType::kBlob: {
      if (ParseLfsPointer(body)) {
        o.type = ObjectType::kInlineBlob;
        o.body = std::string(body);
        break;
      }
      ContentSpec spec;
      spec.path = "blob";
      spec.size = body.size();
      spec.git_blob = true;
      ASSIGN_OR_RETURN(auto writer, NewContentWriter(spec));
      RETURN_IF_ERROR(writer->Write(body));
      ASSIGN_OR_RETURN(ContentInfo info, writer->Finish());
      if (info.git_blob != oid) return InternalError("blob " + oid.hex() + " stored under another id");
      o.type = ObjectType::kChunkedBlob;
      o.content = info.sha256;
      o.size = info.size;
      break;
    }
  }
  auto batch = db_->NewBatch();
  batch.Put(Cf::kObjects, oid.view(), EncodeObject(o));
  return db_->Write(batch, /*sync=*/false);
}

Status StoreImpl::IndexCommit(const GitOid& commit) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(auto files, ListFiles(commit));
  ExpertIndex experts;
  for (const auto& f : files) {
    if (f.path.size() < 12 || f.path.substr(f.path.size() - 12) != ".safetensors") continue;
    ASSIGN_OR_RETURN(FileRecord r, GetFileRecord(f.sha256));
    if (r.kind != FileRecord::Kind::kSafetensors) continue;
    AddExpertParts(f.path, r.tensors, &experts);
  }
  if (experts.empty()) return OkStatus();
  auto batch = db_->NewBatch();
  for (const auto& [key, parts] : experts) batch.Put(Cf::kExperts, ExpertKeyBytes(commit, key), EncodeExpertParts(parts));
  return db_->Write(batch, /*sync=*/false);
}

}  // namespace hubnode::store

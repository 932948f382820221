// hubnode fsck: every chunk re-read and re-hashed, every git object re-hashed, every file record
// checked against its chunks; damaged chunks replaced from the chunk source on request.
#include "base/log.h"
#include "store/codec.h"
#include "store/git_objects.h"
#include "store/records.h"
#include "store/store_impl.h"

namespace hubnode::store {

Result<FsckReport> StoreImpl::Fsck(const FsckOptions& options) {
  FsckReport r;
  // Chunk ids come from the chunk metadata (small values): reading each record on its own keeps
  // one damaged record from ending the scan.
  std::vector<std::pair<ChunkId, ChunkMeta>> ids;
  RETURN_IF_ERROR(db_->Scan(Cf::kChunkMeta, "", [&](std::string_view k, std::string_view v) {
    auto id = ChunkId::FromBytes(k);
    auto meta = DecodeChunkMeta(v);
    if (id.ok() && meta.ok()) ids.emplace_back(*id, *meta);
    return true;
  }));
  std::shared_ptr<const ChunkSource> source = chunk_source();
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& [id, meta] = ids[i];
    ++r.chunks;
    auto rec = db_->Get(Cf::kChunks, id.view());
    if (rec.ok() && !*rec) {
      // A tiered chunk is checked in its pack (which reads it from the object store).
      auto tiered = FetchTiered(id);
      if (!tiered.ok()) {
        rec = tiered.status();
      } else if (*tiered) {
        rec = std::optional<std::string>(std::move((*tiered)->record));
      }
    }
    Result<std::string> raw = !rec.ok()  ? Result<std::string>(rec.status())
                              : !*rec    ? Result<std::string>(NotFoundError("no record"))
                                         : DecodeVerifiedChunk(id, **rec);
    if (raw.ok() && raw->size() == meta.raw_len) {
      r.chunk_bytes += raw->size();
    } else {
      r.damaged_chunks.push_back(id);
      LOG(Warning) << "fsck: chunk " << id.hex() << " is damaged"
                   << (raw.ok() ? " (wrong length)" : ": " + raw.status().message());
      if (options.repair && source) {
        auto fresh = (*source)(id, meta.raw_len);
        if (fresh.ok() && fresh->size() == meta.raw_len && ChunkIdOf(*fresh) == id) {
          const ElementKindHint hint = meta.codec == Codec::kZstdGroup2   ? ElementKindHint::k2Byte
                                       : meta.codec == Codec::kZstdGroup4 ? ElementKindHint::k4Byte
                                                                            : ElementKindHint::kBytes;
          RETURN_IF_ERROR(ReplaceChunk(id, *fresh, hint));
          r.repaired.push_back(id);
        } else {
          LOG(Warning) << "fsck: no verified copy of chunk " << id.hex() << " from the peers";
        }
      }
    }
    if (options.progress && (i % 256 == 255 || i + 1 == ids.size())) options.progress(i + 1, ids.size());
  }
  RETURN_IF_ERROR(db_->Scan(Cf::kObjects, "", [&](std::string_view k, std::string_view v) {
    ++r.objects;
    auto oid = GitOid::FromBytes(k);
    auto obj = DecodeObject(v);
    bool ok = oid.ok() && obj.ok();
    if (ok && (obj->type == ObjectType::kTree || obj->type == ObjectType::kCommit || obj->type == ObjectType::kInlineBlob)) {
      const char* type = obj->type == ObjectType::kTree ? "tree" : obj->type == ObjectType::kCommit ? "commit" : "blob";
      ok = HashObject(type, obj->body) == *oid;
    }
    if (!ok) r.damaged_objects.push_back(HexEncode(k));
    return true;
  }));
  RETURN_IF_ERROR(db_->Scan(Cf::kFiles, "", [&](std::string_view k, std::string_view v) {
    ++r.files;
    auto rec = DecodeFileRecord(v);
    if (!rec.ok()) {
      r.damaged_files.push_back(HexEncode(k));
      return true;
    }
    uint64_t sum = 0;
    for (const auto& c : rec->chunks) {
      sum += c.raw_len;
      auto held = db_->Has(Cf::kChunkMeta, c.id.view());
      if (held.ok() && !*held) ++r.missing_chunks;
    }
    if (sum != rec->size) r.damaged_files.push_back(HexEncode(k));
    return true;
  }));
  return r;
}

}  // namespace hubnode::store

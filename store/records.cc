#include "store/records.h"

#include "base/bytes.h"

namespace hubnode::store {
namespace {
constexpr uint8_t kVersion = 1;

Status CheckVersion(ByteReader& r, std::string_view what) {
  ASSIGN_OR_RETURN(uint8_t v, r.U8());
  if (v != kVersion) return DataLossError(std::string(what) + " record has unknown version " + std::to_string(v));
  return OkStatus();
}
}  // namespace

std::string EncodeFileRecord(const FileRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(r.kind));
  PutFixed64(&out, r.size);
  PutVarint64(&out, r.chunks.size());
  for (const auto& c : r.chunks) {
    out.append(c.id.view());
    PutVarint64(&out, c.raw_len);
  }
  if (r.kind == FileRecord::Kind::kSafetensors) {
    PutFixed64(&out, r.header_end);
    PutVarint64(&out, r.tensors.size());
    for (const auto& t : r.tensors) {
      PutLengthPrefixed(&out, t.name);
      PutLengthPrefixed(&out, t.dtype);
      PutVarint64(&out, t.shape.size());
      for (uint64_t d : t.shape) PutVarint64(&out, d);
      PutFixed64(&out, t.begin);
      PutFixed64(&out, t.end);
    }
  }
  return out;
}

Result<FileRecord> DecodeFileRecord(std::string_view v) {
  ByteReader r(v, "file");
  RETURN_IF_ERROR(CheckVersion(r, "file"));
  FileRecord f;
  ASSIGN_OR_RETURN(uint8_t kind, r.U8());
  if (kind > 1) return DataLossError("file record has unknown kind");
  f.kind = static_cast<FileRecord::Kind>(kind);
  ASSIGN_OR_RETURN(f.size, r.Fixed64());
  ASSIGN_OR_RETURN(uint64_t n, r.Varint64());
  if (n > r.remaining() / 33) return DataLossError("file record chunk count too large");
  f.chunks.reserve(n);
  uint64_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(auto id, r.Bytes(32));
    ASSIGN_OR_RETURN(uint64_t len, r.Varint64());
    if (len == 0 || len > kMaxChunkRawLen) return DataLossError("file record chunk length invalid");
    ASSIGN_OR_RETURN(ChunkId cid, ChunkId::FromBytes(id));
    f.chunks.push_back(ChunkRef{cid, static_cast<uint32_t>(len)});
    total += len;
  }
  if (total != f.size) return DataLossError("file record chunks do not add up to its size");
  if (f.kind == FileRecord::Kind::kSafetensors) {
    ASSIGN_OR_RETURN(f.header_end, r.Fixed64());
    ASSIGN_OR_RETURN(uint64_t nt, r.Varint64());
    if (nt > r.remaining()) return DataLossError("file record tensor count too large");
    for (uint64_t i = 0; i < nt; ++i) {
      TensorInfo t;
      ASSIGN_OR_RETURN(auto name, r.LengthPrefixed());
      ASSIGN_OR_RETURN(auto dtype, r.LengthPrefixed());
      t.name = std::string(name);
      t.dtype = std::string(dtype);
      ASSIGN_OR_RETURN(uint64_t nd, r.Varint64());
      if (nd > 64) return DataLossError("file record tensor rank too large");
      for (uint64_t d = 0; d < nd; ++d) {
        ASSIGN_OR_RETURN(uint64_t dim, r.Varint64());
        t.shape.push_back(dim);
      }
      ASSIGN_OR_RETURN(t.begin, r.Fixed64());
      ASSIGN_OR_RETURN(t.end, r.Fixed64());
      if (t.end < t.begin || t.end > f.size) return DataLossError("file record tensor range invalid");
      f.tensors.push_back(std::move(t));
    }
  }
  if (!r.empty()) return DataLossError("file record has trailing bytes");
  return f;
}

std::string EncodeChunkMeta(const ChunkMeta& m) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(m.codec));
  PutFixed32(&out, m.raw_len);
  PutFixed32(&out, m.stored_len);
  return out;
}

Result<ChunkMeta> DecodeChunkMeta(std::string_view v) {
  ByteReader r(v, "chunk meta");
  RETURN_IF_ERROR(CheckVersion(r, "chunk meta"));
  ChunkMeta m;
  ASSIGN_OR_RETURN(uint8_t c, r.U8());
  if (c > static_cast<uint8_t>(Codec::kZstdGroup4)) return DataLossError("chunk meta has unknown codec");
  m.codec = static_cast<Codec>(c);
  ASSIGN_OR_RETURN(m.raw_len, r.Fixed32());
  ASSIGN_OR_RETURN(m.stored_len, r.Fixed32());
  return m;
}

std::string EncodeObject(const StoredObject& o) {
  std::string out(1, static_cast<char>(o.type));
  if (o.type == ObjectType::kChunkedBlob) {
    out.append(o.content.view());
    PutFixed64(&out, o.size);
  } else {
    out.append(o.body);
  }
  return out;
}

Result<StoredObject> DecodeObject(std::string_view v) {
  if (v.empty()) return DataLossError("empty object record");
  StoredObject o;
  uint8_t t = static_cast<uint8_t>(v[0]);
  if (t < 1 || t > 4) return DataLossError("object record has unknown type");
  o.type = static_cast<ObjectType>(t);
  v.remove_prefix(1);
  if (o.type == ObjectType::kChunkedBlob) {
    if (v.size() != 40) return DataLossError("malformed chunked blob record");
    ASSIGN_OR_RETURN(o.content, Sha256Digest::FromBytes(v.substr(0, 32)));
    o.size = DecodeFixed64(v.data() + 32);
  } else {
    o.body = std::string(v);
  }
  return o;
}

std::string EncodeRepo(const RepoInfo& r) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  PutFixed64(&out, static_cast<uint64_t>(r.created));
  out.push_back(static_cast<char>(r.visibility));
  PutLengthPrefixed(&out, r.default_branch);
  return out;
}

Result<RepoInfo> DecodeRepo(const RepoId& id, std::string_view v) {
  ByteReader r(v, "repo");
  RETURN_IF_ERROR(CheckVersion(r, "repo"));
  RepoInfo info{id};
  ASSIGN_OR_RETURN(uint64_t created, r.Fixed64());
  info.created = static_cast<int64_t>(created);
  ASSIGN_OR_RETURN(uint8_t vis, r.U8());
  if (vis > 2) return DataLossError("repo record has unknown visibility");
  info.visibility = static_cast<Visibility>(vis);
  ASSIGN_OR_RETURN(auto branch, r.LengthPrefixed());
  info.default_branch = std::string(branch);
  return info;
}

std::string EncodeExpertParts(const std::vector<ExpertPart>& parts) {
  std::string out;
  PutVarint64(&out, parts.size());
  for (const auto& p : parts) {
    PutLengthPrefixed(&out, p.path);
    PutLengthPrefixed(&out, p.tensor);
    PutFixed64(&out, p.offset);
    PutFixed64(&out, p.length);
  }
  return out;
}

Result<std::vector<ExpertPart>> DecodeExpertParts(std::string_view v) {
  ByteReader r(v, "expert");
  ASSIGN_OR_RETURN(uint64_t n, r.Varint64());
  if (n > v.size()) return DataLossError("expert record count too large");
  std::vector<ExpertPart> parts;
  for (uint64_t i = 0; i < n; ++i) {
    ExpertPart p;
    ASSIGN_OR_RETURN(auto path, r.LengthPrefixed());
    ASSIGN_OR_RETURN(auto tensor, r.LengthPrefixed());
    p.path = std::string(path);
    p.tensor = std::string(tensor);
    ASSIGN_OR_RETURN(p.offset, r.Fixed64());
    ASSIGN_OR_RETURN(p.length, r.Fixed64());
    parts.push_back(std::move(p));
  }
  return parts;
}

std::string RefKey(const RepoId& repo, std::string_view ref) {
  std::string k = repo.str();
  k.push_back('\0');
  k.append(ref);
  return k;
}

std::string ExpertKeyBytes(const GitOid& commit, const ExpertKey& k) {
  std::string out(commit.view());
  PutBigEndian32(&out, k.layer);
  PutBigEndian32(&out, k.expert);
  return out;
}

}  // namespace hubnode::store

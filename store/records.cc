#include "store/records.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <span>

#include "base/bytes.h"
#include "base/hex.h"

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

// ---- the chunk tier's location records and pack format (docs/store-format.md "Chunk tier")

namespace {

constexpr std::string_view kPackMagic = "HNPACK01";

void PackPutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
void PackPutU64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t PackGetLe(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}

}  // namespace

std::string EncodeChunkLoc(const ChunkLoc& loc) {
  std::string s = loc.pack;
  PackPutU64(&s, loc.offset);
  PackPutU32(&s, loc.length);
  return s;
}

Result<ChunkLoc> DecodeChunkLoc(std::string_view v) {
  if (v.size() != 44) return DataLossError("corrupt chunk location record");
  ChunkLoc loc;
  loc.pack = std::string(v.substr(0, 32));
  for (char c : loc.pack) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return DataLossError("corrupt chunk location record");
  }
  loc.offset = PackGetLe(v, 32, 8);
  loc.length = static_cast<uint32_t>(PackGetLe(v, 40, 4));
  return loc;
}

std::string PackNamePrefix(int64_t ms) {
  static const char* kHex = "0123456789abcdef";
  std::string out(12, '0');
  uint64_t v = static_cast<uint64_t>(std::max<int64_t>(0, ms));
  for (int i = 11; i >= 0; --i, v >>= 4) out[i] = kHex[v & 15];
  return out;
}

int64_t PackNameMillis(std::string_view name) {
  if (name.size() < 13) return -1;
  int64_t v = 0;
  for (char c : name.substr(1, 12)) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

std::string NewPackName() {
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  std::random_device rd;
  std::string raw;
  for (int i = 0; i < 3; ++i) PackPutU32(&raw, rd());
  const std::string random = HexEncode(raw);
  return random.substr(0, 1) + PackNamePrefix(ms) + random.substr(1, 19);
}

void PackBuilder::Add(const ChunkId& id, const ChunkMeta& meta, std::string_view record) {
  entries_.push_back(Entry{id, meta, data_.size(), static_cast<uint32_t>(record.size())});
  data_.append(record);
}

std::string PackBuilder::Finish() {
  uint64_t index_offset = data_.size();
  for (const auto& e : entries_) {
    data_.append(e.id.view());
    PackPutU64(&data_, e.offset);
    PackPutU32(&data_, e.length);
    data_.push_back(static_cast<char>(e.meta.codec));
    PackPutU32(&data_, e.meta.raw_len);
  }
  PackPutU32(&data_, static_cast<uint32_t>(entries_.size()));
  PackPutU64(&data_, index_offset);
  data_.append(kPackMagic);
  return std::move(data_);
}

Result<std::pair<uint32_t, uint64_t>> DecodePackFooter(std::string_view footer, uint64_t pack_size) {
  if (footer.size() != kPackFooter || footer.substr(12) != kPackMagic) return DataLossError("not a hubnode pack");
  uint32_t count = static_cast<uint32_t>(PackGetLe(footer, 0, 4));
  uint64_t index_offset = PackGetLe(footer, 4, 8);
  if (index_offset > pack_size || (pack_size - kPackFooter - index_offset) != uint64_t{count} * kPackIndexEntry) {
    return DataLossError("a pack's footer disagrees with its size");
  }
  // Bounds what a reader buffers per pack (writers close a pack, index included, at pack_bytes).
  if (uint64_t{count} * kPackIndexEntry > kMaxPackIndexBytes) return DataLossError("a pack's index is over 64 MiB");
  return std::make_pair(count, index_offset);
}

Result<std::vector<PackIndexEntry>> DecodePackIndex(std::string_view index, uint32_t count, uint64_t index_offset) {
  if (index.size() != uint64_t{count} * kPackIndexEntry) return DataLossError("a pack's index has the wrong size");
  std::vector<PackIndexEntry> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    std::string_view e = index.substr(size_t{i} * kPackIndexEntry, kPackIndexEntry);
    PackIndexEntry p;
    ASSIGN_OR_RETURN(p.id, ChunkId::FromBytes(e.substr(0, 32)));
    p.offset = PackGetLe(e, 32, 8);
    p.length = static_cast<uint32_t>(PackGetLe(e, 40, 4));
    if (p.offset > index_offset || p.length > index_offset - p.offset || p.length < kChunkRecordHeader) {
      return DataLossError("a pack's index names bytes outside its records");
    }
    const uint8_t codec = static_cast<uint8_t>(e[44]);
    if (codec > static_cast<uint8_t>(Codec::kZstdGroup4)) return DataLossError("a pack's index names an unknown codec");
    p.meta.codec = static_cast<Codec>(codec);
    p.meta.raw_len = static_cast<uint32_t>(PackGetLe(e, 45, 4));
    p.meta.stored_len = p.length - static_cast<uint32_t>(kChunkRecordHeader);
    // A record is never longer than its raw bytes (a compressed form is kept only when smaller).
    if (p.meta.raw_len > kMaxChunkRawLen || p.meta.stored_len > p.meta.raw_len) {
      return DataLossError("a pack's index names a chunk over the size limit");
    }
    out.push_back(p);
  }
  return out;
}

namespace {
constexpr std::string_view kManifestMagic = "HNMIDX01";

std::string PackNameBinary(std::string_view hex) {
  std::string out(16, '\0');
  (void)HexDecodeInto(hex, std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
  return out;
}
}  // namespace

void ManifestBuilder::Add(std::string_view pack, const ChunkId& id, uint64_t offset, uint32_t length,
                          const ChunkMeta& meta) {
  data_.append(PackNameBinary(pack));
  data_.append(id.view());
  PackPutU64(&data_, offset);
  PackPutU32(&data_, length);
  data_.push_back(static_cast<char>(meta.codec));
  PackPutU32(&data_, meta.raw_len);
  ++count_;
}

void ManifestBuilder::Cover(std::string_view pack) { packs_.push_back(PackNameBinary(pack)); }

std::string ManifestBuilder::Finish() {
  for (const auto& p : packs_) data_.append(p);
  PackPutU32(&data_, count_);
  PackPutU32(&data_, static_cast<uint32_t>(packs_.size()));
  data_.append(kManifestMagic);
  return std::move(data_);
}

Result<Manifest> DecodeManifest(std::string_view bytes) {
  if (bytes.size() < 16 || bytes.size() > kMaxManifestBytes || bytes.substr(bytes.size() - 8) != kManifestMagic) {
    return DataLossError("not a hubnode manifest");
  }
  const uint64_t count = PackGetLe(bytes, bytes.size() - 16, 4);
  const uint64_t packs = PackGetLe(bytes, bytes.size() - 12, 4);
  if (count * kManifestEntry + packs * 16 + 16 != bytes.size()) return DataLossError("a manifest's counts disagree with its size");
  Manifest m;
  m.entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view e = bytes.substr(i * kManifestEntry, kManifestEntry);
    ManifestEntry me;
    me.pack = HexEncode(e.substr(0, 16));
    ASSIGN_OR_RETURN(me.entry.id, ChunkId::FromBytes(e.substr(16, 32)));
    me.entry.offset = PackGetLe(e, 48, 8);
    me.entry.length = static_cast<uint32_t>(PackGetLe(e, 56, 4));
    const uint8_t codec = static_cast<uint8_t>(e[60]);
    if (codec > static_cast<uint8_t>(Codec::kZstdGroup4)) return DataLossError("a manifest names an unknown codec");
    me.entry.meta.codec = static_cast<Codec>(codec);
    me.entry.meta.raw_len = static_cast<uint32_t>(PackGetLe(e, 61, 4));
    if (me.entry.length < kChunkRecordHeader || me.entry.meta.raw_len > kMaxChunkRawLen ||
        me.entry.length - kChunkRecordHeader > me.entry.meta.raw_len) {
      return DataLossError("a manifest names an impossible chunk record");
    }
    me.entry.meta.stored_len = me.entry.length - static_cast<uint32_t>(kChunkRecordHeader);
    m.entries.push_back(std::move(me));
  }
  const uint64_t at = count * kManifestEntry;
  for (uint64_t i = 0; i < packs; ++i) m.packs.push_back(HexEncode(bytes.substr(at + i * 16, 16)));
  return m;
}

}  // namespace hubnode::store

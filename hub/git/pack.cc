#include "hub/git/pack.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "store/git_objects.h"

namespace hubnode::hub::git {

using store::GitObjectType;

namespace {

std::string Be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(v >> 24);
  s[1] = static_cast<char>(v >> 16);
  s[2] = static_cast<char>(v >> 8);
  s[3] = static_cast<char>(v);
  return s;
}

std::string EntryHeader(int type, uint64_t size) {
  std::string h;
  uint8_t b = static_cast<uint8_t>((type << 4) | (size & 0x0f));
  size >>= 4;
  while (size) {
    h.push_back(static_cast<char>(b | 0x80));
    b = size & 0x7f;
    size >>= 7;
  }
  h.push_back(static_cast<char>(b));
  return h;
}

constexpr int kOfsDelta = 6, kRefDelta = 7;

}  // namespace

struct PackWriter::ZState {
  // Two streams: small objects (commits, trees, pointers, deltas) use a 4 KiB window and a small
  // hash table, whose reset costs little; large ones the full window.
  z_stream big{}, small{};
  bool ok = false;
  ZState() {
    ok = deflateInit(&big, Z_BEST_SPEED) == Z_OK &&
         deflateInit2(&small, Z_BEST_SPEED, Z_DEFLATED, 12, 1, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~ZState() {
    deflateEnd(&big);
    deflateEnd(&small);
  }
  static constexpr uint64_t kSmall = 4096;
};

PackWriter::PackWriter(uint32_t count, Sink sink)
    : z_(std::make_unique<ZState>()), out_(64 << 10, '\0'), sink_(std::move(sink)), count_(count) {}

PackWriter::~PackWriter() = default;

Status PackWriter::Emit(std::string_view data) {
  if (data.empty()) return OkStatus();
  sha_.Update(data);
  bytes_ += data.size();
  if (!sink_(data)) return CancelledError("the client went away");
  return OkStatus();
}

Status PackWriter::AddOfsDelta(uint64_t base_offset, std::string_view delta) {
  if (added_ == 0 && bytes_ == 0) return FailedPreconditionError("a delta needs its base first");
  const uint64_t entry = bytes_;
  if (base_offset >= entry) return InvalidArgumentError("a delta's base must come before it");
  // The entry's header says OFS_DELTA and the delta's size; the base's distance follows.
  uint64_t n = entry - base_offset;
  char buf[16];
  int pos = sizeof buf - 1;
  buf[pos] = static_cast<char>(n & 127);
  while (n >>= 7) buf[--pos] = static_cast<char>(128 | (--n & 127));
  return AddEntry(kOfsDelta, delta.size(), std::string(buf + pos, sizeof buf - pos),
                  [&](const std::function<Status(std::string_view)>& piece) { return piece(delta); });
}

Status PackWriter::Add(GitObjectType type, std::string_view body) {
  return AddStreamed(type, body.size(), [&](const std::function<Status(std::string_view)>& piece) { return piece(body); });
}

Status PackWriter::AddStreamed(GitObjectType type, uint64_t size,
                               const std::function<Status(const std::function<Status(std::string_view)>&)>& produce) {
  return AddEntry(static_cast<int>(type), size, "", produce);
}

Status PackWriter::AddEntry(int type, uint64_t size, const std::string& after_header,
                            const std::function<Status(const std::function<Status(std::string_view)>&)>& produce) {
  if (added_ == 0 && bytes_ == 0) RETURN_IF_ERROR(Emit("PACK" + Be32(2) + Be32(count_)));
  if (added_ >= count_) return FailedPreconditionError("more objects than the pack announced");
  z_stream& z = size < ZState::kSmall ? z_->small : z_->big;
  if (!z_->ok || deflateReset(&z) != Z_OK) return InternalError("deflate init failed");
  ++added_;
  RETURN_IF_ERROR(Emit(EntryHeader(type, size) + after_header));
  uint64_t fed = 0;
  auto pump = [&](std::string_view in, int flush) -> Status {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    do {
      z.next_out = reinterpret_cast<Bytef*>(out_.data());
      z.avail_out = static_cast<uInt>(out_.size());
      int rc = deflate(&z, flush);
      if (rc == Z_STREAM_ERROR) return InternalError("deflate failed");
      RETURN_IF_ERROR(Emit(std::string_view(out_.data(), out_.size() - z.avail_out)));
      if (rc == Z_STREAM_END) break;
    } while (z.avail_in > 0 || z.avail_out == 0);
    return OkStatus();
  };
  RETURN_IF_ERROR(produce([&](std::string_view piece) -> Status {
    while (!piece.empty()) {
      size_t n = std::min<size_t>(piece.size(), 1 << 20);
      fed += n;
      if (fed > size) return InternalError("object longer than announced");
      RETURN_IF_ERROR(pump(piece.substr(0, n), Z_NO_FLUSH));
      piece.remove_prefix(n);
    }
    return OkStatus();
  }));
  if (fed != size) return DataLossError("object shorter than announced");
  return pump({}, Z_FINISH);
}

Status PackWriter::Finish() {
  if (added_ == 0 && bytes_ == 0) RETURN_IF_ERROR(Emit("PACK" + Be32(2) + Be32(count_)));
  if (added_ != count_) return FailedPreconditionError("fewer objects than the pack announced");
  GitOid sum = sha_.Finish();
  std::string trailer(sum.view());
  bytes_ += trailer.size();
  if (!sink_(trailer)) return CancelledError("the client went away");
  return OkStatus();
}

// ---- reading ---------------------------------------------------------------------------------

namespace {

// Buffered, seekable reading of the spooled pack.
class Input {
 public:
  explicit Input(FILE* f) : f_(f), buf_(1 << 20) {}
  uint64_t offset() const { return base_ + pos_; }
  Status Seek(uint64_t off) {
    if (std::fseek(f_, static_cast<long>(off), SEEK_SET) != 0) return InternalError("seek in the spooled pack failed");
    base_ = off;
    pos_ = len_ = 0;
    return OkStatus();
  }
  Status Fill() {
    if (pos_ < len_) return OkStatus();
    base_ += len_;
    pos_ = 0;
    len_ = std::fread(buf_.data(), 1, buf_.size(), f_);
    if (len_ == 0) return InvalidArgumentError("the pack ends too early");
    return OkStatus();
  }
  Result<uint8_t> Byte() {
    RETURN_IF_ERROR(Fill());
    return static_cast<uint8_t>(buf_[pos_++]);
  }
  Status Read(char* out, size_t n) {
    while (n) {
      RETURN_IF_ERROR(Fill());
      size_t k = std::min(n, len_ - pos_);
      std::memcpy(out, buf_.data() + pos_, k);
      pos_ += k;
      out += k;
      n -= k;
    }
    return OkStatus();
  }
  // Inflates one zlib stream that must produce exactly `size` bytes.
  Result<std::string> Inflate(uint64_t size) {
    std::string out(size, '\0');
    z_stream z{};
    if (inflateInit(&z) != Z_OK) return InternalError("inflateInit failed");
    std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&z, [](z_stream* p) { inflateEnd(p); });
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(size);
    char spare;
    while (true) {
      RETURN_IF_ERROR(Fill());
      z.next_in = reinterpret_cast<Bytef*>(buf_.data() + pos_);
      z.avail_in = static_cast<uInt>(len_ - pos_);
      if (z.avail_out == 0) {  // room to see whether the stream says more than it should
        z.next_out = reinterpret_cast<Bytef*>(&spare);
        z.avail_out = 1;
      }
      int rc = inflate(&z, Z_NO_FLUSH);
      pos_ = len_ - z.avail_in;
      if (rc == Z_STREAM_END) break;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return InvalidArgumentError("a pack object does not inflate");
      if (z.total_out > size) return InvalidArgumentError("a pack object is longer than its header says");
    }
    if (z.total_out != size) return InvalidArgumentError("a pack object's size differs from its header");
    return out;
  }

 private:
  FILE* f_;
  std::vector<char> buf_;
  uint64_t base_ = 0;
  size_t pos_ = 0, len_ = 0;
};

Result<uint64_t> DeltaVarint(std::string_view d, size_t* pos) {
  uint64_t v = 0;
  int shift = 0;
  while (true) {
    if (*pos >= d.size() || shift > 56) return InvalidArgumentError("malformed delta size");
    uint8_t b = static_cast<uint8_t>(d[(*pos)++]);
    v |= uint64_t{b & 0x7fu} << shift;
    shift += 7;
    if (!(b & 0x80)) return v;
  }
}

}  // namespace

// A delta turning `base` into `target`: their common prefix and suffix are copied from the base,
// the middle inserted. Cheap, and what a model repo's history mostly is (a config or card edited
// in place, a log appended to).
std::string MakeDelta(std::string_view base, std::string_view target) {
  size_t prefix = 0;
  const size_t max = std::min(base.size(), target.size());
  while (prefix < max && base[prefix] == target[prefix]) ++prefix;
  size_t suffix = 0;
  while (suffix < max - prefix && base[base.size() - 1 - suffix] == target[target.size() - 1 - suffix]) ++suffix;
  std::string d;
  auto varint = [&](uint64_t v) {
    do {
      uint8_t b = v & 0x7f;
      v >>= 7;
      if (v) b |= 0x80;
      d.push_back(static_cast<char>(b));
    } while (v);
  };
  auto copy = [&](uint64_t off, uint64_t n) {
    while (n > 0) {
      const uint64_t take = std::min<uint64_t>(n, 0xffffff);
      std::string args;
      uint8_t op = 0x80;
      for (int k = 0; k < 4; ++k) {
        if (const uint8_t byte = (off >> (8 * k)) & 0xff) {
          op |= 1u << k;
          args.push_back(static_cast<char>(byte));
        }
      }
      for (int k = 0; k < 3; ++k) {
        if (const uint8_t byte = (take >> (8 * k)) & 0xff) {
          op |= 0x10u << k;
          args.push_back(static_cast<char>(byte));
        }
      }
      d.push_back(static_cast<char>(op));
      d += args;
      off += take;
      n -= take;
    }
  };
  varint(base.size());
  varint(target.size());
  copy(0, prefix);
  std::string_view middle = target.substr(prefix, target.size() - prefix - suffix);
  while (!middle.empty()) {
    const size_t n = std::min<size_t>(middle.size(), 127);
    d.push_back(static_cast<char>(n));
    d.append(middle.substr(0, n));
    middle.remove_prefix(n);
  }
  copy(base.size() - suffix, suffix);
  return d;
}

Result<std::string> ApplyDelta(std::string_view base, std::string_view delta, uint64_t max_size) {
  size_t pos = 0;
  ASSIGN_OR_RETURN(uint64_t src_size, DeltaVarint(delta, &pos));
  ASSIGN_OR_RETURN(uint64_t dst_size, DeltaVarint(delta, &pos));
  if (src_size != base.size()) return InvalidArgumentError("a delta's base size does not match its base");
  if (dst_size > max_size) return ResourceExhaustedError("a delta's result is over the object size limit");
  std::string out;
  out.reserve(dst_size);
  while (pos < delta.size()) {
    uint8_t op = static_cast<uint8_t>(delta[pos++]);
    if (op & 0x80) {
      uint64_t off = 0, n = 0;
      for (int i = 0; i < 4; ++i) {
        if (op & (1u << i)) {
          if (pos >= delta.size()) return InvalidArgumentError("truncated delta copy");
          off |= uint64_t{static_cast<uint8_t>(delta[pos++])} << (8 * i);
        }
      }
      for (int i = 0; i < 3; ++i) {
        if (op & (0x10u << i)) {
          if (pos >= delta.size()) return InvalidArgumentError("truncated delta copy");
          n |= uint64_t{static_cast<uint8_t>(delta[pos++])} << (8 * i);
        }
      }
      if (n == 0) n = 0x10000;
      if (off > base.size() || n > base.size() - off || out.size() + n > dst_size) {
        return InvalidArgumentError("a delta copies outside its base");
      }
      out.append(base.substr(off, n));
    } else if (op) {
      if (op > delta.size() - pos || out.size() + op > dst_size) return InvalidArgumentError("truncated delta insert");
      out.append(delta.substr(pos, op));
      pos += op;
    } else {
      return InvalidArgumentError("a delta uses the reserved opcode 0");
    }
  }
  if (out.size() != dst_size) return InvalidArgumentError("a delta's result size differs from its header");
  return out;
}

Result<PackSummary> ReadPackFile(const std::string& path, const PackLimits& limits, const PackCallbacks& cb) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return InternalError("cannot open the spooled pack");
  std::fseek(f.get(), 0, SEEK_END);
  const uint64_t total = static_cast<uint64_t>(std::ftell(f.get()));
  if (total < 32) return InvalidArgumentError("the pack is too short");
  // The trailer: SHA-1 over everything before it.
  {
    std::fseek(f.get(), 0, SEEK_SET);
    Sha1 sha;
    std::vector<char> buf(1 << 20);
    uint64_t left = total - 20;
    while (left) {
      size_t n = std::fread(buf.data(), 1, std::min<uint64_t>(left, buf.size()), f.get());
      if (n == 0) return InternalError("short read of the spooled pack");
      sha.Update(std::string_view(buf.data(), n));
      left -= n;
    }
    char trailer[20];
    if (std::fread(trailer, 1, 20, f.get()) != 20) return InternalError("short read of the spooled pack");
    if (sha.Finish().view() != std::string_view(trailer, 20)) return InvalidArgumentError("the pack's checksum does not match");
  }
  Input in(f.get());
  RETURN_IF_ERROR(in.Seek(0));
  char head[12];
  RETURN_IF_ERROR(in.Read(head, 12));
  auto u32 = [&](int at) {
    return (uint32_t{static_cast<uint8_t>(head[at])} << 24) | (uint32_t{static_cast<uint8_t>(head[at + 1])} << 16) |
           (uint32_t{static_cast<uint8_t>(head[at + 2])} << 8) | uint32_t{static_cast<uint8_t>(head[at + 3])};
  };
  if (std::string_view(head, 4) != "PACK" || (u32(4) != 2 && u32(4) != 3)) return InvalidArgumentError("not a version 2 pack");
  const uint32_t count = u32(8);
  if (count > limits.max_objects) return ResourceExhaustedError("the pack holds more objects than this node accepts");

  struct Pending {
    uint64_t offset;       // where the delta data's zlib stream starts
    uint64_t size;         // inflated delta size
    uint64_t base_offset;  // OFS_DELTA
    GitOid base_oid;       // REF_DELTA
    bool ofs;
    uint64_t entry;        // the entry's own offset
  };
  std::map<uint64_t, std::pair<GitOid, GitObjectType>> at;  // entry offset -> resolved object
  std::set<GitOid> in_pack;
  std::vector<Pending> pending;
  PackSummary summary;
  uint64_t inflated = 0;
  auto account = [&](uint64_t n) -> Status {
    inflated += n;
    if (inflated > limits.max_total_bytes) {
      return ResourceExhaustedError("the pack inflates to more than this node accepts (" +
                                    std::to_string(limits.max_total_bytes) + " bytes)");
    }
    return OkStatus();
  };
  auto put = [&](uint64_t entry, GitObjectType type, std::string_view body) -> Status {
    GitOid oid = store::HashObject(store::GitTypeName(type), body);
    RETURN_IF_ERROR(cb.store_object(oid, type, body));
    at[entry] = {oid, type};
    in_pack.insert(oid);
    ++summary.objects;
    return OkStatus();
  };
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t entry = in.offset();
    if (entry >= total - 20) return InvalidArgumentError("the pack ends before its last object");
    ASSIGN_OR_RETURN(uint8_t b, in.Byte());
    int type = (b >> 4) & 7;
    uint64_t size = b & 0x0f;
    int shift = 4;
    while (b & 0x80) {
      if (shift > 57) return InvalidArgumentError("malformed pack object size");
      ASSIGN_OR_RETURN(b, in.Byte());
      size |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
    }
    if (size > limits.max_object_bytes) {
      return ResourceExhaustedError("an object of " + std::to_string(size) + " bytes is over this node's limit of " +
                                    std::to_string(limits.max_object_bytes) + " (push large files with git-lfs)");
    }
    RETURN_IF_ERROR(account(size));
    if (type >= 1 && type <= 4) {
      ASSIGN_OR_RETURN(std::string body, in.Inflate(size));
      RETURN_IF_ERROR(put(entry, static_cast<GitObjectType>(type), body));
      continue;
    }
    Pending p{0, size, 0, GitOid(), type == kOfsDelta, entry};
    if (type == kOfsDelta) {
      ASSIGN_OR_RETURN(b, in.Byte());
      uint64_t n = b & 0x7f;
      while (b & 0x80) {
        if (n > (uint64_t{1} << 50)) return InvalidArgumentError("malformed delta offset");
        ASSIGN_OR_RETURN(b, in.Byte());
        n = ((n + 1) << 7) | (b & 0x7f);
      }
      if (n == 0 || n > entry) return InvalidArgumentError("a delta's base offset is outside the pack");
      p.base_offset = entry - n;
    } else if (type == kRefDelta) {
      char oid[20];
      RETURN_IF_ERROR(in.Read(oid, 20));
      ASSIGN_OR_RETURN(p.base_oid, GitOid::FromBytes(std::string_view(oid, 20)));
    } else {
      return InvalidArgumentError("unknown pack object type " + std::to_string(type));
    }
    p.offset = in.offset();
    RETURN_IF_ERROR(in.Inflate(size).status());  // skipped now, resolved below
    pending.push_back(p);
  }
  if (in.offset() != total - 20) return InvalidArgumentError("the pack has bytes after its last object");

  // Deltas, level by level: each pass resolves those whose base is known.
  for (uint32_t depth = 0; !pending.empty(); ++depth) {
    if (depth > limits.max_delta_depth) return InvalidArgumentError("delta chains are too deep or their bases are missing");
    std::vector<Pending> next;
    for (const Pending& p : pending) {
      GitOid base;
      if (p.ofs) {
        auto it = at.find(p.base_offset);
        if (it == at.end()) {
          next.push_back(p);
          continue;
        }
        base = it->second.first;
      } else {
        if (!in_pack.count(p.base_oid)) {
          next.push_back(p);
          continue;
        }
        base = p.base_oid;
      }
      ASSIGN_OR_RETURN(auto base_obj, cb.load_base(base));
      RETURN_IF_ERROR(in.Seek(p.offset));
      ASSIGN_OR_RETURN(std::string delta, in.Inflate(p.size));
      RETURN_IF_ERROR(account(base_obj.second.size()));
      ASSIGN_OR_RETURN(std::string body, ApplyDelta(base_obj.second, delta, limits.max_object_bytes));
      RETURN_IF_ERROR(account(body.size()));
      RETURN_IF_ERROR(put(p.entry, base_obj.first, body));
      ++summary.deltas;
    }
    if (next.size() == pending.size()) {
      return InvalidArgumentError("a delta's base is not in the pack (thin packs are not accepted)");
    }
    pending = std::move(next);
  }
  return summary;
}

Result<PackSummary> UnpackToStore(store::Store& store, const std::string& path, const PackLimits& limits,
                                  std::set<GitOid>* received) {
  PackCallbacks cb;
  cb.store_object = [&](const GitOid& oid, GitObjectType type, std::string_view body) -> Status {
    received->insert(oid);
    return store.PutGitObject(oid, type, body);
  };
  cb.load_base = [&](const GitOid& oid) -> Result<std::pair<GitObjectType, std::string>> {
    ASSIGN_OR_RETURN(store::GitObject o, store.ReadGitObject(oid));
    if (!o.content) return std::make_pair(o.type, std::move(o.body));
    ASSIGN_OR_RETURN(auto reader, store.OpenFile(*o.content));
    ASSIGN_OR_RETURN(std::string body, reader->ReadToString(0, o.size));
    return std::make_pair(o.type, std::move(body));
  };
  return ReadPackFile(path, limits, cb);
}

}  // namespace hubnode::hub::git

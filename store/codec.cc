#include "store/codec.h"

#include <zstd.h>

#include <cstring>
#include <memory>

#include "base/bytes.h"

namespace hubnode::store {
namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

ZSTD_CCtx* ThreadCCtx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> ctx(ZSTD_createCCtx());
  return ctx.get();
}
ZSTD_DCtx* ThreadDCtx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> ctx(ZSTD_createDCtx());
  return ctx.get();
}

void Group(std::string_view raw, size_t w, char* out) {
  size_t n = raw.size() / w;
  const char* src = raw.data();
  for (size_t j = 0; j < w; ++j) {
    char* plane = out + j * n;
    for (size_t i = 0; i < n; ++i) plane[i] = src[i * w + j];
  }
  std::memcpy(out + n * w, src + n * w, raw.size() - n * w);
}

void Ungroup(const char* grouped, size_t size, size_t w, char* out) {
  size_t n = size / w;
  for (size_t j = 0; j < w; ++j) {
    const char* plane = grouped + j * n;
    for (size_t i = 0; i < n; ++i) out[i * w + j] = plane[i];
  }
  std::memcpy(out + n * w, grouped + n * w, size - n * w);
}

std::string RecordHeader(Codec codec, uint32_t raw_len) {
  std::string r;
  r.push_back(static_cast<char>(codec));
  PutFixed32(&r, raw_len);
  return r;
}

// Appends a zstd frame of `src` to `record`; false if zstd failed.
bool AppendZstd(std::string_view src, int level, std::string* record) {
  size_t bound = ZSTD_compressBound(src.size());
  size_t base = record->size();
  record->resize(base + bound);
  size_t n = ZSTD_compressCCtx(ThreadCCtx(), record->data() + base, bound, src.data(), src.size(), level);
  if (ZSTD_isError(n)) {
    record->resize(base);
    return false;
  }
  record->resize(base + n);
  return true;
}

}  // namespace

std::string_view CodecName(Codec c) {
  switch (c) {
    case Codec::kRaw: return "raw";
    case Codec::kZstd: return "zstd";
    case Codec::kZstdGroup2: return "zstd-group2";
    case Codec::kZstdGroup4: return "zstd-group4";
  }
  return "unknown";
}

EncodedChunk EncodeChunk(std::string_view raw, ElementKind kind, CodecPolicy policy, int zstd_level) {
  uint32_t raw_len = static_cast<uint32_t>(raw.size());
  auto raw_record = [&] {
    std::string r = RecordHeader(Codec::kRaw, raw_len);
    r.append(raw);
    return EncodedChunk{std::move(r), Codec::kRaw};
  };
  if (policy == CodecPolicy::kRawOnly || raw.size() < 64) return raw_record();

  Codec codec = Codec::kZstd;
  size_t width = 1;
  if (policy == CodecPolicy::kAuto && kind == ElementKind::k2Byte) codec = Codec::kZstdGroup2, width = 2;
  if (policy == CodecPolicy::kAuto && kind == ElementKind::k4Byte) codec = Codec::kZstdGroup4, width = 4;

  std::string record = RecordHeader(codec, raw_len);
  bool ok;
  if (width == 1) {
    ok = AppendZstd(raw, zstd_level, &record);
  } else {
    std::unique_ptr<char[]> grouped(new char[raw.size()]);
    Group(raw, width, grouped.get());
    ok = AppendZstd(std::string_view(grouped.get(), raw.size()), zstd_level, &record);
  }
  // Keep the compressed form only when it saves at least 5%.
  if (!ok || (record.size() - kChunkRecordHeader) * 100 > raw.size() * 95) return raw_record();
  return EncodedChunk{std::move(record), codec};
}

Result<ChunkHeader> PeekChunkHeader(std::string_view record) {
  if (record.size() < kChunkRecordHeader) return DataLossError("chunk record shorter than its header");
  uint8_t c = static_cast<uint8_t>(record[0]);
  if (c > static_cast<uint8_t>(Codec::kZstdGroup4)) {
    return DataLossError("chunk record has unknown codec " + std::to_string(c));
  }
  uint32_t raw_len = DecodeFixed32(record.data() + 1);
  if (raw_len > kMaxChunkRawLen) return DataLossError("chunk record raw length over the limit");
  return ChunkHeader{static_cast<Codec>(c), raw_len};
}

Result<std::string> DecodeChunk(std::string_view record) {
  ASSIGN_OR_RETURN(ChunkHeader h, PeekChunkHeader(record));
  std::string_view payload = record.substr(kChunkRecordHeader);
  if (h.codec == Codec::kRaw) {
    if (payload.size() != h.raw_len) return DataLossError("raw chunk length mismatch");
    return std::string(payload);
  }
  unsigned long long declared = ZSTD_getFrameContentSize(payload.data(), payload.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN || declared != h.raw_len) {
    return DataLossError("zstd frame size does not match the chunk's raw length");
  }
  size_t frame = ZSTD_findFrameCompressedSize(payload.data(), payload.size());
  if (ZSTD_isError(frame) || frame != payload.size()) {
    return DataLossError("chunk payload is not exactly one zstd frame");
  }
  std::string out(h.raw_len, '\0');
  size_t width = h.codec == Codec::kZstdGroup2 ? 2 : h.codec == Codec::kZstdGroup4 ? 4 : 1;
  std::unique_ptr<char[]> grouped;
  char* dst = out.data();
  if (width > 1) {
    grouped.reset(new char[h.raw_len]);
    dst = grouped.get();
  }
  size_t n = ZSTD_decompressDCtx(ThreadDCtx(), dst, h.raw_len, payload.data(), payload.size());
  if (ZSTD_isError(n) || n != h.raw_len) return DataLossError("corrupt zstd chunk payload");
  if (width > 1) Ungroup(grouped.get(), h.raw_len, width, out.data());
  return out;
}

}  // namespace hubnode::store

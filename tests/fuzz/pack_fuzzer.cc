// libFuzzer target: a pack's footer and index, a chunk location record and a manifest, as read
// back from an object store (untrusted bytes, store/records.h).
#include <cstdint>
#include <string>

#include "store/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view pack(reinterpret_cast<const char*>(data), size);
  (void)hubnode::store::DecodeChunkLoc(pack);
  if (auto m = hubnode::store::DecodeManifest(pack); m.ok()) {
    // What decodes encodes back to the same bytes.
    hubnode::store::ManifestBuilder b;
    for (const auto& e : m->entries) b.Add(e.pack, e.entry.id, e.entry.offset, e.entry.length, e.entry.meta);
    for (const auto& p : m->packs) b.Cover(p);
    if (b.Finish() != pack) __builtin_trap();
  }
  if (size < hubnode::store::kPackFooter) return 0;
  auto footer = hubnode::store::DecodePackFooter(pack.substr(size - hubnode::store::kPackFooter), size);
  if (!footer.ok()) return 0;
  auto [count, index_offset] = *footer;
  // A footer that decodes names an index inside the pack.
  if (index_offset + uint64_t{count} * hubnode::store::kPackIndexEntry + hubnode::store::kPackFooter != size) {
    __builtin_trap();
  }
  auto index = hubnode::store::DecodePackIndex(pack.substr(index_offset, size_t{count} * hubnode::store::kPackIndexEntry),
                                               count, index_offset);
  if (!index.ok()) return 0;
  // Every entry it accepts names bytes inside the records, and its record holds its header.
  for (const auto& e : *index) {
    if (e.offset + e.length > index_offset || e.length < 5) __builtin_trap();
  }
  // Packing what decoded again holds up.
  hubnode::store::PackBuilder b;
  for (const auto& e : *index) b.Add(e.id, e.meta, pack.substr(e.offset, e.length));
  (void)b.Finish();
  return 0;
}

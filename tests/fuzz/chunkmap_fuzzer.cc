// libFuzzer target: chunk-map statements (the payload a peer's signed bundle carries).
#include <cstdint>
#include <string>

#include "verify/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto m = hubnode::verify::ParseChunkMapStatement(text);
  if (m.ok()) {
    // A parsed map prints back to a statement that parses to the same map.
    const std::string again = hubnode::verify::ChunkMapStatement(*m);
    auto m2 = hubnode::verify::ParseChunkMapStatement(again);
    if (!m2.ok() || hubnode::verify::ChunkMapStatement(*m2) != again) __builtin_trap();
    for (const auto& f : m->files) {
      if (!f.chunks.empty()) (void)m->CheckChunk(f.path, 0, text.substr(0, f.chunks[0].size));
    }
  }
  return 0;
}

// libFuzzer target: the safetensors header parser (uploads, imports and pulls all run it on
// untrusted bytes). Input: the header text; the data section is sized from its first byte.
#include <cstdint>
#include <string_view>

#include "store/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const uint64_t data_size = size ? static_cast<uint64_t>(data[0]) * 3 : 0;
  auto header = hubnode::store::ParseSafetensorsHeader(text, 8 + text.size() + data_size);
  if (header.ok()) {
    uint64_t expect = header->header_end;
    for (const auto& t : header->tensors) {
      if (t.begin != expect) __builtin_trap();  // the parser promised no holes or overlaps
      expect = t.end;
    }
  }
  return 0;
}

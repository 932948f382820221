// libFuzzer target: SPDX expression parsing, printing and policy evaluation.
#include <cstdint>
#include <string>

#include "verify/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto e = hubnode::verify::ParseSpdx(text);
  if (e.ok()) {
    std::string canon = (*e)->ToString();
    auto again = hubnode::verify::ParseSpdx(canon);
    if (!again.ok() || (*again)->ToString() != canon) __builtin_trap();  // printing must round-trip
    (void)hubnode::verify::Evaluate(**e, hubnode::verify::LicensePolicy::Default());
    (void)hubnode::verify::CheckDerivative(**e, **e);
  }
  return 0;
}

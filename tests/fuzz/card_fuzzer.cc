// libFuzzer target: model-card front matter and LICENSE text normalisation.
#include <cstdint>
#include <string>

#include "verify/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text = "---\n" + std::string(reinterpret_cast<const char*>(data), size) + "\n---\n";
  auto card = hubnode::verify::ReadModelCard(text);
  (void)hubnode::verify::SpdxForCard(card.license.value_or(""), card.license_name.value_or(""));
  (void)hubnode::verify::NormalizedWords(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

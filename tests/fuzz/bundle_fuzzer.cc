// libFuzzer target: the model-signing bundle parser (VerifyBundle) on arbitrary bytes.
#include <cstdint>
#include <string>

#include "verify/verify.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const hubnode::verify::PrivateKey* key = [] {
    auto k = hubnode::verify::PrivateKey::Generate(hubnode::verify::Curve::kP256);
    return new hubnode::verify::PrivateKey(std::move(*k));
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = hubnode::verify::VerifyBundle(text, key->public_key());
  (void)r.ok();
  (void)hubnode::verify::Base64Decode(text).ok();
  return 0;
}

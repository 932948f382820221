// float → bf16 / fp16 bits for the runtime's tests that build weights by hand (the backend tests).
#pragma once

#include <cstdint>
#include <cstring>

namespace hubnode::runtime::testing {

// Round to nearest even (what a checkpoint writer does).
inline uint16_t ToBf16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return static_cast<uint16_t>((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
}

// Truncating float -> fp16 (the tests only need the stored half to be what they read back).
inline uint16_t ToF16(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  const uint16_t sign = (b >> 16) & 0x8000;
  const int exp = static_cast<int>((b >> 23) & 0xFF) - 127 + 15;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7BFF;
  return sign | static_cast<uint16_t>(exp << 10) | static_cast<uint16_t>((b >> 13) & 0x3FF);
}

}  // namespace hubnode::runtime::testing

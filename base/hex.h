// Lowercase hexadecimal encoding and strict decoding; percent-encoding for URLs.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace hubnode {

std::string HexEncode(std::span<const uint8_t> bytes);
std::string HexEncode(std::string_view bytes);

// Decodes exactly `out.size()` bytes from `hex` (2 * out.size() hex digits, either case).
// InvalidArgument on a wrong length or a non-hex digit.
Status HexDecodeInto(std::string_view hex, std::span<uint8_t> out);

// True when `s` is non-empty and only [0-9a-f] (lowercase).
bool IsLowerHex(std::string_view s);

// Percent-encodes a URL path segment or query value: unreserved characters (RFC 3986) are kept,
// and "/" too when keep_slash.
std::string UrlEncode(std::string_view s, bool keep_slash);

}  // namespace hubnode

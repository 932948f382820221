// UTC time formatting.
#pragma once

#include <cstdint>
#include <string>

namespace hubnode {

// strftime(format) of a unix time in UTC, e.g. FormatUtc(t, "%Y-%m-%dT%H:%M:%S.000Z").
std::string FormatUtc(int64_t unix_seconds, const char* format);

}  // namespace hubnode

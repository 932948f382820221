// A guard for JSON from the network, a peer, an upstream or a committed file, run before a DOM
// parser sees it: a DOM parser turns every level of nesting into an allocation, so 16 MiB of '['
// would cost gigabytes before it could be refused.
//
// Thread safety: reentrant.
#pragma once

#include <string_view>

namespace hubnode {

// The nesting every JSON document of hubnode's protocols and model files stays within.
inline constexpr int kMaxJsonDepth = 64;

// Whether `text` nests arrays and objects at most `max_depth` deep (strings are skipped, their
// escapes honoured). It does not validate the JSON otherwise.
bool JsonDepthWithin(std::string_view text, int max_depth = kMaxJsonDepth);

}  // namespace hubnode

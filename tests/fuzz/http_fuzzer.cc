// libFuzzer target: the request path of the HTTP server as far as it reads bytes from a client
// before a handler runs: the target's route and segments, header framing, Range parsing, and the
// JSON nesting guard. Input: a target line, then "Name: value" header lines.
#include <cstdint>
#include <string>

#include "base/json_limits.h"
#include "hub/http/http_util.h"
#include "hub/http/router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t nl = text.find('\n');
  const std::string target = text.substr(0, nl);
  const auto route = hubnode::hub::ParseRoute(target);
  (void)hubnode::hub::RouteName(route.kind);
  const auto segments = hubnode::hub::SplitTarget(target);
  (void)hubnode::hub::JoinSegments(segments, 0, segments.size());
  httplib::Request req;
  size_t at = nl == std::string::npos ? text.size() : nl + 1;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) req.headers.emplace(line.substr(0, colon), line.substr(colon + 1));
    at = end + 1;
  }
  (void)hubnode::hub::AmbiguousFraming(req);
  (void)hubnode::hub::ParseRange(req.get_header_value("Range"), size * 977);
  (void)hubnode::JsonDepthWithin(text);
  return 0;
}

// The server side of git's fetch (gitprotocol-v2 `ls-refs` and `fetch`; gitprotocol-pack for
// protocol v0/v1 over stateless HTTP): ref advertisement, have negotiation, shallow and filtered
// requests, and a pack streamed as it is built. What a caller may see of a repo is a RepoView:
// the route decides it (access rules, staged heads for writers); nothing here reaches objects
// outside the view's refs.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace hubnode::hub::git {

struct RepoView {
  store::Store* store = nullptr;
  std::vector<store::RefInfo> refs;  // the refs the caller sees (names as git shows them)
  std::string head;                  // the ref HEAD points at (refs/heads/<default branch>)
};

struct UploadLimits {
  uint64_t max_objects = 2'000'000;    // objects in one pack
  uint64_t max_walk = 4'000'000;       // objects visited while planning or checking a want
  uint64_t max_haves = 100'000;        // have lines in one request
  uint64_t max_wants = 10'000;         // distinct want lines in one request
};

// The service advertisement of GET info/refs for protocol v2 ("version 2" and its capabilities).
std::string AdvertiseV2();
// The v0 advertisement of GET info/refs?service=git-upload-pack: "# service=" line, refs with
// capabilities.
std::string AdvertiseUploadPackV0(const RepoView& view);

using Sink = std::function<bool(std::string_view)>;

// Answers one protocol-v2 request body (command=ls-refs or command=fetch). Errors in the request
// are sent to the client as an ERR line; the returned status is for the log.
Status ServeV2(const RepoView& view, std::string_view body, const UploadLimits& limits, const Sink& sink);
// Answers one v0 upload-pack request (wants, haves, done) of a stateless HTTP exchange.
Status ServeV0(const RepoView& view, std::string_view body, const UploadLimits& limits, const Sink& sink);


}  // namespace hubnode::hub::git

// A serving node: the HTTP server (hub/http) with every route group of the node mounted on it —
// the Hugging Face compatible write API (hub/write) and read API (hub/read) over a Store, the
// OpenAI-compatible inference API (/v1/, hub/serve), the peer API (/api/peer/v1/, hub/peer),
// /health and /metrics. docs/http-api.md documents every route.
//
// Thread safety: Run() blocks on the calling thread; Stop() may be called from any thread (a
// signal-watching thread, typically) and lets in-flight responses finish.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "hub/http/auth.h"
#include "hub/mirror/mirror.h"
#include "hub/rawcache/raw_cache.h"
#include "hub/serve/model_host.h"
#include "store/store.h"
#include "verify/verify.h"

namespace hubnode::hub {

struct NodeOptions {
  // Address to listen on. Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // Port; 0 picks a free one (see Node::port()). Default: 8080.
  int port = 8080;
  // Worker threads, which bounds concurrent requests and so memory. Connections waiting for a
  // request (slow or idle clients) cost no worker. Default: 64.
  unsigned threads = 64;
  // Base URL for absolute links (pagination); empty = from the request's Host header.
  // Default: empty.
  std::string public_url;
  // Largest request body accepted (paths-info). Default: 16 MiB.
  size_t max_body = 16 << 20;
  // Seconds to wait for a client's request bytes. Default: 30.
  int read_timeout_s = 30;
  // Seconds a request head may take to arrive; a kept-alive connection's wait for its next request.
  // Default: 10, 30.
  int header_timeout_s = 10;
  int idle_timeout_s = 30;
  // Connections open at once, in all and from one client address. Default: 4096, 256.
  size_t max_connections = 4096;
  size_t max_connections_per_ip = 256;
  // With a mirror: which repos may be pulled through. Default: all.
  MirrorPolicy mirror_policy;
  // Serve only what is held, never contact the upstream. Default: false.
  bool offline = false;
  // Seconds a mirrored branch is served before it is resolved upstream again (-1 never).
  int64_t mirror_ttl_s = 60;
  // The trust store file, for the trust status of served revisions. Default: none.
  std::string trust_path;
  // Reference license texts. Default: Debian's.
  std::string common_licenses = "/usr/share/common-licenses";
  // This node's identity key, which signs the chunk maps it serves; none = no chunk maps.
  // Default: none.
  const verify::PrivateKey* node_key = nullptr;
  // Peers this node knows (serve --peer), listed in its peer catalog so that others learn them.
  // Default: none.
  std::vector<std::string> peers;
  // A reader node of the chunk tier (--chunks-reader): the write API refuses every write
  // (anything but its GETs) with 403 ReaderNode, or, given writer_url, answers it with a 307 to
  // the writer node's URL + the request's target. Default: false, empty (write here).
  bool reader_node = false;
  std::string writer_url;
  // The write API (repo create, LFS uploads, commits); disabled when data_dir is empty.
  // DATA holds the upload URL key (upload.key) and multipart parts (uploads/).
  std::string data_dir;
  // Seconds an LFS upload URL stays valid; an unfinished multipart upload (its session and its
  // parts on disk) is dropped when its URLs expire. Default: 3600.
  int64_t upload_url_lifetime_s = 3600;
  // Objects from this size up are offered the LFS multipart transfer. Default: 256 MiB.
  uint64_t multipart_threshold = uint64_t{256} << 20;
  // Part size of multipart uploads. Default: 64 MiB.
  uint64_t multipart_chunk = uint64_t{64} << 20;
  // Disk for the raw copies of hot files (DATA/rawcache), served without chunk reads or
  // decompression; 0 = none. Needs data_dir. Default: 4 GiB.
  uint64_t raw_cache_bytes = uint64_t{4} << 30;
  // The raw cache the caller made, to share with its model host (the expert tier); when set it
  // is used instead of raw_cache_bytes and raw_cache_min, and must outlive the node. Default:
  // null (the node makes its own).
  RawCache* raw_cache = nullptr;
  // Smallest file the raw cache keeps. Default: 8 MiB.
  uint64_t raw_cache_min = uint64_t{8} << 20;
};

class Node {
 public:
  // The store, tokens, mirror (nullable: no upstream) and model host (nullable: no inference
  // API) must outlive the server.
  static Result<std::unique_ptr<Node>> Create(const NodeOptions& options, store::Store* store,
                                             TokenStore* tokens, Mirror* mirror, ModelHost* models = nullptr);
  virtual ~Node() = default;
  // Binds the listening socket. Unavailable if the address is taken.
  virtual Status Bind() = 0;
  virtual int port() const = 0;
  // Serves until Stop(). REQUIRES: Bind() succeeded.
  virtual Status Run() = 0;
  virtual void Stop() = 0;
};

}  // namespace hubnode::hub

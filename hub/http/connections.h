// The connections of the HTTP server, private to hub/http: an accept loop with a waiting room.
//
// A connection waits in one epoll loop, costing no worker, until a complete request head has
// arrived (a new connection within `header_timeout_s` of its first byte or of the accept; a
// kept-alive one idles up to `idle_timeout_s` for the next request). Only then does a worker
// serve that one request; afterwards the connection goes back to the room. So clients that send
// headers slowly, or hold sockets idle, cost a file descriptor and a few bytes, never a worker:
// the node answers others while hundreds of them are open. Limits: connections in all and per
// client address (beyond them a connection is answered 503 and closed), the request head's size
// (431), and requests served at once per client address (the rest wait their turn), so that one
// client's downloads cannot take every worker.
//
// Thread safety: Run() blocks on the calling thread; Stop() may be called from any thread.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <functional>
#include <memory>

#include "base/status.h"

namespace hubnode::hub {

struct ConnectionOptions {
  // Worker threads: requests served at once. Default: 64.
  unsigned workers = 64;
  // Connections open at once (waiting or served). Default: 4096.
  size_t max_connections = 4096;
  // Connections open at once from one client address. Default: 256.
  size_t max_connections_per_ip = 256;
  // Requests one client address may have served at once; 0 = three quarters of the workers.
  // Default: 0.
  size_t max_active_per_ip = 0;
  // Seconds a request head may take to arrive, from its first byte (or from the accept). Default: 10.
  int header_timeout_s = 10;
  // Seconds a kept-alive connection may wait for its next request. Default: 30.
  int idle_timeout_s = 30;
  // Largest request head (request line and headers). Default: 64 KiB.
  size_t max_head_bytes = 64 << 10;
  // Requests served on one connection before it is closed. Default: 100.
  size_t keep_alive_max = 100;
  // Seconds one read or write of a request's body or response may block. Default: 30 / 60.
  int read_timeout_s = 30;
  int write_timeout_s = 60;
};

class ConnectionLoop {
 public:
  // Serves one request read from the stream; `close` asks that the connection end after it,
  // `closed` says that it did. Returns false when the connection cannot go on.
  using ServeOne = std::function<bool(httplib::Stream& stream, bool close, bool& closed)>;

  // `listen_fd` is a bound, listening socket; the loop raises its backlog and owns it from Run().
  ConnectionLoop(const ConnectionOptions& options, int listen_fd, ServeOne serve);
  ~ConnectionLoop();
  // Accepts and serves until Stop(); in-flight requests finish first.
  Status Run();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hubnode::hub

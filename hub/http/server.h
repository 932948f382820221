// The HTTP server every route group of the node is mounted on (cpp-httplib parses and answers
// requests): the listening socket, connections that wait for a whole request head without holding
// a worker (hub/http/connections.h: slow and idle clients cannot starve others), CORS, request body limits, connection safety (an unread body ends the
// connection: no request smuggling), JSON error bodies even for errors httplib raises itself,
// a last-resort exception handler, per-route metrics and the access log. What a route does is the
// business of the Service that handles it; the server asks its services in order and the first
// that handles a request answers it.
//
// Thread safety: Run() blocks on the calling thread; Stop() may be called from any thread (a
// signal-watching thread, typically) and lets in-flight responses finish. Services are called
// concurrently from the worker threads.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "hub/http/metrics.h"

namespace hubnode::hub {

struct HttpServerOptions {
  // Address to listen on. Default: 127.0.0.1.
  std::string host = "127.0.0.1";
  // Port; 0 picks a free one (see HttpServer::port()). Default: 8080.
  int port = 8080;
  // Worker threads, which bounds concurrent requests and so memory. Connections waiting for a
  // request (slow or idle clients) cost no worker. Default: 64.
  unsigned threads = 64;
  // Largest request body read for a service that does not stream bodies. Default: 16 MiB.
  size_t max_body = 16 << 20;
  // Seconds one read of a request body may wait for the client. Default: 30.
  int read_timeout_s = 30;
  // Seconds a request head may take to arrive. Default: 10.
  int header_timeout_s = 10;
  // Seconds a kept-alive connection may wait for its next request. Default: 30.
  int idle_timeout_s = 30;
  // Connections open at once, in all and from one client address. Default: 4096, 256.
  size_t max_connections = 4096;
  size_t max_connections_per_ip = 256;
};

// A group of routes (the read API, the write API, /v1/, /api/peer/v1/, /metrics).
class Service {
 public:
  virtual ~Service() = default;
  // Whether this service answers the request, decided from its method and target alone, before
  // any body is read.
  virtual bool Handles(const httplib::Request& req) const = 0;
  // Whether it reads request bodies itself, streamed, with its own limits (uploads). For the other
  // services the server reads the body (up to max_body; only POST may carry one) into req.body.
  virtual bool StreamsBody() const { return false; }
  // Answers the request. `body` reads the request body for a service that StreamsBody() and a
  // request that has one; null otherwise.
  virtual void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* body) = 0;
};

class HttpServer {
 public:
  // The services are asked in order. They and the metrics must outlive the server.
  // InvalidArgument for a thread count outside 1..1024.
  static Result<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options, std::vector<Service*> services,
                                                    Metrics* metrics);
  virtual ~HttpServer() = default;
  // Binds the listening socket. Unavailable if the address is taken.
  virtual Status Bind() = 0;
  virtual int port() const = 0;
  // Serves until Stop(). REQUIRES: Bind() succeeded.
  virtual Status Run() = 0;
  virtual void Stop() = 0;
};

}  // namespace hubnode::hub

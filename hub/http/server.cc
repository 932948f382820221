#include "hub/http/server.h"

#include <charconv>
#include <chrono>
#include <cctype>
#include <optional>
#include <limits>
#include <mutex>
#include <set>

#include "base/log.h"
#include "hub/http/connections.h"
#include "hub/http/http_util.h"
#include "hub/http/router.h"

namespace hubnode::hub {
namespace {

using Clock = std::chrono::steady_clock;
thread_local Clock::time_point t_request_start;

constexpr const char* kExposedHeaders =
    "X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, X-Total-Count, ETag, Link, Accept-Ranges, "
    "Content-Range, X-Linked-Size, X-Linked-ETag, Content-Length, X-Hubnode-Held";

// httplib's request parser and router, fed by our connection loop: process_request is protected,
// and the listening socket its bind made is ours to serve.
class LibServer final : public httplib::Server {
 public:
  bool ServeOne(httplib::Stream& stream, bool close, bool& closed) {
    return process_request(stream, close, closed, nullptr);
  }
  int listen_fd() const { return svr_sock_; }
};

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(const HttpServerOptions& o, std::vector<Service*> services, Metrics* metrics)
      : options_(o), services_(std::move(services)), metrics_(metrics) {
    // Bodies are read by the services or by serve_body below, each with its own limits (uploads
    // stream, the rest are capped at max_body); httplib's limit only rejects a Content-Length
    // beyond any upload.
    http_.set_payload_max_length(std::numeric_limits<size_t>::max());
    // Only for the Keep-Alive header httplib writes: the connection loop enforces both.
    http_.set_keep_alive_max_count(100);
    http_.set_keep_alive_timeout(options_.idle_timeout_s);
    http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = Clock::now();
      // Our file routes read Range themselves; httplib must not also cut an error body to it
      // (the JS client sends Range: bytes=0-0 and then parses the JSON error).
      const_cast<httplib::Request&>(req).ranges.clear();
      res.set_header("Access-Control-Allow-Origin", "*");
      res.set_header("Access-Control-Expose-Headers", kExposedHeaders);
      // Only the methods we serve: httplib would read any other request's body whole (PATCH).
      static const std::set<std::string> kMethods = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"};
      if (!kMethods.count(req.method)) {
        SendError(res, 405, "MethodNotAllowed", "method not allowed");
        CloseAfter(res);
        return httplib::Server::HandlerResponse::Handled;
      }
      // Framing a proxy in front could read differently from us is refused before any body is
      // read (request smuggling): Content-Length given twice with different values or not a
      // number, Transfer-Encoding other than exactly "chunked", or both headers at once.
      if (auto why = AmbiguousFraming(req)) {
        SendError(res, 400, "BadRequest", *why);
        CloseAfter(res);
        return httplib::Server::HandlerResponse::Handled;
      }
      // Refuse an oversized body before it is read (uploads are sized by their signed URL).
      const Service* service = Find(req);
      if (req.has_header("Content-Length") && !(service && service->StreamsBody())) {
        uint64_t n = 0;
        std::string cl = req.get_header_value("Content-Length");
        auto r = std::from_chars(cl.data(), cl.data() + cl.size(), n);
        if (r.ec != std::errc() || n > options_.max_body) {
          SendError(res, 413, "PayloadTooLarge", "request body over " + std::to_string(options_.max_body) + " bytes");
          CloseAfter(res);
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      Service* service = Find(req);
      if (!service) return SendError(res, 404, "NotFound", "no such route");
      service->Handle(req, res, nullptr);
    };
    // A HEAD answer has no body, so it must not claim a JSON one: the JS client parses the body
    // of any error response labelled application/json.
    http_.set_post_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      CompleteErrorHeaders(res);
      if (req.method == "HEAD" && res.status >= 400) {
        res.headers.erase("Content-Type");
        res.set_header("Content-Type", "text/plain; charset=utf-8");
      }
    });
    // Requests with a body: a service that streams bodies reads its own (uploads); the others get
    // the body read here, capped at max_body whatever the transfer encoding.
    auto serve_body = [this, handle](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& reader) {
      Service* service = Find(req);
      if (service && service->StreamsBody()) return service->Handle(req, res, &reader);
      std::string body;
      bool too_big = false;
      reader([&](const char* data, size_t n) {
        if (body.size() + n > options_.max_body) {
          too_big = true;
          return false;
        }
        body.append(data, n);
        return true;
      });
      if (too_big) {
        return SendError(res, 413, "PayloadTooLarge", "request body over " + std::to_string(options_.max_body) + " bytes");
      }
      if (req.method != "POST") return SendError(res, 405, "MethodNotAllowed", "method not allowed");
      httplib::Request copy = req;
      copy.body = std::move(body);
      // What httplib does for bodies it reads itself: form fields join the query parameters.
      if (copy.get_header_value("Content-Type").starts_with("application/x-www-form-urlencoded")) {
        httplib::detail::parse_query_text(copy.body, copy.params);
      }
      handle(copy, res);
    };
    // A request whose body was not read to its end (refused early, or cut at a limit) gets the
    // last answer on its connection: httplib would parse the rest of the body as a request.
    auto handle_body = [serve_body](const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader) {
      const bool chunked = req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
      const std::string cl = req.get_header_value("Content-Length");
      bool consumed = !chunked && (cl.empty() || cl == "0");
      // Without Content-Length or chunked framing a request has no body (RFC 9112 6.3); httplib
      // would read until the client closes (curl -X POST sends neither: 30 s of waiting).
      const bool no_body = !chunked && cl.empty();
      httplib::ContentReader tracked(
          [&](httplib::ContentReceiver receiver) { return no_body || (consumed = reader(std::move(receiver))); },
          [&](httplib::MultipartContentHeader header, httplib::ContentReceiver receiver) {
            return consumed = reader(std::move(header), std::move(receiver));
          });
      serve_body(req, res, tracked);
      if (!consumed && !res.content_provider_) CloseAfter(res);
    };
    http_.Get(".*", handle);  // httplib routes HEAD to GET handlers and omits the body
    http_.Post(".*", handle_body);
    http_.Put(".*", handle_body);
    http_.Delete(".*", handle_body);
    http_.Options(".*", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Range, X-Requested-With");
      res.set_header("Access-Control-Max-Age", "86400");
    });
    http_.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr) {
      LOG(Error) << "unhandled exception serving " << req.method << " " << req.path.substr(0, 200);
      SendError(res, 500, "InternalError", "internal error");
    });
    http_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty() && !res.content_provider_ && res.status >= 400) {
        SendError(res, res.status, res.status == 404 ? "NotFound" : "BadRequest", "request error " + std::to_string(res.status));
      }
    });
    http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      double s = std::chrono::duration<double>(Clock::now() - t_request_start).count();
      Route route = ParseRoute(req.target);
      metrics_->Record(RouteName(route.kind), res.status, s);
      LOG(Info) << req.remote_addr << " " << req.method << " " << req.path.substr(0, 300) << " " << res.status << " "
                << static_cast<int>(s * 1e6) / 1000.0 << "ms";
    });
  }

  Status Bind() override {
    if (options_.port == 0) {
      port_ = http_.bind_to_any_port(options_.host);
      if (port_ <= 0) return UnavailableError("cannot listen on " + options_.host);
    } else {
      if (!http_.bind_to_port(options_.host, options_.port)) {
        return UnavailableError("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                                " (address in use?)");
      }
      port_ = options_.port;
    }
    return OkStatus();
  }
  int port() const override { return port_; }
  Status Run() override {
    ConnectionOptions co;
    co.workers = std::max(1u, options_.threads);
    co.max_connections = options_.max_connections;
    co.max_connections_per_ip = options_.max_connections_per_ip;
    co.header_timeout_s = options_.header_timeout_s;
    co.idle_timeout_s = options_.idle_timeout_s;
    co.read_timeout_s = options_.read_timeout_s;
    co.write_timeout_s = 60;
    co.keep_alive_max = 100;
    {
      std::lock_guard lock(loop_mu_);
      if (stopped_) return OkStatus();
      loop_ = std::make_unique<ConnectionLoop>(
          co, http_.listen_fd(), [this](httplib::Stream& s, bool close, bool& closed) { return http_.ServeOne(s, close, closed); });
    }
    return loop_->Run();
  }
  void Stop() override {
    std::lock_guard lock(loop_mu_);
    stopped_ = true;
    if (loop_) loop_->Stop();
  }

 private:
  // The first service that handles the request; null when none does.
  Service* Find(const httplib::Request& req) const {
    for (Service* s : services_) {
      if (s->Handles(req)) return s;
    }
    return nullptr;
  }

  HttpServerOptions options_;
  std::vector<Service*> services_;
  Metrics* metrics_;
  LibServer http_;
  std::mutex loop_mu_;
  bool stopped_ = false;
  std::unique_ptr<ConnectionLoop> loop_;
  int port_ = 0;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options, std::vector<Service*> services,
                                                       Metrics* metrics) {
  if (options.threads == 0 || options.threads > 1024) return InvalidArgumentError("--threads must be 1..1024");
  return std::unique_ptr<HttpServer>(new HttpServerImpl(options, std::move(services), metrics));
}

}  // namespace hubnode::hub

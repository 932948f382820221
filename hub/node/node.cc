#include "hub/node/node.h"

#include <functional>

#include "base/log.h"
#include "hub/http/http_util.h"
#include "hub/http/metrics.h"
#include "hub/http/server.h"
#include "hub/peer/peer_api.h"
#include "hub/read/handlers.h"
#include "hub/serve/openai_api.h"
#include "hub/web/web_service.h"
#include "hub/write/write_api.h"

namespace hubnode::hub {
namespace {

// A service answering the requests whose target starts with one prefix, for callers with a valid
// token or none (a bad token is a 401 before the route runs).
class PrefixService final : public Service {
 public:
  using Fn = std::function<void(const httplib::Request&, httplib::Response&, const std::optional<Principal>&)>;
  PrefixService(std::string prefix, TokenStore* tokens, Fn fn)
      : prefix_(std::move(prefix)), tokens_(tokens), fn_(std::move(fn)) {}
  bool Handles(const httplib::Request& req) const override { return req.path.starts_with(prefix_); }
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader*) override {
    auto who = tokens_->Authenticate(req.get_header_value("Authorization"));
    if (!who.ok()) return SendError(res, 401, "Unauthorized", who.status().message());
    fn_(req, res, *who);
  }

 private:
  std::string prefix_;
  TokenStore* tokens_;
  Fn fn_;
};

// The write API: its routes read their own bodies (uploads stream into the store).
class WriteService final : public Service {
 public:
  WriteService(WriteApi* api, TokenStore* tokens, bool reader_node, std::string writer_url)
      : api_(api), tokens_(tokens), reader_node_(reader_node), writer_url_(std::move(writer_url)) {
    while (!writer_url_.empty() && writer_url_.back() == '/') writer_url_.pop_back();
  }
  bool Handles(const httplib::Request& req) const override {
    // GET only for the discussions, the one write-API resource that is also read.
    return req.method != "HEAD" && WriteApi::Handles(req);
  }
  bool StreamsBody() const override { return true; }
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* body) override {
    if ((reader_node_ || !writer_url_.empty()) && !WriteApi::Reads(req)) {
      // A reader node writes nothing (its store would refuse each write; this says why before
      // any body is read). With its writer named, the client repeats the request (method and
      // body) there, and this node then follows the writer's commits. Reads (git fetch, LFS
      // downloads) are served here.
      if (writer_url_.empty()) {
        return SendError(res, 403, "ReaderNode",
                         "this node serves the chunks of a writer node and takes no writes: send them to the writer "
                         "(start the reader with --writer URL to redirect them)");
      }
      if (req.has_header("Authorization")) {
        // HTTP clients drop the token when a redirect changes host or port (requests, httpx), so
        // a 307 would end as the writer's 401: say where to write instead.
        return SendError(res, 403, "ReaderNode",
                         "this node serves the chunks of a writer node and takes no writes: send them to " + writer_url_);
      }
      SendError(res, 307, "ReaderNode", "this node serves the chunks of a writer node; write to " + writer_url_);
      res.set_header("Location", writer_url_ + req.target);
      return;
    }
    auto who = tokens_->Authenticate(req.get_header_value("Authorization"));
    if (!who.ok()) return SendError(res, 401, "Unauthorized", who.status().message());
    if (!body && req.method == "GET") {
      const httplib::ContentReader none([](httplib::ContentReceiver) { return true; },
                                        [](httplib::MultipartContentHeader, httplib::ContentReceiver) { return true; });
      return api_->Handle(req, res, none, *who);
    }
    if (!body) return SendError(res, 405, "MethodNotAllowed", "method not allowed");  // the server gives one
    api_->Handle(req, res, *body, *who);
  }

 private:
  WriteApi* api_;
  TokenStore* tokens_;
  bool reader_node_;
  std::string writer_url_;
};

// The read API: every route the others do not take.
class ReadService final : public Service {
 public:
  explicit ReadService(Handlers* handlers) : handlers_(handlers) {}
  bool Handles(const httplib::Request&) const override { return true; }
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader*) override {
    handlers_->Handle(req, res);
  }

 private:
  Handlers* handlers_;
};

// /metrics: the server's request metrics, the store's size and the inference API's counters
// (per model: only the models the scraper's token may read).
class MetricsService final : public Service {
 public:
  MetricsService(Metrics* metrics, store::Store* store, const OpenAiApi* openai, TokenStore* tokens)
      : metrics_(metrics), store_(store), openai_(openai), tokens_(tokens) {}
  bool Handles(const httplib::Request& req) const override { return req.path == "/metrics"; }
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader*) override {
    auto who = tokens_->Authenticate(req.get_header_value("Authorization"));
    if (!who.ok()) return SendError(res, 401, "Unauthorized", who.status().message());
    res.set_content(metrics_->Render(store_->DiskBytes()) + openai_->Metrics(*who), "text/plain; version=0.0.4");
  }

 private:
  Metrics* metrics_;
  store::Store* store_;
  const OpenAiApi* openai_;
  TokenStore* tokens_;
};

ReadOptions ReadOptionsOf(const NodeOptions& o) {
  ReadOptions r;
  r.public_url = o.public_url;
  r.mirror_policy = o.mirror_policy;
  r.offline = o.offline;
  r.mirror_ttl_s = o.mirror_ttl_s;
  r.trust_path = o.trust_path;
  r.common_licenses = o.common_licenses;
  r.node_key = o.node_key;
  r.peers = o.peers;
  return r;
}

class NodeImpl final : public Node {
 public:
  NodeImpl(const NodeOptions& o, store::Store* store, TokenStore* tokens, Mirror* mirror, ModelHost* models)
      : handlers_(ReadOptionsOf(o), store, tokens, &metrics_, mirror),
        openai_(store, models),
        peer_(store, o.node_key, o.peers, o.trust_path),
        metrics_service_(&metrics_, store, &openai_, tokens),
        openai_service_("/v1/", tokens,
                        [this](const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who) {
                          openai_.Handle(req, res, who);
                        }),
        peer_service_("/api/peer/v1/", tokens,
                      [this](const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who) {
                        peer_.Handle(req, res, who);
                      }),
        read_service_(&handlers_) {
    peer_.SetDenied([this](const store::RepoInfo& repo, const GitOid& commit, const std::optional<Principal>& who) {
      return handlers_.DeniedNow(repo, commit, who);
    });
    if (!o.data_dir.empty()) {
      auto key = LoadOrCreateUrlKey(o.data_dir);
      if (!key.ok()) {
        LOG(Error) << "write API disabled: " << key.status().ToString();
      } else {
        WriteOptions wo;
        wo.uploads_dir = o.data_dir + "/uploads";
        wo.url_key = *key;
        wo.public_url = o.public_url;
        wo.trust_path = o.trust_path;
        wo.common_licenses = o.common_licenses;
        wo.max_body = o.max_body;
        wo.multipart_threshold = o.multipart_threshold;
        wo.multipart_chunk = o.multipart_chunk;
        wo.url_lifetime_s = o.upload_url_lifetime_s;
        wo.reader_node = o.reader_node || !o.writer_url.empty();
        wo.writer_url = o.writer_url;
        while (!wo.writer_url.empty() && wo.writer_url.back() == '/') wo.writer_url.pop_back();
        write_ = std::make_unique<WriteApi>(store, std::move(wo));
        write_service_ = std::make_unique<WriteService>(write_.get(), tokens, o.reader_node, o.writer_url);
      }
      if (o.raw_cache) {
        handlers_.SetRawCache(o.raw_cache);
      } else if (o.raw_cache_bytes > 0) {
        raw_cache_ = std::make_unique<RawCache>(
            RawCacheOptions{.dir = o.data_dir + "/rawcache", .capacity = o.raw_cache_bytes, .min_size = o.raw_cache_min},
            store);
        handlers_.SetRawCache(raw_cache_.get());
      }
    }
  }

  // The services in the order the server asks them: the write API first (it claims its routes
  // before their bodies are read), the read API last (it answers every other route).
  std::vector<Service*> Services() {
    std::vector<Service*> s;
    if (write_service_) s.push_back(write_service_.get());
    s.push_back(&metrics_service_);
    s.push_back(&openai_service_);
    s.push_back(&peer_service_);
    s.push_back(&web_service_);
    s.push_back(&read_service_);
    return s;
  }

  Metrics* metrics() { return &metrics_; }
  void SetServer(std::unique_ptr<HttpServer> server) { http_ = std::move(server); }
  Status Bind() override { return http_->Bind(); }
  int port() const override { return http_->port(); }
  Status Run() override { return http_->Run(); }
  void Stop() override { http_->Stop(); }

 private:
  Metrics metrics_;
  Handlers handlers_;
  OpenAiApi openai_;
  PeerApi peer_;
  std::unique_ptr<WriteApi> write_;
  std::unique_ptr<RawCache> raw_cache_;
  MetricsService metrics_service_;
  PrefixService openai_service_;
  PrefixService peer_service_;
  WebService web_service_;
  ReadService read_service_;
  std::unique_ptr<WriteService> write_service_;
  // Last: destroyed first, so that no response in flight reads a service or the raw cache after
  // it is gone.
  std::unique_ptr<HttpServer> http_;
};

}  // namespace

Result<std::unique_ptr<Node>> Node::Create(const NodeOptions& options, store::Store* store, TokenStore* tokens,
                                           Mirror* mirror, ModelHost* models) {
  if (options.threads == 0 || options.threads > 1024) return InvalidArgumentError("--threads must be 1..1024");
  HttpServerOptions http;
  http.host = options.host;
  http.port = options.port;
  http.threads = options.threads;
  http.max_body = options.max_body;
  http.read_timeout_s = options.read_timeout_s;
  http.header_timeout_s = options.header_timeout_s;
  http.idle_timeout_s = options.idle_timeout_s;
  http.max_connections = options.max_connections;
  http.max_connections_per_ip = options.max_connections_per_ip;
  auto node = std::make_unique<NodeImpl>(options, store, tokens, mirror, models);
  ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server, HttpServer::Create(http, node->Services(), node->metrics()));
  node->SetServer(std::move(server));
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace hubnode::hub

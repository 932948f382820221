// The OpenAI-compatible inference API over the ModelHost: /v1/models, /v1/chat/completions and
// /v1/completions, with SSE streaming. docs/http-api.md documents the shapes and limits.
//
// Thread safety: Handle() is called concurrently from the server's workers.
#pragma once

#include <optional>

#include "hub/http/auth.h"
#include "hub/http/http_util.h"
#include "hub/serve/model_host.h"
#include "store/store.h"

namespace hubnode::hub {

class OpenAiApi {
 public:
  OpenAiApi(store::Store* st, ModelHost* host) : st_(st), host_(host) {}
  // Serves a /v1/ request.
  void Handle(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who);
  // Prometheus lines for the loaded engines (tokens, expert cache).
  // The runtime's metrics, one series per loaded model the caller may read (an anonymous scrape
  // sees public models only: a label would name a private repo).
  std::string Metrics(const std::optional<Principal>& who) const;

 private:
  void Models(const std::optional<Principal>& who, httplib::Response& res);
  void Generate(const httplib::Request& req, httplib::Response& res, const std::optional<Principal>& who, bool chat);

  store::Store* st_;
  ModelHost* host_;
};

}  // namespace hubnode::hub

// The web UI (web/, embedded in the binary): `/` and the UI's pages (`/-/…`, and a repo's page
// at `/{repo}` when a browser asks for HTML) answer the single page, which uses only the public
// HTTP API; `/static/{file}` the assets. Every answer carries a strict Content-Security-Policy
// (scripts, styles, images and requests from this node only; no inline script), so a model card
// that slipped past the renderer's sanitising still could not run or fetch anything.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "hub/http/http_util.h"
#include "hub/http/server.h"

namespace hubnode::hub {

class WebService final : public Service {
 public:
  WebService();
  bool Handles(const httplib::Request& req) const override;
  void Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader* body) override;

 private:
  struct Entry {
    const char* type;
    std::string_view data;
    std::string etag;
  };
  std::map<std::string, Entry, std::less<>> assets_;
};

}  // namespace hubnode::hub

#include "hub/web/web_service.h"

#include <string_view>
#include <vector>

#include "base/hash.h"
#include "hub/web/assets.h"

namespace hubnode::hub {

namespace {

constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// First path segments that are the API's, never a repo page.
bool ApiSegment(std::string_view s) {
  return s == "api" || s == "v1" || s == "metrics" || s == "health" || s == "static" || s == "-" || s == "datasets" ||
         s == "spaces" || s == "models";
}

}  // namespace

WebService::WebService() {
  for (size_t i = 0; i < web::kAssetCount; ++i) {
    const web::Asset& a = web::kAssets[i];
    std::string_view data(reinterpret_cast<const char*>(a.data), a.size);
    assets_[a.name] = Entry{a.content_type, data, "\"" + Sha256Of(data).hex().substr(0, 32) + "\""};
  }
}

bool WebService::Handles(const httplib::Request& req) const {
  if (req.method != "GET" && req.method != "HEAD") return false;
  std::string_view path = req.path;
  if (path == "/" || path.starts_with("/static/") || path.starts_with("/-/")) return true;
  // A repo's page: /{name} or /{ns}/{name}, for a browser (the API answers JSON there otherwise).
  if (req.get_header_value("Accept").find("text/html") == std::string::npos) return false;
  // Also its discussions: /{repo}/discussions and /{repo}/discussions/{num}, as on the Hub.
  std::string_view rest = path.substr(1);
  if (rest.empty() || rest.back() == '/') return false;
  std::vector<std::string_view> segs;
  for (size_t at = 0; segs.size() <= 4;) {
    size_t slash = rest.find('/', at);
    segs.push_back(rest.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at));
    if (slash == std::string_view::npos) break;
    at = slash + 1;
  }
  if (segs.size() > 4 || ApiSegment(segs[0])) return false;
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  if (segs.size() >= 2 && segs.back() == "discussions") segs.pop_back();
  else if (segs.size() >= 3 && digits(segs.back()) && segs[segs.size() - 2] == "discussions") segs.resize(segs.size() - 2);
  return segs.size() <= 2;
}

void WebService::Handle(const httplib::Request& req, httplib::Response& res, const httplib::ContentReader*) {
  res.set_header("Content-Security-Policy", kCsp);
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("X-Frame-Options", "DENY");
  std::string name = "index.html";
  if (req.path.starts_with("/static/")) name = req.path.substr(8);
  auto it = assets_.find(name);
  if (it == assets_.end() || name == "index.html" && req.path.starts_with("/static/")) {
    return SendError(res, 404, "NotFound", "no such file");
  }
  const Entry& e = it->second;
  res.set_header("ETag", e.etag);
  res.set_header("Cache-Control", "no-cache");
  if (req.get_header_value("If-None-Match") == e.etag) {
    res.status = 304;
    return;
  }
  res.set_content(std::string(e.data), e.type);
}

}  // namespace hubnode::hub

#include "hub/http/http_util.h"

#include "base/time_format.h"

#include <cctype>
#include <charconv>
#include <ctime>

namespace hubnode::hub {

void SendError(httplib::Response& res, int http_status, std::string_view error_code, std::string_view message) {
  std::string clean(message.substr(0, 1000));
  for (char& c : clean) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  res.status = http_status;
  if (!error_code.empty()) res.set_header("X-Error-Code", std::string(error_code));
  res.set_header("X-Error-Message", clean);
  res.set_content(json{{"error", clean}}.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

namespace {

std::string CleanHeader(std::string_view text) {
  std::string clean(text.substr(0, 1000));
  for (char& c : clean) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return clean;
}

std::string_view CodeForStatus(int status) {
  switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthenticated";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "LengthRequired";
    case 412: return "PreconditionFailed";
    case 413: return "PayloadTooLarge";
    case 416: return "RangeNotSatisfiable";
    case 422: return "UnprocessableEntity";
    case 429: return "TooManyRequests";
    case 431: return "RequestHeaderFieldsTooLarge";
    case 451: return "UnavailableForLegalReasons";
    case 501: return "NotImplemented";
    case 503: return "ServiceUnavailable";
    case 504: return "GatewayTimeout";
    case 507: return "InsufficientStorage";
    default: return status >= 500 ? "InternalError" : "BadRequest";
  }
}

}  // namespace

void CompleteErrorHeaders(httplib::Response& res) {
  if (res.status < 400) return;
  if (!res.has_header("X-Error-Code")) res.set_header("X-Error-Code", std::string(CodeForStatus(res.status)));
  if (res.has_header("X-Error-Message")) return;
  std::string message;
  if (!res.content_provider_ && !res.body.empty() && res.body.size() <= (1u << 20) && res.body[0] == '{') {
    json body = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object()) {
      auto e = body.find("error");
      if (e != body.end() && e->is_string()) message = e->get<std::string>();
      if (e != body.end() && e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        message = (*e)["message"].get<std::string>();
      }
    }
  }
  if (message.empty()) message = std::string(CodeForStatus(res.status)) + " (HTTP " + std::to_string(res.status) + ")";
  res.set_header("X-Error-Message", CleanHeader(message));
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kFailedPrecondition: return 412;
    case StatusCode::kOutOfRange: return 416;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

void SendStatus(httplib::Response& res, const Status& status) {
  int http = HttpStatusFor(status.code());
  // Internal details (paths, RocksDB messages) stay in the log, not in the response.
  std::string message = http >= 500 ? "internal error" : status.message();
  SendError(res, http, StatusCodeName(status.code()), message);
}

void SendJson(httplib::Response& res, const json& body, int http_status) {
  res.status = http_status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

Result<std::optional<ByteRange>> ParseRange(std::string_view h, uint64_t size) {
  if (h.empty()) return std::optional<ByteRange>();
  auto bad = [&] { return InvalidArgumentError("malformed Range header"); };
  if (h.substr(0, 6) != "bytes=") return bad();
  h.remove_prefix(6);
  if (h.find(',') != std::string_view::npos) return InvalidArgumentError("multiple ranges are not supported");
  size_t dash = h.find('-');
  if (dash == std::string_view::npos) return bad();
  std::string_view a = h.substr(0, dash), b = h.substr(dash + 1);
  auto num = [](std::string_view s, uint64_t* v) {
    if (s.empty() || s.size() > 19) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  uint64_t first = 0, last = 0;
  if (a.empty()) {  // suffix: the last n bytes
    if (!num(b, &last)) return bad();
    if (last == 0 || size == 0) return OutOfRangeError("unsatisfiable range");
    uint64_t n = std::min(last, size);
    return std::optional<ByteRange>(ByteRange{size - n, n});
  }
  if (!num(a, &first)) return bad();
  if (b.empty()) {
    last = size ? size - 1 : 0;
  } else if (!num(b, &last) || last < first) {
    return bad();
  }
  if (first >= size) return OutOfRangeError("unsatisfiable range");
  last = std::min(last, size - 1);
  return std::optional<ByteRange>(ByteRange{first, last - first + 1});
}

bool QueryFlag(const httplib::Request& req, const std::string& name, bool fallback) {
  if (!req.has_param(name.c_str())) return fallback;
  std::string v = req.get_param_value(name.c_str());
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "true" || v == "1" || v.empty()) return true;
  if (v == "false" || v == "0") return false;
  return fallback;
}

std::string IsoTime(int64_t t) { return FormatUtc(t, "%Y-%m-%dT%H:%M:%S.000Z"); }

std::string BaseUrl(const httplib::Request& req, const std::string& public_url) {
  if (!public_url.empty()) return public_url;
  std::string host = req.get_header_value("Host");
  // Only host[:port] characters: a crafted Host header must not inject into our links.
  for (char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == ':' || c == '-' || c == '[' || c == ']')) {
      host.clear();
      break;
    }
  }
  if (host.empty()) host = "127.0.0.1";
  return "http://" + host;
}

void CloseAfter(httplib::Response& res) {
  auto body = std::make_shared<std::string>(std::move(res.body));
  std::string type = res.get_header_value("Content-Type");
  res.body.clear();
  res.headers.erase("Content-Type");
  res.set_header("Connection", "close");
  // A provider that fails once the body is out: httplib then closes instead of reading on.
  res.set_content_provider(body->size(), type.empty() ? "application/json" : type,
                           [body](size_t offset, size_t length, httplib::DataSink& sink) {
                             if (offset < body->size()) sink.write(body->data() + offset, std::min(length, body->size() - offset));
                             return offset + length < body->size();
                           });
}

std::optional<std::string> AmbiguousFraming(const httplib::Request& req) {
  const size_t lengths = req.get_header_value_count("Content-Length");
  const size_t encodings = req.get_header_value_count("Transfer-Encoding");
  for (size_t i = 0; i < lengths; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    uint64_t n = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || r.ec != std::errc() || r.ptr != v.data() + v.size()) return "Content-Length is not a number";
    if (i > 0 && v != req.get_header_value("Content-Length", 0)) return "Content-Length given twice with different values";
  }
  if (encodings > 1) return "Transfer-Encoding given more than once";
  if (encodings == 1) {
    std::string v = req.get_header_value("Transfer-Encoding");
    for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v != "chunked") return "Transfer-Encoding other than chunked";
    if (lengths > 0) return "both Content-Length and Transfer-Encoding";
  }
  return std::nullopt;
}


}  // namespace hubnode::hub

// HTTP helpers for the hub's handlers: JSON errors with X-Error-Code, byte ranges, query flags,
// dates. Only hub/ includes httplib.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::hub {

using json = nlohmann::json;

// Sends a JSON error body {"error": message} with X-Error-Code (when code is non-empty) and
// X-Error-Message, as the Hugging Face clients read them.
void SendError(httplib::Response& res, int http_status, std::string_view error_code, std::string_view message);

// Completes an error answer (status >= 400) prepared by any handler: X-Error-Code (a name for
// the HTTP status when the handler set none) and X-Error-Message (the body's `error`, or its
// `error.message` as OpenAI writes it, else the status text), so that every client can print why.
void CompleteErrorHeaders(httplib::Response& res);

// Maps a Status to an HTTP status and a generic error code (one table for the whole hub).
int HttpStatusFor(StatusCode code);
void SendStatus(httplib::Response& res, const Status& status);

void SendJson(httplib::Response& res, const json& body, int http_status = 200);

// Makes an already prepared response the last on its connection: its body is sent whole, then
// the connection closes. For a request whose body was not read to its end (httplib would read
// the rest as the next request on a kept-alive connection).
void CloseAfter(httplib::Response& res);

// Why a request's body framing is ambiguous, so that a proxy in front could read it differently
// (request smuggling): Content-Length not a number or given twice with different values,
// Transfer-Encoding other than exactly "chunked" or given twice, or both headers. nullopt when
// it is not.
std::optional<std::string> AmbiguousFraming(const httplib::Request& req);

struct ByteRange {
  uint64_t offset;
  uint64_t length;
};

// Parses a Range header for a body of `size` bytes: "bytes=a-b", "bytes=a-", "bytes=-n".
// nullopt for an absent header. OutOfRange when unsatisfiable, InvalidArgument when malformed or
// when it asks for several ranges.
Result<std::optional<ByteRange>> ParseRange(std::string_view header, uint64_t size);

// "true"/"1" (any case) → true; "false"/"0"/absent → fallback.
bool QueryFlag(const httplib::Request& req, const std::string& name, bool fallback);

// "2026-11-29T10:00:00.000Z".
std::string IsoTime(int64_t unix_seconds);

// The scheme://host[:port] the client used, for absolute links (public_url wins when set).
std::string BaseUrl(const httplib::Request& req, const std::string& public_url);

}  // namespace hubnode::hub

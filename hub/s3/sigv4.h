// AWS Signature Version 4 (header form) for S3-compatible object stores: the canonical request,
// the string to sign, the derived signing key and the Authorization header, exactly as AWS's
// published test suite computes them (tests/hub/s3/sigv4_test.cc holds its vectors).
//
// The secret key only ever enters the HMAC chain: no function here returns or formats it, and the
// signing key is never part of an error or log line.
//
// Thread safety: pure functions over values.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hubnode::hub::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never logged
  std::string session_token;      // optional (temporary credentials); signed as x-amz-security-token
};

// One request to sign. `headers` must already hold every header to sign, `host` and `x-amz-date`
// included (names in any case; values are trimmed and inner runs of spaces collapsed).
struct SignedRequestSpec {
  std::string method;                                        // GET, PUT, ...
  std::string path;                                          // raw path, "/bucket/key" (not encoded)
  std::vector<std::pair<std::string, std::string>> query;    // raw (not encoded) names and values
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string payload_sha256;  // lowercase hex of the body's SHA-256, or "UNSIGNED-PAYLOAD"
};

// RFC 3986 percent-encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - . _ ~ as %XX
// (uppercase hex); '/' kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);

// The canonical query string: names and values encoded, sorted by name then value, joined by '&'.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

// The canonical request (S3's rules: the path encoded once, never normalised) and, in
// *signed_headers, the ';'-joined lowercase header names.
std::string CanonicalRequest(const SignedRequestSpec& request, std::string* signed_headers);

// The string to sign for `canonical_request` at `amz_date` (YYYYMMDDTHHMMSSZ) in `scope`
// (date/region/service/aws4_request).
std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

// The hex signature of `string_to_sign` with the key derived from `secret` for date (YYYYMMDD),
// region and service.
std::string Signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign);

// The Authorization header's value for `request` signed at `amz_date` (which must equal the
// request's x-amz-date header) for `region` and `service` ("s3").
std::string Authorization(const Credentials& credentials, std::string_view region, std::string_view service,
                          std::string_view amz_date, const SignedRequestSpec& request);

// The x-amz-date form (YYYYMMDDTHHMMSSZ) of a unix time.
std::string AmzDate(int64_t unix_seconds);

// Lowercase hex SHA-256 of `data` (the payload hash).
std::string Sha256Hex(std::string_view data);

}  // namespace hubnode::hub::s3

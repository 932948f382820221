#include "hub/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "base/hash.h"
#include "base/hex.h"

namespace hubnode::hub::s3 {
namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims a header value and collapses each inner run of spaces to one (SigV4's Trimall).
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) { return UrlEncode(s, keep_slash); }

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string CanonicalRequest(const SignedRequestSpec& request, std::string* signed_headers) {
  // Duplicate names join their values with ',' in the order given (the suite's
  // get-header-key-duplicate); names sort as lowercase bytes.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string& slot = headers[Lower(TrimAll(name))];
    if (!slot.empty()) slot.push_back(',');
    slot += TrimAll(value);
  }
  std::string out = request.method + "\n" + UriEncode(request.path.empty() ? "/" : request.path, true) + "\n" +
                    CanonicalQuery(request.query) + "\n";
  std::string names;
  for (const auto& [name, value] : headers) {
    out += name + ":" + value + "\n";
    if (!names.empty()) names.push_back(';');
    names += name;
  }
  out += "\n" + names + "\n" + request.payload_sha256;
  if (signed_headers) *signed_headers = names;
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + std::string(scope) + "\n" + Sha256Hex(canonical_request);
}

std::string Signature(std::string_view secret, std::string_view date, std::string_view region,
                      std::string_view service, std::string_view string_to_sign) {
  std::string key = Hmac("AWS4" + std::string(secret), date);
  key = Hmac(key, region);
  key = Hmac(key, service);
  key = Hmac(key, "aws4_request");
  return HexEncode(Hmac(key, string_to_sign));
}

std::string Authorization(const Credentials& credentials, std::string_view region, std::string_view service,
                          std::string_view amz_date, const SignedRequestSpec& request) {
  std::string date(amz_date.substr(0, 8));
  std::string scope = date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  std::string signed_headers;
  std::string creq = CanonicalRequest(request, &signed_headers);
  return "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
         ", SignedHeaders=" + signed_headers + ", Signature=" +
         Signature(credentials.secret_access_key, date, region, service, StringToSign(amz_date, scope, creq));
}

std::string AmzDate(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string Sha256Hex(std::string_view data) { return Sha256Of(data).hex(); }

}  // namespace hubnode::hub::s3

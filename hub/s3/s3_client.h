// A client for one bucket of an S3-compatible object store (AWS S3, Ceph RGW, MinIO, R2 ...) over
// libcurl, signing every request with AWS Signature Version 4 (sigv4.h).
//
// Retries: a request that fails in transport, or is answered 500, 502, 503, 504 or 429 (SlowDown),
// is signed and sent again after an exponential backoff with jitter, up to `max_attempts` in all.
// Connections: idle curl handles (each keeping its connection alive) are kept in a pool of
// `max_idle_handles` and reused, so steady traffic does not reconnect.
// Limits: an answer's body may not exceed the request's own limit (a ranged GET: the range's
// length; listings and errors: 16 MiB), and a transfer may not take longer than `timeout_s` nor
// run slower than 1 KiB/s for `low_speed_time_s`.
//
// Errors: NotFound (404: no such key, bucket or upload), PermissionDenied (403: bad keys or
// policy; the answer's S3 error code is named, the secret never), Unavailable (transport failures,
// 5xx and 429 after every retry: the store is down or overloaded), DeadlineExceeded folded into
// Unavailable, OutOfRange (416), InvalidArgument (other 4xx), ResourceExhausted (an answer over its
// limit), DataLoss (a ranged GET answered with other bytes than asked for).
//
// Thread safety: every method may be called concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "hub/s3/sigv4.h"

namespace hubnode::hub::s3 {

struct S3Options {
  // Endpoint URL, http(s)://host[:port]. Default: AWS's regional endpoint for `region`.
  std::string endpoint;
  // Bucket name. Required.
  std::string bucket;
  // Signing region. Default: us-east-1.
  std::string region = "us-east-1";
  // Path-style addressing (http://host/bucket/key), what self-hosted stores (Ceph RGW, MinIO) need;
  // false = virtual-hosted (http://bucket.host/key). Default: true.
  bool path_style = true;
  // Keys. Required (anonymous access is not supported).
  Credentials credentials;
  // Seconds to connect. Default: 10.
  long connect_timeout_s = 10;
  // Longest any one attempt may take, in seconds. Default: 300.
  long timeout_s = 300;
  // Abort an attempt slower than 1 KiB/s for this many seconds. Default: 30.
  long low_speed_time_s = 30;
  // Attempts per request (1 = no retry). Default: 4.
  int max_attempts = 4;
  // First backoff in milliseconds, doubled per retry, with up to 50% jitter. Default: 200.
  int backoff_ms = 200;
  // A retryable answer's Retry-After (seconds or an HTTP date) replaces the backoff when it is
  // longer, up to this many seconds; a longer one in seconds ends the retries at once
  // (Unavailable, naming the wait asked for), a date further off is waited for this long (it may
  // be a clock's error). Default: 10.
  int max_retry_after_s = 10;
  // Idle curl handles (connections) kept for reuse. Default: 32.
  size_t max_idle_handles = 32;
  // Unix time now, for x-amz-date. Default: the system clock.
  std::function<int64_t()> clock;
};

// The S3 location an `s3://bucket/prefix` URL names. InvalidArgument for anything else.
struct S3Url {
  std::string bucket;
  std::string prefix;  // "" or ends with '/'
};
Result<S3Url> ParseS3Url(std::string_view url);

// Options from the usual environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3), AWS_REGION (or AWS_DEFAULT_REGION), and
// AWS_S3_PATH_STYLE (0/false for virtual-hosted; path-style by default when an endpoint is given,
// virtual-hosted on AWS itself). InvalidArgument when the keys are missing.
Result<S3Options> S3OptionsFromEnv(const std::string& bucket);

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::string next_token;  // "" when this was the last page
};

class S3Client {
 public:
  static Result<std::unique_ptr<S3Client>> Create(S3Options options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Options& options() const;

  // Creates the bucket; OK when it exists already and is ours.
  Status CreateBucket();
  // Stores `body` as `key` in one PUT (signed payload).
  Status Put(std::string_view key, std::string_view body);
  // The whole object (at most `max_bytes`, else ResourceExhausted).
  Result<std::string> Get(std::string_view key, uint64_t max_bytes);
  // Bytes [offset, offset+length) of the object; exactly `length` bytes or an error (OutOfRange
  // when the object is shorter).
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length);
  // Size and ETag; NotFound when absent.
  Result<ObjectInfo> Head(std::string_view key);
  // Deletes `key`; OK when it was already absent.
  Status Delete(std::string_view key);
  // One page (at most `max_keys`) of the keys under `prefix`, in key order, from `token` (or,
  // for the first page, from the first key after `start_after`).
  Result<ListPage> List(std::string_view prefix, std::string_view token, int max_keys = 1000,
                        std::string_view start_after = {});
  // Every key under `prefix` (that sorts after `start_after`, when given).
  Result<std::vector<ObjectInfo>> ListAll(std::string_view prefix, std::string_view start_after = {});

  // Multipart upload: Begin, then UploadPart for parts 1..N (each but the last at least 5 MiB),
  // then Complete; Abort frees the parts of one given up.
  Result<std::string> BeginMultipart(std::string_view key);
  Result<std::string> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                                 std::string_view body);  // the part's ETag
  Status CompleteMultipart(std::string_view key, std::string_view upload_id, const std::vector<std::string>& etags);
  Status AbortMultipart(std::string_view key, std::string_view upload_id);
  // Stores `body` as `key`: one PUT up to `part_size`, else a multipart upload of `part_size`
  // parts (aborted on failure). REQUIRES: part_size >= 5 MiB.
  Status PutLarge(std::string_view key, std::string_view body, uint64_t part_size = uint64_t{16} << 20);

  // Requests sent (attempts, retries included) and connections opened, for tests and stats.
  uint64_t attempts() const;
  uint64_t connections_opened() const;

 private:
  struct Rep;
  explicit S3Client(std::unique_ptr<Rep> rep);
  std::unique_ptr<Rep> rep_;
};

}  // namespace hubnode::hub::s3

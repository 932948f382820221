// hub/s3's client against a real S3-compatible server: Ceph's radosgw started on 127.0.0.1 by
// the test (tests/tools/ceph/ceph-up.sh).
#include "hub/s3/s3_client.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "tests/hub/s3/radosgw.h"

namespace hubnode::hub::s3 {
namespace {

using hubnode::testing::Radosgw;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new Radosgw(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  void SetUp() override {
    if (!gw_->available()) GTEST_SKIP() << gw_->why();
    client_ = Make(gw_->secret_key());
    ASSERT_TRUE(client_->CreateBucket().ok());
  }
  std::unique_ptr<S3Client> Make(const std::string& secret, const std::string& endpoint = "") {
    S3Options o;
    o.endpoint = endpoint.empty() ? gw_->endpoint() : endpoint;
    o.bucket = "hubnode-test";
    o.credentials = {gw_->access_key(), secret, ""};
    o.backoff_ms = 20;
    auto c = S3Client::Create(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
  static Radosgw* gw_;
  std::unique_ptr<S3Client> client_;
};
Radosgw* S3ClientTest::gw_ = nullptr;

TEST_F(S3ClientTest, PutGetRangeHeadDelete) {
  std::string body = RandomBytes(3 << 20, 1);
  ASSERT_TRUE(client_->Put("dir/a b+c", body).ok());
  auto got = client_->Get("dir/a b+c", 8 << 20);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, body);
  auto range = client_->GetRange("dir/a b+c", 1000001, 4096);
  ASSERT_TRUE(range.ok()) << range.status().ToString();
  EXPECT_EQ(*range, body.substr(1000001, 4096));
  auto head = client_->Head("dir/a b+c");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, body.size());
  EXPECT_FALSE(head->etag.empty());
  ASSERT_TRUE(client_->Delete("dir/a b+c").ok());
  EXPECT_EQ(client_->Head("dir/a b+c").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Get("dir/a b+c", 100).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(client_->Delete("dir/a b+c").ok());  // absent already
}

TEST_F(S3ClientTest, AnswersAreBounded) {
  std::string body = RandomBytes(2 << 20, 2);
  ASSERT_TRUE(client_->Put("big", body).ok());
  EXPECT_EQ(client_->Get("big", 1 << 20).status().code(), StatusCode::kResourceExhausted);
  // A range past the end is refused, never answered with other bytes.
  auto past = client_->GetRange("big", body.size() + 10, 10);
  EXPECT_FALSE(past.ok());
  auto tail = client_->GetRange("big", body.size() - 5, 10);
  EXPECT_FALSE(tail.ok()) << "a short range must not pass as the bytes asked for";
}

TEST_F(S3ClientTest, MultipartUploadIsByteExact) {
  std::string body = RandomBytes(13 << 20, 3);
  ASSERT_TRUE(client_->PutLarge("packs/mp", body, 5 << 20).ok());
  auto head = client_->Head("packs/mp");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, body.size());
  EXPECT_NE(head->etag.find("-3"), std::string::npos) << head->etag;  // md5-of-md5s-3: three parts
  auto got = client_->Get("packs/mp", 16 << 20);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == body);
  auto range = client_->GetRange("packs/mp", (5 << 20) - 100, 200);  // across a part boundary
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(*range, body.substr((5 << 20) - 100, 200));
  // An aborted upload leaves nothing.
  auto id = client_->BeginMultipart("packs/aborted");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(client_->UploadPart("packs/aborted", *id, 1, RandomBytes(5 << 20, 4)).ok());
  ASSERT_TRUE(client_->AbortMultipart("packs/aborted", *id).ok());
  EXPECT_EQ(client_->Head("packs/aborted").status().code(), StatusCode::kNotFound);
}

TEST_F(S3ClientTest, ListPagesThroughEveryKey) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client_->Put("list/k" + std::to_string(i), std::string(i + 1, 'x')).ok());
  ASSERT_TRUE(client_->Put("other/k", "y").ok());
  auto page = client_->List("list/", "", 2);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->objects.size(), 2u);
  EXPECT_FALSE(page->next_token.empty());
  auto all = client_->ListAll("list/");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*all)[i].key, "list/k" + std::to_string(i));
    EXPECT_EQ((*all)[i].size, static_cast<uint64_t>(i + 1));
  }
}

TEST_F(S3ClientTest, WrongSecretIsRefusedWithoutSayingIt) {
  std::string wrong = gw_->secret_key();
  wrong.back() = wrong.back() == 'x' ? 'y' : 'x';
  auto bad = Make(wrong);
  auto r = bad->Get("anything", 100);
  ASSERT_EQ(r.status().code(), StatusCode::kPermissionDenied) << r.status().ToString();
  EXPECT_NE(r.status().message().find("SignatureDoesNotMatch"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find(wrong), std::string::npos);
  EXPECT_EQ(r.status().message().find(gw_->secret_key()), std::string::npos);
  EXPECT_EQ(bad->attempts(), 1u) << "a refusal is not retried";
}

TEST_F(S3ClientTest, ConnectionsAreReusedAcrossThreads) {
  ASSERT_TRUE(client_->Put("reuse", RandomBytes(64 << 10, 5)).ok());
  uint64_t before = client_->connections_opened();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (!client_->GetRange("reuse", i * 100, 100).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // 200 requests over at most 8 connections at once, each kept for the next request.
  EXPECT_LE(client_->connections_opened() - before, 9u);
}

TEST_F(S3ClientTest, EndpointDownIsUnavailableAfterRetries) {
  // A port nothing listens on (bound, never listened to).
  auto down = Make(gw_->secret_key(), "http://127.0.0.1:1");
  auto t0 = std::chrono::steady_clock::now();
  auto r = down->GetRange("k", 0, 10);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(down->attempts(), 4u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// A scripted HTTP server on 127.0.0.1: answers each request with the next scripted answer (the
// last one repeats), for what radosgw will not do on demand: throttling, short or oversized bodies.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<std::string> answers) : answers_(std::move(answers)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

  static std::string Answer(int status, const std::string& body, const std::string& extra = "") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" +
           extra + "\r\n" + body;
  }

 private:
  void Loop() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      while (true) {  // requests on this connection until the client closes it
        size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        if (end == std::string::npos) break;
        in.erase(0, end + 4);  // the tests send no bodies
        size_t k = std::min<size_t>(requests_++, answers_.size() - 1);
        const std::string& a = answers_[k];
        if (write(c, a.data(), a.size()) < 0) break;
      }
      close(c);
    }
  }

  std::vector<std::string> answers_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

std::unique_ptr<S3Client> ClientOf(const std::string& url) {
  S3Options o;
  o.endpoint = url;
  o.bucket = "b";
  o.credentials = {"AKIDEXAMPLE", "a-secret-that-must-not-show", ""};
  o.backoff_ms = 10;
  auto c = S3Client::Create(o);
  EXPECT_TRUE(c.ok());
  return std::move(*c);
}

const char* kSlowDown = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

TEST(S3ClientRetries, ThrottlingIsRetriedWithBackoff) {
  ScriptedServer server({ScriptedServer::Answer(503, kSlowDown), ScriptedServer::Answer(503, kSlowDown),
                         ScriptedServer::Answer(200, "hello")});
  auto c = ClientOf(server.url());
  auto got = c->Get("k", 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "hello");
  EXPECT_EQ(c->attempts(), 3u);
}

TEST(S3ClientRetries, ThrottledToTheEndIsUnavailableNamingTheCode) {
  ScriptedServer server({ScriptedServer::Answer(503, kSlowDown)});
  auto c = ClientOf(server.url());
  auto got = c->Get("k", 100);
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("SlowDown"), std::string::npos) << got.status().message();
  EXPECT_EQ(got.status().message().find("a-secret-that-must-not-show"), std::string::npos);
  EXPECT_EQ(c->attempts(), 4u);
  EXPECT_EQ(server.requests(), 4);
}

TEST(S3ClientRetries, RetryAfterReplacesAShorterBackoff) {
  ScriptedServer server({ScriptedServer::Answer(503, kSlowDown, "Retry-After: 1\r\n"), ScriptedServer::Answer(200, "hello")});
  auto c = ClientOf(server.url());  // backoff 10 ms
  const auto t0 = std::chrono::steady_clock::now();
  auto got = c->Get("k", 100);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(c->attempts(), 2u);
  EXPECT_GE(waited, std::chrono::milliseconds(1000));  // a lower bound: the sleep the store asked for
}

TEST(S3ClientRetries, ARetryAfterPastTheLimitEndsTheRetries) {
  // Over max_retry_after_s (10) in seconds: one attempt, and the error names the wait.
  ScriptedServer server({ScriptedServer::Answer(503, kSlowDown, "Retry-After: 120\r\n"), ScriptedServer::Answer(200, "hello")});
  auto c = ClientOf(server.url());
  auto got = c->Get("k", 100);
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("retry after 120 s"), std::string::npos) << got.status().message();
  EXPECT_EQ(c->attempts(), 1u);
}

TEST(S3ClientRetries, ARetryAfterDateIsWaitedForUpToTheLimit) {
  // A date an hour ahead (or a clock an hour behind): waited for max_retry_after_s, then retried.
  char date[64];
  std::time_t later = std::time(nullptr) + 3600;
  std::tm tm{};
  gmtime_r(&later, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  ScriptedServer server({ScriptedServer::Answer(503, kSlowDown, "Retry-After: " + std::string(date) + "\r\n"),
                         ScriptedServer::Answer(200, "hello")});
  S3Options o;
  o.endpoint = server.url();
  o.bucket = "b";
  o.credentials = {"AKIDEXAMPLE", "a-secret-that-must-not-show", ""};
  o.backoff_ms = 10;
  o.max_retry_after_s = 1;
  auto created = S3Client::Create(o);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto& c = *created;
  const auto t0 = std::chrono::steady_clock::now();
  auto got = c->Get("k", 100);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(c->attempts(), 2u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1000));
}

TEST(S3ClientRetries, HostileAnswersAreRefused) {
  {
    // A range answered with fewer bytes than asked.
    ScriptedServer server({ScriptedServer::Answer(206, "abc")});
    EXPECT_EQ(ClientOf(server.url())->GetRange("k", 10, 5).status().code(), StatusCode::kDataLoss);
  }
  {
    // A range answered with the whole (larger) object: never buffered past what was asked.
    ScriptedServer server({ScriptedServer::Answer(200, std::string(3 << 20, 'x'))});
    EXPECT_FALSE(ClientOf(server.url())->GetRange("k", 10, 5).ok());
  }
  {
    // A listing that says it is truncated but gives no token.
    ScriptedServer server({ScriptedServer::Answer(200, "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")});
    EXPECT_EQ(ClientOf(server.url())->List("", "").status().code(), StatusCode::kDataLoss);
  }
  {
    // A 404 is NotFound at once, not retried.
    ScriptedServer server({ScriptedServer::Answer(404, "<Error><Code>NoSuchKey</Code></Error>")});
    auto c = ClientOf(server.url());
    EXPECT_EQ(c->Get("k", 10).status().code(), StatusCode::kNotFound);
    EXPECT_EQ(c->attempts(), 1u);
  }
}

TEST(S3Url, Parses) {
  auto u = ParseS3Url("s3://my-bucket/some/prefix");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->bucket, "my-bucket");
  EXPECT_EQ(u->prefix, "some/prefix/");
  auto bare = ParseS3Url("s3://bucket");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->prefix, "");
  EXPECT_FALSE(ParseS3Url("http://bucket/x").ok());
  EXPECT_FALSE(ParseS3Url("s3://UPPER/x").ok());
  EXPECT_FALSE(ParseS3Url("s3://ab").ok());
  EXPECT_FALSE(ParseS3Url("s3://bucket/a/../b").ok());
}

}  // namespace
}  // namespace hubnode::hub::s3

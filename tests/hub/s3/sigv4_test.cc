// hub/s3/sigv4 against AWS's published vectors: the Signature Version 4 test suite (2015-08-30,
// service "service", AKIDEXAMPLE) and the worked examples of the Amazon S3 API reference
// ("Signature Calculations for the Authorization Header", 2013-05-24, examplebucket).
#include "hub/s3/sigv4.h"

#include <gtest/gtest.h>

namespace hubnode::hub::s3 {
namespace {

const Credentials kSuite{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const char* kSuiteDate = "20150830T123600Z";
const char* kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SuiteCase {
  const char* name;
  const char* method;
  const char* path;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> extra_headers;
  std::string body;
  const char* signed_headers;
  const char* signature;
};

class SuiteVectors : public ::testing::TestWithParam<SuiteCase> {};

TEST_P(SuiteVectors, SignsAsAwsDoes) {
  const SuiteCase& c = GetParam();
  SignedRequestSpec r;
  r.method = c.method;
  r.path = c.path;
  r.query = c.query;
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kSuiteDate}};
  for (const auto& h : c.extra_headers) r.headers.push_back(h);
  r.payload_sha256 = Sha256Hex(c.body);
  std::string want = std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ") +
                     "SignedHeaders=" + c.signed_headers + ", Signature=" + c.signature;
  EXPECT_EQ(Authorization(kSuite, "us-east-1", "service", kSuiteDate, r), want) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    AwsSigV4TestSuite, SuiteVectors,
    ::testing::Values(
        SuiteCase{"get-vanilla", "GET", "/", {}, {}, "", "host;x-amz-date",
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        SuiteCase{"get-vanilla-query-order-key-case", "GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}}, {}, "",
                  "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
        SuiteCase{"get-vanilla-query-unreserved", "GET", "/",
                  {{"-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}},
                  {}, "", "host;x-amz-date", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
        SuiteCase{"get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}, {},
                  "", "host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
        SuiteCase{"get-utf8", "GET", "/\xE1\x88\xB4", {}, {}, "", "host;x-amz-date",
                  "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
        SuiteCase{"get-vanilla-utf8-query", "GET", "/", {{"\xE1\x88\xB4", "bar"}}, {}, "", "host;x-amz-date",
                  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
        SuiteCase{"get-header-value-trim", "GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
                  "", "host;my-header1;my-header2;x-amz-date",
                  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
        SuiteCase{"post-vanilla", "POST", "/", {}, {}, "", "host;x-amz-date",
                  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        SuiteCase{"post-header-key-sort", "POST", "/", {}, {{"My-Header1", "value1"}}, "", "host;my-header1;x-amz-date",
                  "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
        SuiteCase{"post-x-www-form-urlencoded", "POST", "/", {}, {{"Content-Type", "application/x-www-form-urlencoded"}},
                  "Param1=value1", "content-type;host;x-amz-date",
                  "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
        SuiteCase{"post-sts-header-before", "POST", "/", {},
                  {{"X-Amz-Security-Token",
                    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYR"
                    "qTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75Y"
                    "U9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KS"
                    "YvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="}},
                  "", "host;x-amz-date;x-amz-security-token",
                  "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"}),
    [](const ::testing::TestParamInfo<SuiteCase>& info) {
      std::string n = info.param.name;
      for (char& c : n) {
        if (c == '-') c = '_';
      }
      return n;
    });

// The suite's intermediate files for post-x-www-form-urlencoded: the canonical request (.creq)
// and the string to sign (.sts), so a wrong signature says which step went wrong.
TEST(SigV4, CanonicalRequestAndStringToSignOfTheSuite) {
  SignedRequestSpec r{"POST", "/", {},
                      {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Host", "example.amazonaws.com"},
                       {"X-Amz-Date", kSuiteDate}},
                      Sha256Hex("Param1=value1")};
  std::string names;
  std::string creq = CanonicalRequest(r, &names);
  EXPECT_EQ(creq,
            "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
            "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
  EXPECT_EQ(names, "content-type;host;x-amz-date");
  EXPECT_EQ(StringToSign(kSuiteDate, "20150830/us-east-1/service/aws4_request", creq),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281");
}

// The S3 API reference's examples (service "s3", examplebucket, 2013-05-24).
const Credentials kS3Doc{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
const char* kS3Date = "20130524T000000Z";

std::string S3DocSignature(SignedRequestSpec r) {
  std::string auth = Authorization(kS3Doc, "us-east-1", "s3", kS3Date, r);
  return auth.substr(auth.rfind('=') + 1);
}

TEST(SigV4, S3GetObjectWithRange) {
  SignedRequestSpec r{"GET", "/test.txt", {},
                      {{"Host", "examplebucket.s3.amazonaws.com"},
                       {"Range", "bytes=0-9"},
                       {"x-amz-content-sha256", kEmpty},
                       {"x-amz-date", kS3Date}},
                      kEmpty};
  std::string names;
  EXPECT_EQ(Sha256Hex(CanonicalRequest(r, &names)), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(Authorization(kS3Doc, "us-east-1", "s3", kS3Date, r),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, S3PutObjectEncodesTheKey) {
  std::string body = "Welcome to Amazon S3.";
  ASSERT_EQ(Sha256Hex(body), "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SignedRequestSpec r{"PUT", "/test$file.text", {},
                      {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                       {"Host", "examplebucket.s3.amazonaws.com"},
                       {"x-amz-date", kS3Date},
                       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                       {"x-amz-content-sha256", Sha256Hex(body)}},
                      Sha256Hex(body)};
  EXPECT_EQ(S3DocSignature(r), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, S3BucketQueries) {
  SignedRequestSpec r{"GET", "/", {{"lifecycle", ""}},
                      {{"Host", "examplebucket.s3.amazonaws.com"}, {"x-amz-content-sha256", kEmpty}, {"x-amz-date", kS3Date}},
                      kEmpty};
  EXPECT_EQ(S3DocSignature(r), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  // The list example, its parameters given out of order.
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};
  EXPECT_EQ(S3DocSignature(r), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, EncodingRules) {
  EXPECT_EQ(UriEncode("a b+c/d~e", true), "a%20b%2Bc/d~e");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(CanonicalQuery({{"b", "2"}, {"a", "x y"}, {"a", "1"}}), "a=1&a=x%20y&b=2");
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
}

TEST(SigV4, TheSecretNeverAppearsInTheHeader) {
  SignedRequestSpec r{"GET", "/", {}, {{"Host", "h"}, {"x-amz-date", kSuiteDate}}, kEmpty};
  std::string auth = Authorization(kSuite, "us-east-1", "s3", kSuiteDate, r);
  EXPECT_EQ(auth.find(kSuite.secret_access_key), std::string::npos);
  Credentials other = kSuite;
  other.secret_access_key[0] = 'X';
  EXPECT_NE(Authorization(other, "us-east-1", "s3", kSuiteDate, r), auth);
}

}  // namespace
}  // namespace hubnode::hub::s3

#include <atomic>
#include <thread>
#include <vector>

#include "base/base.h"
#include "tests/testutil/testutil.h"

namespace hubnode {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status Check(int x) {
  RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(StatusTest, ResultAndMacros) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().ToString(), "InvalidArgument: odd");
  EXPECT_TRUE(Check(4).ok());
  EXPECT_EQ(Check(3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NotFoundError("x").WithContext("repo").message(), "repo: x");
  EXPECT_EQ(r.value_or(7), 7);
}

TEST(HashTest, KnownVectors) {
  EXPECT_EQ(Sha256Of("abc").hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Of("").hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha1 s;
  s.Update("ab");
  s.Update("c");
  EXPECT_EQ(s.Finish().hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
  // Streaming in pieces equals one shot.
  Sha256 h;
  std::string data(100000, 'x');
  for (size_t i = 0; i < data.size(); i += 777) h.Update(std::string_view(data).substr(i, 777));
  EXPECT_EQ(h.Finish(), Sha256Of(data));
}

TEST(HexTest, RoundTripAndErrors) {
  auto d = Sha256Digest::FromHex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256Of("abc"));
  EXPECT_FALSE(Sha256Digest::FromHex("ba78").ok());
  EXPECT_FALSE(GitOid::FromHex(std::string(40, 'g')).ok());
  EXPECT_TRUE(IsLowerHex("0af9"));
  EXPECT_FALSE(IsLowerHex("0AF9"));
  EXPECT_FALSE(IsLowerHex(""));
}

TEST(BytesTest, ReaderRejectsTruncation) {
  std::string s;
  PutFixed32(&s, 0xdeadbeef);
  PutVarint64(&s, 300);
  PutLengthPrefixed(&s, "hello");
  ByteReader r(s, "test");
  EXPECT_EQ(*r.Fixed32(), 0xdeadbeefu);
  EXPECT_EQ(*r.Varint64(), 300u);
  EXPECT_EQ(*r.LengthPrefixed(), "hello");
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.U8().status().code(), StatusCode::kDataLoss);

  std::string bad;
  PutVarint64(&bad, 1000);  // claims 1000 bytes follow
  bad += "abc";
  ByteReader r2(bad, "test");
  EXPECT_EQ(r2.LengthPrefixed().status().code(), StatusCode::kDataLoss);
  std::string overlong(11, '\xff');
  ByteReader r3(overlong, "test");
  EXPECT_EQ(r3.Varint64().status().code(), StatusCode::kDataLoss);
}

TEST(ThreadPoolTest, RunsEveryTaskWithBoundedQueue) {
  std::atomic<int> n{0};
  {
    ThreadPool pool(2, 3);
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { n.fetch_add(1); });
    pool.Wait();
    EXPECT_EQ(n.load(), 1000);
    for (int i = 0; i < 10; ++i) pool.Submit([&] { n.fetch_add(1); });
  }  // the destructor drains
  EXPECT_EQ(n.load(), 1010);
}

TEST(FileTest, ReadAndWriteAtomic) {
  testing::TempDir dir;
  std::string p = dir / "f";
  ASSERT_TRUE(WriteFileAtomic(p, "content").ok());
  EXPECT_EQ(*ReadFileToString(p, 100), "content");
  EXPECT_EQ(ReadFileToString(p, 3).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ReadFileToString(dir / "missing", 3).status().code(), StatusCode::kNotFound);
  auto f = ReadFile::Open(p);
  ASSERT_TRUE(f.ok());
  char buf[4];
  EXPECT_EQ(f->ReadAt(5, 4, buf).code(), StatusCode::kDataLoss);
}

// Regression: the temporary file was named by pid alone, so two threads writing one file shared it
// and one of them failed (a multipart upload's parallel parts did).
TEST(FileTest, ThreadsWriteOneFileAtomically) {
  testing::TempDir dir;
  const std::string p = dir / "shared";
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (!WriteFileAtomic(p, std::string(100, static_cast<char>('a' + t))).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto text = ReadFileToString(p, 1000);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, std::string(100, (*text)[0]));  // one writer's content, whole
}

}  // namespace
}  // namespace hubnode

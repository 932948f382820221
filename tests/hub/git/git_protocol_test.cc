// hub/git: pkt-lines, deltas and packs as a hostile client would send them.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "hub/git/pack.h"
#include "hub/git/pkt_line.h"
#include "store/git_objects.h"

namespace hubnode::hub::git {
namespace {

using store::GitObjectType;

TEST(PktLine, RoundTripsAndSpecialLines) {
  std::string in = Pkt("want abc\n") + Delim() + Pkt("done\n") + Flush() + "PACKrest";
  PktReader r(in);
  auto a = r.Next();
  ASSERT_TRUE(a.ok() && *a);
  EXPECT_EQ((*a)->text(), "want abc");
  auto b = r.Next();
  ASSERT_TRUE(b.ok() && *b);
  EXPECT_EQ((*b)->kind, PktLine::Kind::kDelim);
  auto c = r.Next();
  ASSERT_TRUE(c.ok() && *c);
  EXPECT_EQ((*c)->text(), "done");
  auto d = r.Next();
  ASSERT_TRUE(d.ok() && *d);
  EXPECT_EQ((*d)->kind, PktLine::Kind::kFlush);
  EXPECT_EQ(r.rest(), "PACKrest");
}

TEST(PktLine, RefusesMalformedLengths) {
  for (std::string bad : {std::string("00"), std::string("zzzz"), std::string("0003"), std::string("0010short"),
                          std::string("ffffxxxx")}) {
    PktReader r(bad);
    EXPECT_FALSE(r.Next().ok()) << bad;
  }
  PktReader empty("");
  auto e = empty.Next();
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(*e);
}

TEST(PktLine, SideBandSplitsLargeData) {
  std::string data(200000, 'x');
  std::string out = SideBand(1, data);
  PktReader r(out);
  std::string back;
  while (true) {
    auto l = r.Next();
    ASSERT_TRUE(l.ok());
    if (!*l) break;
    ASSERT_EQ((*l)->data[0], '\1');
    back.append((*l)->data.substr(1));
  }
  EXPECT_EQ(back, data);
}

std::string Varint(uint64_t v) {
  std::string s;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    if (v) b |= 0x80;
    s.push_back(static_cast<char>(b));
  } while (v);
  return s;
}

TEST(Delta, CopiesAndInserts) {
  std::string base = "hello, world";
  // copy "hello" (offset 0, size 5), insert " there", copy ", world" (offset 5, size 7)
  std::string d = Varint(base.size()) + Varint(18);
  d += static_cast<char>(0x80 | 0x10);
  d += static_cast<char>(5);
  d += static_cast<char>(6);
  d += " there";
  d += static_cast<char>(0x80 | 0x01 | 0x10);
  d += static_cast<char>(5);
  d += static_cast<char>(7);
  auto out = ApplyDelta(base, d, 1 << 20);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "hello there, world");
}

TEST(Delta, RefusesHostileDeltas) {
  std::string base = "abc";
  // Copy past the end of the base.
  std::string d = Varint(3) + Varint(10) + std::string(1, static_cast<char>(0x80 | 0x01 | 0x10)) + "\x02" + "\x0a";
  EXPECT_FALSE(ApplyDelta(base, d, 1 << 20).ok());
  // Wrong base size.
  EXPECT_FALSE(ApplyDelta(base, Varint(4) + Varint(0), 1 << 20).ok());
  // The reserved opcode.
  EXPECT_FALSE(ApplyDelta(base, Varint(3) + Varint(1) + std::string(1, '\0'), 1 << 20).ok());
  // A result larger than the limit.
  EXPECT_EQ(ApplyDelta(base, Varint(3) + Varint(1 << 30), 1 << 20).status().code(), StatusCode::kResourceExhausted);
  // Declared size not met.
  EXPECT_FALSE(ApplyDelta(base, Varint(3) + Varint(5) + "\x02xy", 1 << 20).ok());
}

TEST(Delta, MadeDeltasApply) {
  std::string base(200000, 'a');
  for (size_t i = 0; i < base.size(); i += 7) base[i] = static_cast<char>('a' + i % 26);
  for (const auto& [b, t] : std::vector<std::pair<std::string, std::string>>{
           {base, base + "appended line\n"},
           {base, "new first line\n" + base},
           {base, base.substr(0, 1000) + "middle" + base.substr(5000)},
           {base, ""},
           {"", "all new"},
           {"same", "same"},
           {base, std::string(300, 'z')}}) {
    std::string d = MakeDelta(b, t);
    auto out = ApplyDelta(b, d, 1 << 30);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, t);
  }
  EXPECT_LT(MakeDelta(base, base + "x").size(), 32u);
}

class PackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("git_pack_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& bytes) {
    std::string path = (dir_ / "p.pack").string();
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
    return path;
  }
  Result<PackSummary> Read(const std::string& bytes, std::map<GitOid, std::string>* got, PackLimits limits = {}) {
    PackCallbacks cb;
    cb.store_object = [got](const GitOid& oid, GitObjectType, std::string_view body) {
      (*got)[oid] = std::string(body);
      return OkStatus();
    };
    cb.load_base = [got](const GitOid& oid) -> Result<std::pair<GitObjectType, std::string>> {
      auto it = got->find(oid);
      if (it == got->end()) return NotFoundError("no base");
      return std::make_pair(GitObjectType::kBlob, it->second);
    };
    return ReadPackFile(Write(bytes), limits, cb);
  }
  std::filesystem::path dir_;
};

std::string BuildPack(const std::vector<std::pair<GitObjectType, std::string>>& objects) {
  std::string out;
  PackWriter w(static_cast<uint32_t>(objects.size()), [&](std::string_view d) {
    out.append(d);
    return true;
  });
  for (const auto& [t, b] : objects) EXPECT_TRUE(w.Add(t, b).ok());
  EXPECT_TRUE(w.Finish().ok());
  return out;
}

TEST_F(PackTest, WrittenPacksReadBackWithGitIds) {
  std::string big(300000, 'q');
  std::string pack = BuildPack({{GitObjectType::kBlob, "hello\n"}, {GitObjectType::kBlob, big}, {GitObjectType::kBlob, ""}});
  std::map<GitOid, std::string> got;
  auto s = Read(pack, &got);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->objects, 3u);
  // git hash-object of "hello\n" is ce013625030ba8dba906f756967f9e9ca394464a.
  auto hello = GitOid::FromHex("ce013625030ba8dba906f756967f9e9ca394464a");
  ASSERT_TRUE(hello.ok());
  ASSERT_TRUE(got.count(*hello));
  EXPECT_EQ(got[*hello], "hello\n");
  EXPECT_EQ(got[store::HashObject("blob", big)], big);
}

TEST_F(PackTest, OfsDeltasWrittenReadBack) {
  std::string base(100000, 'b');
  std::string target = base + "more\n";
  std::string out;
  PackWriter w(2, [&](std::string_view d) {
    out.append(d);
    return true;
  });
  const uint64_t base_at = w.next_offset();
  ASSERT_TRUE(w.Add(GitObjectType::kBlob, base).ok());
  ASSERT_TRUE(w.AddOfsDelta(base_at, MakeDelta(base, target)).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_LT(out.size(), 2000u);
  std::map<GitOid, std::string> got;
  auto s = Read(out, &got);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->deltas, 1u);
  EXPECT_EQ(got[store::HashObject("blob", target)], target);
}

TEST_F(PackTest, RefusesDamagedPacks) {
  std::string pack = BuildPack({{GitObjectType::kBlob, "hello\n"}});
  std::map<GitOid, std::string> got;
  std::string bad = pack;
  bad[bad.size() - 25] ^= 1;  // inside the object: the checksum no longer matches
  EXPECT_FALSE(Read(bad, &got).ok());
  EXPECT_FALSE(Read(pack.substr(0, pack.size() - 1), &got).ok());
  EXPECT_FALSE(Read("PACK", &got).ok());
  PackLimits tiny;
  tiny.max_object_bytes = 3;
  EXPECT_EQ(Read(pack, &got, tiny).status().code(), StatusCode::kResourceExhausted);
  tiny = PackLimits();
  tiny.max_objects = 0;
  EXPECT_EQ(Read(pack, &got, tiny).status().code(), StatusCode::kResourceExhausted);
}

// A pack entry by hand: header, then the zlib stream of `data`.
std::string Entry(int type, uint64_t size, const std::string& prefix, const std::string& data) {
  std::string h;
  uint8_t b = static_cast<uint8_t>((type << 4) | (size & 0x0f));
  size >>= 4;
  while (size) {
    h.push_back(static_cast<char>(b | 0x80));
    b = size & 0x7f;
    size >>= 7;
  }
  h.push_back(static_cast<char>(b));
  uLongf n = compressBound(data.size());
  std::string z(n, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(data.data()), data.size());
  z.resize(n);
  return h + prefix + z;
}

std::string Finish(std::string body, uint32_t count) {
  std::string head = "PACK";
  for (uint32_t v : {2u, count}) {
    head.push_back(static_cast<char>(v >> 24));
    head.push_back(static_cast<char>(v >> 16));
    head.push_back(static_cast<char>(v >> 8));
    head.push_back(static_cast<char>(v));
  }
  std::string all = head + body;
  Sha1 sha;
  sha.Update(all);
  return all + std::string(sha.Finish().view());
}

TEST_F(PackTest, ResolvesOfsAndRefDeltasAndRefusesThinOnes) {
  std::string base = "the quick brown fox";
  std::string e1 = Entry(3, base.size(), "", base);
  // OFS_DELTA against the first entry: copy all, insert "!".
  std::string delta = Varint(base.size()) + Varint(base.size() + 1) + std::string(1, static_cast<char>(0x80 | 0x10)) +
                      std::string(1, static_cast<char>(base.size())) + std::string(1, '\x01') + "!";
  uint64_t rel = e1.size() + 0;  // the delta entry starts right after e1 (offset 12 + e1.size())
  std::string ofs(1, static_cast<char>(rel & 0x7f));
  ASSERT_LT(rel, 128u);
  std::string e2 = Entry(6, delta.size(), ofs, delta);
  // REF_DELTA against the first object by id.
  GitOid base_id = store::HashObject("blob", base);
  std::string e3 = Entry(7, delta.size(), std::string(base_id.view()), delta);
  std::map<GitOid, std::string> got;
  auto s = Read(Finish(e1 + e2 + e3, 3), &got);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->deltas, 2u);
  EXPECT_EQ(got[store::HashObject("blob", base + "!")], base + "!");
  // A REF_DELTA whose base is not in the pack (a thin pack) is refused, even if the receiver
  // holds that object elsewhere.
  std::map<GitOid, std::string> other{{base_id, base}};
  auto thin = Read(Finish(e3, 1), &other);
  EXPECT_FALSE(thin.ok());
}

}  // namespace
}  // namespace hubnode::hub::git

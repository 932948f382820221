#include "store/store.h"

#include <random>
#include <thread>

#include "testmodel/testmodel.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::ReadTree;
using hubnode::testing::ReadWholeFile;
using hubnode::testing::TempDir;
namespace tm = hubnode::testmodel;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Options o;
    o.data_dir = dir_ / "data";
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(o));
  }
  std::string Model(tm::Family f, const std::string& name, uint64_t seed = 1, const std::string& size = "tiny") {
    tm::Options o;
    o.family = f;
    o.seed = seed;
    o.size = size;
    std::string out = dir_ / name;
    auto r = tm::Generate(o, out);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return out;
  }
  ImportResult Import(const std::string& src, const std::string& repo, const std::string& branch = "main") {
    ImportOptions io;
    io.branch = branch;
    auto r = store_->ImportDirectory(src, *RepoId::Parse(repo), io);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ImportResult{};
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, EveryFamilyRoundTripsByteExact) {
  for (auto f : {tm::Family::kMixtral, tm::Family::kQwen2Moe, tm::Family::kQwen3Moe, tm::Family::kOlmoe,
                 tm::Family::kLlama, tm::Family::kQwen2, tm::Family::kQwen3}) {
    std::string name(tm::FamilyName(f));
    std::string src = Model(f, name);
    ImportResult r = Import(src, "test/" + name);
    EXPECT_TRUE(r.changed);
    std::string out = dir_ / ("export-" + name);
    ASSERT_OK(store_->Export(r.commit, out));
    EXPECT_EQ(ReadTree(out), ReadTree(src)) << name;
  }
}

TEST_F(StoreTest, RandomAccessReadsMatchTheFile) {
  std::string src = Model(tm::Family::kOlmoe, "m", 1, "small");
  ImportResult r = Import(src, "t/m");
  ASSERT_OK_AND_ASSIGN(auto files, store_->ListFiles(r.commit));
  std::mt19937_64 rng(42);
  int checked = 0;
  for (const auto& f : files) {
    std::string content = ReadWholeFile(src + "/" + f.path);
    ASSERT_EQ(content.size(), f.size) << f.path;
    EXPECT_EQ(Sha256Of(content), f.sha256);
    ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenFile(f));
    for (int i = 0; i < 20 && !content.empty(); ++i) {
      uint64_t off = rng() % content.size();
      uint64_t len = rng() % std::min<uint64_t>(content.size() - off + 1, 3 << 20);
      ASSERT_OK_AND_ASSIGN(std::string got, reader->ReadToString(off, len));
      ASSERT_EQ(got, content.substr(off, len)) << f.path << " @" << off << "+" << len;
      ++checked;
    }
    EXPECT_EQ(reader->Read(f.size, 1, [](std::string_view) { return OkStatus(); }).code(), StatusCode::kOutOfRange);
  }
  EXPECT_GT(checked, 100);
}

TEST_F(StoreTest, TensorsAndExpertsByName) {
  std::string src = Model(tm::Family::kQwen2Moe, "q");
  ImportResult r = Import(src, "t/q");
  const std::string name = "model.layers.1.mlp.experts.2.down_proj.weight";
  ASSERT_OK_AND_ASSIGN(TensorLocation loc, store_->FindTensor(r.commit, name));
  std::string shard = ReadWholeFile(src + "/" + loc.file.path);
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenFile(loc.file));
  ASSERT_OK_AND_ASSIGN(std::string bytes, reader->ReadToString(loc.tensor.begin, loc.tensor.end - loc.tensor.begin));
  EXPECT_EQ(bytes, shard.substr(loc.tensor.begin, loc.tensor.end - loc.tensor.begin));
  EXPECT_EQ(loc.tensor.dtype, "BF16");
  EXPECT_EQ(store_->FindTensor(r.commit, "nope").status().code(), StatusCode::kNotFound);

  ASSERT_OK_AND_ASSIGN(ExpertIndex idx, store_->GetExpertIndex(r.commit));
  // tiny qwen2_moe: 2 layers x 4 experts + a shared expert per layer, 3 tensors each.
  EXPECT_EQ(idx.size(), 2u * (4 + 1));
  const auto& parts = idx.at(ExpertKey{1, 2});
  ASSERT_EQ(parts.size(), 3u);
  bool found = false;
  for (const auto& p : parts) {
    if (p.tensor == name) {
      found = true;
      EXPECT_EQ(p.offset, loc.tensor.begin);
      EXPECT_EQ(p.length, loc.tensor.end - loc.tensor.begin);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(idx.at(ExpertKey{0, kSharedExpertIndex}).size(), 3u);

  std::string dense = Model(tm::Family::kLlama, "d");
  ImportResult rd = Import(dense, "t/d");
  ASSERT_OK_AND_ASSIGN(ExpertIndex none, store_->GetExpertIndex(rd.commit));
  EXPECT_TRUE(none.empty());
}

TEST_F(StoreTest, RevisionsAndRefs) {
  std::string a = Model(tm::Family::kOlmoe, "a", 1), b = Model(tm::Family::kOlmoe, "b", 2);
  auto repo = *RepoId::Parse("ns/r");
  ImportResult r1 = Import(a, "ns/r");
  ImportResult r2 = Import(b, "ns/r");
  EXPECT_EQ(*store_->Resolve(repo, "main"), r2.commit);
  EXPECT_EQ(*store_->Resolve(repo, "HEAD"), r2.commit);
  EXPECT_EQ(*store_->Resolve(repo, "refs/heads/main"), r2.commit);
  EXPECT_EQ(*store_->Resolve(repo, r1.commit.hex()), r1.commit);  // reachable through main's parent
  ASSERT_OK_AND_ASSIGN(auto log, store_->Log(r2.commit, 10));
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].id, r1.commit);

  ASSERT_OK(store_->UpdateRef(repo, "refs/tags/v1", GitOid(), r1.commit));
  ASSERT_OK(store_->UpdateRef(repo, "refs/pr/1", GitOid(), r2.commit));
  EXPECT_EQ(*store_->Resolve(repo, "v1"), r1.commit);
  EXPECT_EQ(*store_->Resolve(repo, "refs/pr/1"), r2.commit);
  // Compare-and-swap: a stale expectation fails and changes nothing.
  EXPECT_EQ(store_->UpdateRef(repo, "refs/tags/v1", r2.commit, r2.commit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->Resolve(repo, "v1"), r1.commit);
  EXPECT_EQ(store_->UpdateRef(repo, "refs/heads/x", GitOid(), *GitOid::FromHex(std::string(40, 'a'))).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->UpdateRef(repo, "refs/heads/../x", GitOid(), r1.commit).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->UpdateRef(repo, "HEAD", GitOid(), r1.commit).code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(auto refs, store_->ListRefs(repo));
  EXPECT_EQ(refs.size(), 3u);

  // A commit of another repo does not resolve here, even by its full id.
  ImportResult other = Import(Model(tm::Family::kOlmoe, "c", 3), "ns/other");
  EXPECT_EQ(store_->Resolve(repo, other.commit.hex()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve(repo, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve(*RepoId::Parse("ns/missing"), "main").status().code(), StatusCode::kNotFound);

  // Importing the same tree again makes no commit.
  ImportResult again = Import(b, "ns/r");
  EXPECT_FALSE(again.changed);
  EXPECT_EQ(again.commit, r2.commit);

  EXPECT_FALSE(RepoId::Parse("../etc").ok());
  EXPECT_FALSE(RepoId::Parse("a/b/c").ok());
  EXPECT_FALSE(RepoId::Parse("").ok());
  EXPECT_TRUE(RepoId::Parse("Qwen/Qwen3-30B-A3B").ok());
}

TEST_F(StoreTest, RacingImportsOneWins) {
  std::string base = Model(tm::Family::kOlmoe, "base", 1);
  Import(base, "race/r");
  auto repo = *RepoId::Parse("race/r");
  for (int round = 0; round < 3; ++round) {
    std::string r = std::to_string(round);
    std::string a = Model(tm::Family::kOlmoe, "a" + r, 10 + 2 * round);
    std::string b = Model(tm::Family::kOlmoe, "b" + r, 11 + 2 * round);
    GitOid head = *store_->Resolve(repo, "main");
    std::vector<Result<ImportResult>> results(2, Result<ImportResult>(InternalError("not run")));
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        ImportOptions io;
        io.expected_parent = head;  // both start from the same parent
        io.message = "round " + std::to_string(round) + " writer " + std::to_string(i);
        results[i] = store_->ImportDirectory(i ? b : a, repo, io);
      });
    }
    for (auto& t : threads) t.join();
    int ok = 0;
    for (auto& r : results) {
      if (r.ok()) {
        ++ok;
        EXPECT_EQ(*store_->Resolve(repo, "main"), r->commit);
      } else {
        EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
      }
    }
    EXPECT_EQ(ok, 1) << "round " << round;
  }
}

TEST_F(StoreTest, FinetuneStoresOnlyWhatChanged) {
  std::string base = Model(tm::Family::kOlmoe, "base", 1, "small");
  ImportResult rb = Import(base, "org/base");
  tm::FinetuneOptions fo;
  fo.base_dir = base;
  fo.base_model_id = "org/base";
  fo.mode = tm::FinetuneOptions::Mode::kExperts;
  fo.experts = {{0, 1}, {2, 3}};
  ASSERT_OK_AND_ASSIGN(auto ft, tm::GenerateFinetune(fo, dir_ / "ft"));
  ImportResult rf = Import(dir_ / "ft", "org/ft");
  // New bytes: the changed expert tensors, plus README.md (new base_model); headers are unchanged.
  uint64_t readme = ReadWholeFile(dir_ / "ft/README.md").size();
  EXPECT_GE(rf.new_raw_bytes, ft.changed_bytes);
  EXPECT_LE(rf.new_raw_bytes, ft.changed_bytes + readme);
  EXPECT_LT(rf.new_raw_bytes * 10, rb.new_raw_bytes);
  std::string out = dir_ / "ft-export";
  ASSERT_OK(store_->Export(rf.commit, out));
  EXPECT_EQ(ReadTree(out), ReadTree(dir_ / "ft"));
  ASSERT_OK_AND_ASSIGN(Stats s, store_->GetStats());
  EXPECT_EQ(s.repos, 2u);
  EXPECT_GT(s.logical_bytes, s.chunk_raw_bytes);  // dedup across the two repos
}

TEST_F(StoreTest, RejectsBadInputs) {
  auto repo = *RepoId::Parse("t/x");
  EXPECT_EQ(store_->ImportDirectory(dir_ / "missing", repo, ImportOptions()).status().code(),
            StatusCode::kInvalidArgument);
  std::string empty = dir_ / "empty";
  testing::RunShell("mkdir -p '" + empty + "'");
  EXPECT_EQ(store_->ImportDirectory(empty, repo, ImportOptions()).status().code(), StatusCode::kInvalidArgument);
  std::string withlink = dir_ / "link";
  testing::WriteFile(withlink + "/a.txt", "a");
  testing::RunShell("ln -s /etc/passwd '" + withlink + "/evil'");
  auto r = store_->ImportDirectory(withlink, repo, ImportOptions());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("symlink"), std::string::npos);
  ImportOptions bad_branch;
  bad_branch.branch = "a..b";
  EXPECT_EQ(store_->ImportDirectory(withlink, repo, bad_branch).status().code(), StatusCode::kInvalidArgument);
  // Export refuses a non-empty target.
  testing::RunShell("rm '" + withlink + "/evil'");
  ImportResult ok = Import(withlink, "t/x");
  EXPECT_EQ(store_->Export(ok.commit, withlink).code(), StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(Stats s, store_->GetStats());
  EXPECT_EQ(s.repos, 1u);
}

TEST_F(StoreTest, SecondOpenOfTheSameDirectoryIsUnavailable) {
  Options o;
  o.data_dir = dir_ / "data";
  auto second = Store::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace hubnode::store

namespace hubnode::store {
namespace {

// The commit an import will make can be computed from the files' digests alone (what a
// pull-through announces before the bytes arrive).
TEST_F(StoreTest, PlanCommitIdEqualsTheImportedCommit) {
  std::string src = Model(tm::Family::kMixtral, "plan", 4);
  testing::WriteFile(src + "/sub/notes.txt", "nested file\n");
  std::vector<PlannedFile> planned;
  for (const auto& [path, content] : ReadTree(src)) {
    PlannedFile p{path, content.size(), std::nullopt, std::nullopt};
    if (StoresAsLfs(path, content.size())) {
      p.sha256 = Sha256Of(content);
    } else {
      Sha1 sha1;
      sha1.Update("blob " + std::to_string(content.size()) + std::string(1, '\0'));
      sha1.Update(content);
      p.git_blob = sha1.Finish();
    }
    planned.push_back(p);
  }
  Signature author{"Mirror", "m@example.org", 1760000000, 0};
  ASSERT_OK_AND_ASSIGN(GitOid plan, PlanCommitId(planned, author, "Mirrored\n"));
  ImportOptions io;
  io.author = author;
  io.message = "Mirrored\n";
  io.expected_parent = GitOid();
  io.branch = "refs/mirror/" + std::string(40, 'a');
  auto r = store_->ImportDirectory(src, *RepoId::Parse("t/plan"), io);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->commit, plan);
  // Without the digest its stored form needs, a file makes the plan impossible.
  planned[0].git_blob.reset();
  planned[0].sha256.reset();
  EXPECT_EQ(PlanCommitId(planned, author, "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->Resolve(*RepoId::Parse("t/plan"), std::string(40, 'a')), plan);  // the mirror alias
}

}  // namespace
}  // namespace hubnode::store

namespace hubnode::store {
namespace {

TEST_F(StoreTest, ChunksForPeersListReadAndVerify) {
  std::string src = Model(tm::Family::kMixtral, "m", 2, "tiny");
  ImportResult r = Import(src, "t/m");
  ASSERT_OK_AND_ASSIGN(auto files, store_->ListFiles(r.commit));
  int checked = 0;
  for (const auto& f : files) {
    const std::string content = ReadWholeFile(src + "/" + f.path);
    ASSERT_OK_AND_ASSIGN(auto chunks, store_->ListChunks(f));
    uint64_t offset = 0;
    std::vector<ChunkId> ids;
    for (const FileChunk& c : chunks) {
      ASSERT_EQ(c.offset, offset);
      ASSERT_OK_AND_ASSIGN(std::string record, store_->ReadChunkRecord(c.id));
      ASSERT_OK_AND_ASSIGN(std::string raw, DecodeVerifiedChunk(c.id, record));
      ASSERT_EQ(raw, content.substr(c.offset, c.size)) << f.path;
      offset += c.size;
      ids.push_back(c.id);
      ++checked;
    }
    EXPECT_EQ(offset, f.size);
    ids.push_back(ChunkIdOf("not stored"));
    ASSERT_OK_AND_ASSIGN(auto has, store_->HasChunks(ids));
    EXPECT_TRUE(std::all_of(has.begin(), has.end() - 1, [](bool b) { return b; }));
    EXPECT_FALSE(has.back());
  }
  EXPECT_GT(checked, 10);
  EXPECT_EQ(store_->ReadChunkRecord(ChunkIdOf("not stored")).status().code(), StatusCode::kNotFound);
  // A record under the wrong id, or damaged, is refused.
  ASSERT_OK_AND_ASSIGN(auto chunks, store_->ListChunks(files.back()));
  ASSERT_OK_AND_ASSIGN(std::string record, store_->ReadChunkRecord(chunks[0].id));
  EXPECT_EQ(DecodeVerifiedChunk(ChunkIdOf("other"), record).status().code(), StatusCode::kDataLoss);
  std::string damaged = record;
  damaged[damaged.size() - 1] ^= 0x40;
  EXPECT_EQ(DecodeVerifiedChunk(chunks[0].id, damaged).status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(DecodeVerifiedChunk(chunks[0].id, "").ok());
}

}  // namespace
}  // namespace hubnode::store

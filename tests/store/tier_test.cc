// The chunk tier through an in-memory object store (FakeTier): chunks go to packs, reads come back
// verified, a tampered pack is never served, the cache keeps its bound, GC deletes and rewrites
// packs, push moves a local store's chunks, a reader learns chunks from pack indexes, and the pack
// format's parsers refuse malformed input.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "store/git_objects.h"
#include "store/records.h"
#include "store/store.h"
#include "store/tier.h"
#include "testmodel/testmodel.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::ReadTree;
using hubnode::testing::TempDir;
namespace tm = hubnode::testmodel;

class FakeTier final : public ChunkTier {
 public:
  Status PutPack(std::string_view name, std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (down) return UnavailableError("down");
    packs[std::string(name)] = std::string(bytes);
    return OkStatus();
  }
  Result<std::string> ReadPack(std::string_view name, uint64_t offset, uint64_t length) override {
    if (read_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(read_delay_ms));
    std::lock_guard<std::mutex> lock(mu_);
    ++reads;
    if (down) return UnavailableError("down");
    auto it = packs.find(std::string(name));
    if (it == packs.end()) return NotFoundError("no pack");
    if (offset + length > it->second.size()) return OutOfRangeError("past the end");
    return it->second.substr(offset, length);
  }
  Status DeletePack(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    packs.erase(std::string(name));
    return OkStatus();
  }
  Result<std::vector<PackInfo>> ListPacks(std::string_view after, std::string_view until) override {
    std::lock_guard<std::mutex> lock(mu_);
    afters.emplace_back(after);
    untils.emplace_back(until);
    std::vector<PackInfo> out;
    for (const auto& [n, b] : packs) {
      if (n > after && (until.empty() || n < until)) out.push_back(PackInfo{n, b.size()});
    }
    return out;
  }
  Result<std::optional<std::string>> GetControl(std::string_view name, uint64_t max_bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (down) return UnavailableError("down");
    auto it = controls.find(std::string(name));
    if (it != controls.end() && it->second.size() > max_bytes) return ResourceExhaustedError("too large");
    return it == controls.end() ? std::optional<std::string>() : std::optional<std::string>(it->second);
  }
  Status DeleteControl(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    controls.erase(std::string(name));
    return OkStatus();
  }
  Result<std::vector<std::string>> ListControls(std::string_view dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (down) return UnavailableError("down");
    std::vector<std::string> out;
    for (const auto& [n, b] : controls) {
      if (n.starts_with(dir)) out.push_back(n);
    }
    return out;
  }
  Status PutControl(std::string_view name, std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (down) return UnavailableError("down");
    controls[std::string(name)] = std::string(bytes);
    return OkStatus();
  }
  std::string Describe() const override { return "fake://"; }

  std::mutex mu_;
  std::map<std::string, std::string> packs;
  std::map<std::string, std::string> controls;
  bool down = false;
  int reads = 0;
  std::atomic<int> read_delay_ms{0};
  std::vector<std::string> afters, untils;  // each listing's bounds
};

std::string Model(const TempDir& dir, const std::string& name, uint64_t seed) {
  tm::Options o;
  o.seed = seed;
  EXPECT_OK(tm::Generate(o, dir / name).status());
  return dir / name;
}

Options Tiered(const TempDir& dir, std::shared_ptr<FakeTier> tier, const std::string& sub = "data") {
  Options o;
  o.data_dir = dir / sub;
  o.chunk_tier = std::move(tier);
  o.pack_bytes = 64 << 10;  // several packs from a small model
  o.chunk_cache_bytes = 256 << 10;
  return o;
}

TEST(TierTest, ImportGoesToPacksAndReadsBackByteExact) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(Tiered(dir, tier)));
  std::string a = Model(dir, "a", 1);
  auto repo = *RepoId::Parse("t/a");
  ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(a, repo, ImportOptions()));
  EXPECT_GT(tier->packs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Stats s, store->GetStats());
  EXPECT_EQ(s.remote_chunks, s.chunks);
  EXPECT_EQ(s.local_only_chunks, 0u);
  EXPECT_EQ(s.cached_bytes, 0u);
  ASSERT_OK(store->Export(r.commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));
  ASSERT_OK_AND_ASSIGN(Stats after, store->GetStats());
  EXPECT_GT(after.cached_bytes, 0u);
  EXPECT_LE(after.cached_bytes, 256u << 10);
  // The cache bound holds across a reopen with a smaller bound.
  store.reset();
  Options small = Tiered(dir, tier);
  small.chunk_cache_bytes = 0;
  ASSERT_OK_AND_ASSIGN(store, Store::Open(small));
  ASSERT_OK_AND_ASSIGN(Stats reopened, store->GetStats());
  EXPECT_EQ(reopened.cached_bytes, 0u);
  ASSERT_OK(store->Export(r.commit, dir / "out2"));
  EXPECT_EQ(ReadTree(dir / "out2"), ReadTree(a));
  ASSERT_OK_AND_ASSIGN(FsckReport fsck, store->Fsck(FsckOptions()));
  EXPECT_TRUE(fsck.clean());
}

TEST(TierTest, SequentialReadsTakeSeveralChunksPerGet) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  Options o = Tiered(dir, tier);
  o.pack_bytes = 64 << 20;
  o.chunk_cache_bytes = 0;
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  std::string a = Model(dir, "a", 8);
  ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()));
  ASSERT_OK_AND_ASSIGN(auto files, store->ListFiles(r.commit));
  const FileEntry* big = &files[0];
  for (const auto& f : files) {
    if (f.size > big->size) big = &f;
  }
  ASSERT_OK_AND_ASSIGN(auto chunks, store->ListChunks(*big));
  ASSERT_GE(chunks.size(), 8u);
  const int reads_before = tier->reads;
  ASSERT_OK_AND_ASSIGN(auto reader, store->OpenFile(*big));
  ASSERT_OK_AND_ASSIGN(std::string whole, reader->ReadToString(0, big->size));
  EXPECT_EQ(Sha256Of(whole), big->sha256);
  // Chunks close together in the pack come several per ranged GET.
  EXPECT_LT(static_cast<size_t>(tier->reads - reads_before), chunks.size() / 2);
}

TEST(TierTest, TamperedPackBytesAreNeverServed) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  Options o = Tiered(dir, tier);
  o.chunk_cache_bytes = 0;
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  std::string a = Model(dir, "a", 2);
  ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()));
  for (auto& [name, bytes] : tier->packs) bytes[bytes.size() / 3] ^= 0x55;  // one byte of each pack
  auto exported = store->Export(r.commit, dir / "out");
  ASSERT_FALSE(exported.ok());
  EXPECT_EQ(exported.code(), StatusCode::kDataLoss) << exported.ToString();
  ASSERT_OK_AND_ASSIGN(FsckReport fsck, store->Fsck(FsckOptions()));
  EXPECT_FALSE(fsck.damaged_chunks.empty());
}

TEST(TierTest, ObjectStoreDownIsUnavailableAndNothingIsRecorded) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(Tiered(dir, tier)));
  std::string a = Model(dir, "a", 3);
  auto repo = *RepoId::Parse("t/a");
  tier->down = true;
  auto failed = store->ImportDirectory(a, repo, ImportOptions());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable) << failed.status().ToString();
  EXPECT_EQ(store->GetRepo(repo).status().code(), StatusCode::kNotFound);
  tier->down = false;
  ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(a, repo, ImportOptions()));
  tier->down = true;
  ASSERT_OK_AND_ASSIGN(auto files, store->ListFiles(r.commit));
  ASSERT_OK_AND_ASSIGN(auto reader, store->OpenFile(files.back()));
  auto read = reader->ReadToString(0, reader->size());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
}

TEST(TierTest, GcDeletesDeadPacksAndRewritesMostlyDeadOnes) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  Options o = Tiered(dir, tier);
  o.pack_bytes = 64 << 20;  // one pack per import
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  auto keep = *RepoId::Parse("t/keep"), drop = *RepoId::Parse("t/drop");
  std::string a = Model(dir, "a", 4), b = Model(dir, "b", 5);
  ASSERT_OK_AND_ASSIGN(ImportResult ra, store->ImportDirectory(a, keep, ImportOptions()));
  ASSERT_OK_AND_ASSIGN(ImportResult rb, store->ImportDirectory(b, drop, ImportOptions()));
  ASSERT_EQ(tier->packs.size(), 2u);
  // An orphan (a crash between upload and commit) goes; so does the pack of a dropped repo,
  // whose shared chunks (tokenizer, card) are in a's pack already.
  tier->packs["0123456789abcdef0123456789abcdef"] = "junk";
  ASSERT_OK(store->UpdateRef(drop, "refs/heads/main", rb.commit, GitOid()));
  ASSERT_OK_AND_ASSIGN(GcResult gc, store->CollectGarbage());
  EXPECT_EQ(gc.packs_deleted, 2u);
  EXPECT_EQ(tier->packs.size(), 1u);
  ASSERT_OK(store->Export(ra.commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));

  // Now a pack mostly dead: drop `keep` but keep a repo naming one small file of it.
  ASSERT_OK_AND_ASSIGN(auto files, store->ListFiles(ra.commit));
  const FileEntry* small = nullptr;
  for (const auto& f : files) {
    if (f.path == "config.json") small = &f;
  }
  ASSERT_NE(small, nullptr);
  CommitSpec spec;
  spec.changes.push_back(FileChange{FileChange::Kind::kPut, "config.json", small->sha256, small->size, false, small->blob});
  spec.message = "only the config\n";
  ASSERT_OK_AND_ASSIGN(WrittenCommit only, store->WriteCommit(spec));
  auto cfg = *RepoId::Parse("t/cfg");
  ASSERT_OK(store->CreateRepo(cfg, Visibility::kPublic));
  ASSERT_OK(store->UpdateRef(cfg, "refs/heads/main", GitOid(), only.commit));
  ASSERT_OK(store->UpdateRef(keep, "refs/heads/main", ra.commit, GitOid()));
  // A reader node that learned where config.json's chunks were before the rewrite.
  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader_node, Store::Open(ro));
  ASSERT_OK_AND_ASSIGN(auto cfg_chunks, store->ListChunks(*small));
  ASSERT_FALSE(cfg_chunks.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<bool> held, reader_node->HasChunks({cfg_chunks[0].id}));
  ASSERT_TRUE(held[0]);
  Options ro2 = Tiered(dir, tier, "reader2");
  ro2.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader2, Store::Open(ro2));
  ASSERT_OK_AND_ASSIGN(held, reader2->HasChunks({cfg_chunks[0].id}));
  ASSERT_TRUE(held[0]);
  uint64_t before = tier->packs.begin()->second.size();
  ASSERT_OK_AND_ASSIGN(GcResult gc2, store->CollectGarbage());
  EXPECT_EQ(gc2.packs_rewritten, 1u);
  ASSERT_EQ(tier->packs.size(), 1u);
  EXPECT_LT(tier->packs.begin()->second.size(), before / 10);
  ASSERT_OK_AND_ASSIGN(auto reader, store->OpenFile(*small));
  ASSERT_OK_AND_ASSIGN(std::string got, reader->ReadToString(0, small->size));
  EXPECT_EQ(got, hubnode::testing::ReadWholeFile(a + "/config.json"));
  // The reader's location names the deleted pack: it forgets it and finds the new pack at once.
  ASSERT_OK_AND_ASSIGN(std::string rec, reader_node->ReadChunkRecord(cfg_chunks[0].id));
  ASSERT_OK_AND_ASSIGN(std::string raw, DecodeVerifiedChunk(cfg_chunks[0].id, rec));
  EXPECT_EQ(raw, hubnode::testing::ReadWholeFile(a + "/config.json").substr(0, raw.size()));
  // Another reader, which also held the old location, indexes the new pack on a miss elsewhere
  // before it reads the moved chunk: the newer pack's location replaces the one it held (else the
  // new pack, marked indexed, would never be looked at again for this chunk).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a reader looks at most once a second
  ASSERT_OK(reader2->HasChunks({ChunkIdOf("a chunk nobody has")}).status());
  ASSERT_OK_AND_ASSIGN(auto moved, reader2->ReadChunkRecord(cfg_chunks[0].id));
  EXPECT_OK(DecodeVerifiedChunk(cfg_chunks[0].id, moved).status());
}

TEST(TierTest, PushMovesALocalStoreAndAReaderFindsItsChunks) {
  TempDir dir;
  std::string a = Model(dir, "a", 6);
  GitOid commit;
  {
    Options local;
    local.data_dir = dir / "data";
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(local));
    ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()));
    commit = r.commit;
  }
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(Tiered(dir, tier)));
  ASSERT_OK_AND_ASSIGN(TierPushResult pushed, store->PushToTier());
  ASSERT_OK_AND_ASSIGN(Stats s, store->GetStats());
  EXPECT_EQ(pushed.chunks, s.chunks);
  EXPECT_EQ(s.local_only_chunks, 0u);
  EXPECT_LE(s.cached_bytes, 256u << 10);
  EXPECT_GT(pushed.evicted_chunks, 0u);
  ASSERT_OK_AND_ASSIGN(TierPushResult again, store->PushToTier());
  EXPECT_EQ(again.chunks, 0u);
  ASSERT_OK(store->Export(commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));

  // A reader over the same packs: every chunk counts as held once the packs are indexed.
  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader, Store::Open(ro));
  ASSERT_OK_AND_ASSIGN(auto files, store->ListFiles(commit));
  ASSERT_OK_AND_ASSIGN(auto chunks, store->ListChunks(files.back()));
  std::vector<ChunkId> ids;
  for (const auto& c : chunks) ids.push_back(c.id);
  ASSERT_OK_AND_ASSIGN(std::vector<bool> held, reader->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  ASSERT_OK_AND_ASSIGN(std::string rec, reader->ReadChunkRecord(ids[0]));
  EXPECT_OK(DecodeVerifiedChunk(ids[0], rec).status());
  // The reader never deletes a pack, even one it does not reference.
  size_t packs = tier->packs.size();
  ASSERT_OK(reader->CollectGarbage().status());
  EXPECT_EQ(tier->packs.size(), packs);
}

std::vector<ChunkId> ChunksOf(Store& st, const GitOid& commit) {
  std::vector<ChunkId> ids;
  auto files = st.ListFiles(commit);
  EXPECT_OK(files.status());
  for (const auto& f : *files) {
    auto chunks = st.ListChunks(f);
    EXPECT_OK(chunks.status());
    for (const auto& c : *chunks) ids.push_back(c.id);
  }
  return ids;
}

TEST(TierTest, AReaderWritesNothingOfItsOwn) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  std::string a = Model(dir, "a", 1);
  {
    ASSERT_OK_AND_ASSIGN(auto writer, Store::Open(Tiered(dir, tier)));
    ASSERT_OK(writer->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()).status());
  }
  const size_t packs = tier->packs.size();
  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  {
    ASSERT_OK_AND_ASSIGN(auto reader, Store::Open(ro));
    // Every chunk of `a` is in the bucket: importing it again adds no chunk, only metadata, and is
    // refused all the same (it would be a commit the writer never sees).
    auto copy = *RepoId::Parse("t/copy");
    auto imported = reader->ImportDirectory(a, copy, ImportOptions());
    EXPECT_EQ(imported.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(imported.status().message().find("send writes to the writer"), std::string::npos);
    EXPECT_EQ(reader->CreateRepo(copy, Visibility::kPublic).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(reader->SetVisibility(copy, Visibility::kPrivate).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(reader->PutRepoData(copy, {{"k", std::string("v")}}).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(reader->DeleteRepo(copy).code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(reader->PutGitObject(HashObject("blob", "x"), GitObjectType::kBlob, "x").code(),
              StatusCode::kFailedPrecondition);
    ContentSpec spec;
    spec.path = "f.bin";
    EXPECT_EQ(reader->NewContentWriter(spec).status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(reader->PushToTier().status().code(), StatusCode::kFailedPrecondition);
    ASSERT_OK_AND_ASSIGN(auto repos, reader->ListRepos());
    EXPECT_TRUE(repos.empty());
    EXPECT_FALSE(reader->HasGitObject(HashObject("blob", "x")).value());
  }
  EXPECT_EQ(tier->packs.size(), packs);
  // Opened to replicate (pull, follow), the same reader records commits whose chunks the bucket has.
  ro.replica_writes = true;
  ASSERT_OK_AND_ASSIGN(auto replica, Store::Open(ro));
  ASSERT_OK(replica->HasChunks({ChunkIdOf("unknown")}).status());  // a miss: the packs get indexed
  ASSERT_OK_AND_ASSIGN(ImportResult r, replica->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()));
  EXPECT_EQ(tier->packs.size(), packs);
  ASSERT_OK(replica->Export(r.commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));
}

TEST(TierTest, AReaderListsOnlyPacksNamedSinceItsLastLook) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string name = NewPackName();
  EXPECT_EQ(name.size(), 32u);
  EXPECT_LE(std::abs(PackNameMillis(name) - now), 60000);
  EXPECT_EQ(PackNamePrefix(PackNameMillis(name)), name.substr(1, 12));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_GT(PackNameMillis(NewPackName()), PackNameMillis(name));

  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto writer, Store::Open(Tiered(dir, tier)));
  ASSERT_OK_AND_ASSIGN(ImportResult ra, writer->ImportDirectory(Model(dir, "a", 1), *RepoId::Parse("t/a"), ImportOptions()));
  // A pack named before names carried a time (random hex, here one that reads as the far future)
  // is indexed and does not move the reader's listing past newer packs.
  {
    std::lock_guard<std::mutex> lock(tier->mu_);
    tier->packs["ff" + std::string(30, '0')] = tier->packs.begin()->second;
  }
  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader, Store::Open(ro));
  std::vector<ChunkId> ids = ChunksOf(*writer, ra.commit);
  tier->afters.clear();  // the writer listed the bucket before its first claim
  tier->untils.clear();
  ASSERT_OK_AND_ASSIGN(std::vector<bool> held, reader->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  ASSERT_EQ(tier->afters.size(), 1u);
  EXPECT_EQ(tier->afters[0], "");  // the first look lists the bucket

  ASSERT_OK_AND_ASSIGN(ImportResult rb, writer->ImportDirectory(Model(dir, "b", 2), *RepoId::Parse("t/b"), ImportOptions()));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a reader looks at most once a second
  ids = ChunksOf(*writer, rb.commit);
  ASSERT_OK_AND_ASSIGN(held, reader->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  ASSERT_EQ(tier->afters.size(), 17u);
  // The second look lists each of the 16 shards from an hour before the newest pack it had seen
  // to a little past the clock, not the bucket.
  for (int shard = 0; shard < 16; ++shard) {
    const std::string& after = tier->afters[1 + shard];
    ASSERT_EQ(after.size(), 13u);
    EXPECT_EQ(after[0], "0123456789abcdef"[shard]);
    EXPECT_EQ(after.substr(1), tier->afters[1].substr(1));
    EXPECT_EQ(tier->untils[1 + shard], after.substr(0, 1) + tier->untils[1].substr(1));
  }
  EXPECT_GE(PackNameMillis(tier->afters[1]), now - kPackUploadWindowMs);
  EXPECT_LE(PackNameMillis(tier->afters[1]), now - kPackUploadWindowMs + 60000);
  EXPECT_GE(PackNameMillis(tier->untils[1]), now + kPackClockSkewMs);
  ASSERT_OK_AND_ASSIGN(std::string rec, reader->ReadChunkRecord(ids.back()));
  EXPECT_OK(DecodeVerifiedChunk(ids.back(), rec).status());

  // Packs named by a clock behind the watermark (a promoted writer's): the listing from the
  // watermark misses them, so the reader lists the whole bucket (at most every ten minutes; a
  // restart may at once).
  std::set<std::string> before;
  for (const auto& [n, bytes] : tier->packs) before.insert(n);
  ASSERT_OK_AND_ASSIGN(ImportResult rc, writer->ImportDirectory(Model(dir, "c", 3), *RepoId::Parse("t/c"), ImportOptions()));
  {
    std::lock_guard<std::mutex> lock(tier->mu_);
    std::map<std::string, std::string> renamed;
    int k = 0;
    for (auto& [n, bytes] : tier->packs) {
      const std::string old_name =
          "7" + PackNamePrefix(now - 3 * kPackUploadWindowMs) + std::string(17, '0') + char('a' + k / 10) + char('0' + k % 10);
      renamed[before.count(n) ? n : (++k, old_name)] = std::move(bytes);
    }
    tier->packs = std::move(renamed);
  }
  reader.reset();
  ASSERT_OK_AND_ASSIGN(reader, Store::Open(ro));
  tier->afters.clear();
  ids = ChunksOf(*writer, rc.commit);
  ASSERT_OK_AND_ASSIGN(held, reader->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  ASSERT_EQ(tier->afters.size(), 17u);  // 16 shards from the watermark, then the whole bucket
  EXPECT_NE(tier->afters[0], "");
  EXPECT_EQ(tier->afters[16], "");
  ASSERT_OK_AND_ASSIGN(rec, reader->ReadChunkRecord(ids.front()));
  EXPECT_OK(DecodeVerifiedChunk(ids.front(), rec).status());
}

TEST(TierTest, GcInRangesOfIdsDeletesWhatOnePassDoes) {
  TempDir dir;
  std::string a = Model(dir, "a", 1), b = Model(dir, "b", 2);
  GcResult results[2];
  for (int parted = 0; parted < 2; ++parted) {
    Options o;
    o.data_dir = dir / (parted ? "parted" : "whole");
    if (parted) o.gc_mark_chunks = 8;  // far fewer than the live chunks: many passes
    ASSERT_OK_AND_ASSIGN(auto st, Store::Open(o));
    ASSERT_OK_AND_ASSIGN(ImportResult ra, st->ImportDirectory(a, *RepoId::Parse("t/a"), ImportOptions()));
    ASSERT_OK(st->ImportDirectory(b, *RepoId::Parse("t/b"), ImportOptions()).status());
    ASSERT_OK(st->DeleteRepo(*RepoId::Parse("t/b")));
    ASSERT_OK_AND_ASSIGN(results[parted], st->CollectGarbage());
    ASSERT_OK(st->Export(ra.commit, dir / (parted ? "out-parted" : "out-whole")));
    EXPECT_EQ(ReadTree(dir / (parted ? "out-parted" : "out-whole")), ReadTree(a));
    ASSERT_OK_AND_ASSIGN(FsckReport fsck, st->Fsck(FsckOptions()));
    EXPECT_TRUE(fsck.clean());
    EXPECT_EQ(fsck.missing_chunks, 0u);
  }
  EXPECT_EQ(results[0].mark_passes, 1u);
  EXPECT_GT(results[1].mark_passes, 2u);
  EXPECT_GT(results[0].chunks_deleted, 0u);
  EXPECT_EQ(results[1].chunks_deleted, results[0].chunks_deleted);
  EXPECT_EQ(results[1].bytes_freed, results[0].bytes_freed);
  EXPECT_EQ(results[1].chunks_kept, results[0].chunks_kept);
}

TEST(TierTest, OneWriterPerBucketPrefix) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto a, Store::Open(Tiered(dir, tier, "a")));
  ASSERT_OK_AND_ASSIGN(ImportResult ra, a->ImportDirectory(Model(dir, "m1", 1), *RepoId::Parse("t/a"), ImportOptions()));
  ASSERT_EQ(tier->controls.count("writer"), 1u);  // the first upload claimed the prefix
  const size_t packs = tier->packs.size();

  // A second writer store over the same prefix (a reader started without --chunks-reader, a
  // copied data directory): no uploads, and above all no GC of packs it does not name.
  ASSERT_OK_AND_ASSIGN(auto b, Store::Open(Tiered(dir, tier, "b")));
  auto imported = b->ImportDirectory(Model(dir, "m2", 2), *RepoId::Parse("t/b"), ImportOptions());
  EXPECT_EQ(imported.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(imported.status().message().find("is written by another store"), std::string::npos) << imported.status().ToString();
  EXPECT_NE(imported.status().message().find(dir / "a"), std::string::npos) << imported.status().ToString();
  EXPECT_EQ(b->CollectGarbage().status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(tier->packs.size(), packs);
  EXPECT_EQ(b->ClaimTier(/*force=*/false).code(), StatusCode::kFailedPrecondition);

  // Taken over (the old writer stopped for good): the new writer writes and collects; the old
  // one is refused both at once.
  ASSERT_OK(b->ClaimTier(/*force=*/true));
  ASSERT_OK(b->ImportDirectory(Model(dir, "m3", 3), *RepoId::Parse("t/b"), ImportOptions()).status());
  EXPECT_GT(tier->packs.size(), packs);
  auto refused = a->ImportDirectory(Model(dir, "m4", 4), *RepoId::Parse("t/c"), ImportOptions());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(a->CollectGarbage().status().code(), StatusCode::kFailedPrecondition);
  ASSERT_OK(a->Export(ra.commit, dir / "out"));  // reading goes on
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(dir / "m1"));

  // A reader never claims.
  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader, Store::Open(ro));
  EXPECT_EQ(reader->ClaimTier(/*force=*/true).code(), StatusCode::kFailedPrecondition);

  // A restored backup is another store: it does not inherit the writer's claim.
  ASSERT_OK(b->Backup(dir / "backup").status());
  std::filesystem::create_directories(dir / "restored");
  ASSERT_OK(Store::Restore(dir / "backup", dir / "restored"));
  ASSERT_OK_AND_ASSIGN(auto restored, Store::Open(Tiered(dir, tier, "restored")));
  EXPECT_EQ(restored->ImportDirectory(Model(dir, "m5", 5), *RepoId::Parse("t/d"), ImportOptions()).status().code(),
            StatusCode::kFailedPrecondition);
  // Without a claim in the bucket (packs from before claims), GC leaves every pack alone.
  tier->controls.clear();
  const size_t now_packs = tier->packs.size();
  ASSERT_OK_AND_ASSIGN(auto again, Store::Open(Tiered(dir, tier, "c")));
  ASSERT_OK(again->CollectGarbage().status());
  EXPECT_EQ(tier->packs.size(), now_packs);
  // Nor does a first upload claim a prefix holding packs this store did not write.
  auto first = again->ImportDirectory(Model(dir, "m6", 6), *RepoId::Parse("t/e"), ImportOptions());
  EXPECT_EQ(first.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(first.status().message().find("packs this store did not write"), std::string::npos) << first.status().ToString();
  EXPECT_EQ(tier->controls.count("writer"), 0u);
  EXPECT_EQ(tier->packs.size(), now_packs);
}

TEST(TierTest, ANewReaderLearnsLocationsFromTheWritersManifests) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  ASSERT_OK_AND_ASSIGN(auto writer, Store::Open(Tiered(dir, tier)));
  ASSERT_OK_AND_ASSIGN(ImportResult ra, writer->ImportDirectory(Model(dir, "a", 1), *RepoId::Parse("t/a"), ImportOptions()));
  ASSERT_GT(tier->packs.size(), 2u);
  ASSERT_OK_AND_ASSIGN(GcResult gc, writer->CollectGarbage());
  EXPECT_EQ(gc.manifests_written, 1u);
  ASSERT_OK_AND_ASSIGN(GcResult again, writer->CollectGarbage());
  EXPECT_EQ(again.manifests_written, 0u);  // every pack covered already
  // A pack written after the manifest.
  ASSERT_OK_AND_ASSIGN(ImportResult rb, writer->ImportDirectory(Model(dir, "b", 2), *RepoId::Parse("t/b"), ImportOptions()));

  Options ro = Tiered(dir, tier, "reader");
  ro.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader, Store::Open(ro));
  std::vector<ChunkId> ids = ChunksOf(*writer, ra.commit);
  for (const ChunkId& id : ChunksOf(*writer, rb.commit)) ids.push_back(id);
  const int reads_before = tier->reads;
  ASSERT_OK_AND_ASSIGN(std::vector<bool> held, reader->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  // Two index reads (footer, index) per pack written since the manifest; none for the others.
  size_t after_manifest = 0;
  {
    for (const auto& [name, bytes] : tier->controls) {
      if (!name.starts_with(kManifestDir)) continue;
      ASSERT_OK_AND_ASSIGN(Manifest m, DecodeManifest(bytes));
      for (const auto& [pack, b] : tier->packs) {
        if (std::find(m.packs.begin(), m.packs.end(), pack) == m.packs.end()) ++after_manifest;
      }
    }
  }
  EXPECT_GT(after_manifest, 0u);
  EXPECT_EQ(tier->reads - reads_before, static_cast<int>(2 * after_manifest));
  // And the locations it learned read back, verified.
  for (const ChunkId& id : ids) {
    ASSERT_OK_AND_ASSIGN(std::string rec, reader->ReadChunkRecord(id));
    EXPECT_OK(DecodeVerifiedChunk(id, rec).status());
  }

  // A hostile object among the manifests: skipped, and since it might have held entries of the
  // covered packs, a new reader indexes every pack from its own index instead.
  tier->controls[std::string(kManifestDir) + "junk"] = "HNMIDX01 but not one";
  Options ro2 = Tiered(dir, tier, "reader2");
  ro2.tier_reader = true;
  ASSERT_OK_AND_ASSIGN(auto reader2, Store::Open(ro2));
  const int reads2 = tier->reads;
  ASSERT_OK_AND_ASSIGN(held, reader2->HasChunks(ids));
  EXPECT_EQ(std::count(held.begin(), held.end(), true), static_cast<long>(ids.size()));
  EXPECT_EQ(tier->reads - reads2, static_cast<int>(2 * tier->packs.size()));
}

TEST(TierTest, ConcurrentReadersOfAChunkShareOneGet) {
  TempDir dir;
  auto tier = std::make_shared<FakeTier>();
  Options o = Tiered(dir, tier);
  o.chunk_cache_bytes = 0;  // every read goes to the bucket
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  ASSERT_OK_AND_ASSIGN(ImportResult r, store->ImportDirectory(Model(dir, "a", 1), *RepoId::Parse("t/a"), ImportOptions()));
  std::vector<ChunkId> ids = ChunksOf(*store, r.commit);
  ASSERT_GE(ids.size(), 2u);
  tier->read_delay_ms = 200;  // a slow GET: the other readers arrive while it is in flight
  const int before = tier->reads;
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int k = 0; k < 8; ++k) {
    readers.emplace_back([&, k] {
      auto rec = store->ReadChunkRecord(ids[k % 2]);
      if (rec.ok() && DecodeVerifiedChunk(ids[k % 2], *rec).ok()) ++good;
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(good.load(), 8);
  EXPECT_EQ(tier->reads - before, 2);  // one GET per chunk, not per reader
}

TEST(TierTest, PackParsersRefuseMalformedInput) {
  PackBuilder b;
  b.Add(ChunkIdOf("x"), ChunkMeta{Codec::kRaw, 1, 1}, std::string("\0\1\0\0\0x", 6));
  std::string pack = b.Finish();
  auto footer = DecodePackFooter(std::string_view(pack).substr(pack.size() - kPackFooter), pack.size());
  ASSERT_OK(footer.status());
  auto [count, at] = *footer;
  EXPECT_EQ(count, 1u);
  ASSERT_OK(DecodePackIndex(std::string_view(pack).substr(at, kPackIndexEntry), count, at).status());
  std::string bad = pack;
  bad[bad.size() - 1] = 'X';  // magic
  EXPECT_FALSE(DecodePackFooter(std::string_view(bad).substr(bad.size() - kPackFooter), bad.size()).ok());
  EXPECT_FALSE(DecodePackFooter(std::string_view(pack).substr(pack.size() - kPackFooter), pack.size() + 1).ok());
  std::string index = pack.substr(at, kPackIndexEntry);
  index[32] = 100;  // offset past the records
  EXPECT_FALSE(DecodePackIndex(index, 1, at).ok());
  index = pack.substr(at, kPackIndexEntry);
  index[44] = 9;  // unknown codec
  EXPECT_FALSE(DecodePackIndex(index, 1, at).ok());
  EXPECT_FALSE(DecodePackIndex(index.substr(1), 1, at).ok());
  EXPECT_FALSE(DecodeChunkLoc("short").ok());
  EXPECT_FALSE(DecodeChunkLoc(std::string(44, 'Z')).ok());
}

}  // namespace
}  // namespace hubnode::store

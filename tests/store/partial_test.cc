// Partly held models: chunks received one by one (PutChunk), files recorded from a chunk list the
// caller trusts (RecordContent), and reads of the chunks a store lacks served by its ChunkSource.
// Store A imports a generated MoE model; store B gets only the safetensors headers and the small
// files, records every file, commits them, and reads the rest through a source backed by A.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "store/store.h"
#include "testmodel/testmodel.h"
#include "tests/store/flat_index.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::ReadTree;
using hubnode::testing::ReadWholeFile;
using hubnode::testing::TempDir;
namespace tm = hubnode::testmodel;

const Signature kAuthor{"Partial", "partial@example.org", 1760000000, 0};
const char kMessage[] = "Import\n";

bool IsSafetensors(const std::string& path) { return path.ends_with(".safetensors"); }

PartialContent ContentOf(const FileEntry& f, const std::vector<FileChunk>& chunks) {
  PartialContent c;
  c.path = f.path;
  c.sha256 = f.sha256;
  c.size = f.size;
  c.chunks = chunks;
  return c;
}

FileChange PutOf(const FileEntry& f) {
  FileChange c;
  c.kind = FileChange::Kind::kPut;
  c.path = f.path;
  c.sha256 = f.sha256;
  c.size = f.size;
  c.lfs = StoresAsLfs(f.path, f.size);
  if (!c.lfs) c.git_blob = f.blob;
  return c;
}


class PartialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = OpenStore("a");
    b_ = OpenStore("b");
    ASSERT_TRUE(a_ && b_);
    tm::Options o;
    o.family = tm::Family::kOlmoe;
    o.seed = 11;
    o.size = "tiny";
    src_ = dir_ / "model";
    auto g = tm::Generate(o, src_);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    ImportOptions io;
    io.author = kAuthor;
    io.message = kMessage;
    ASSERT_OK_AND_ASSIGN(ImportResult r, a_->ImportDirectory(src_, *RepoId::Parse("org/moe"), io));
    a_commit_ = r.commit;
    ASSERT_OK_AND_ASSIGN(files_, a_->ListFiles(a_commit_));
    int shards = 0;
    for (const auto& f : files_) {
      ASSERT_OK_AND_ASSIGN(chunks_[f.path], a_->ListChunks(f));
      if (IsSafetensors(f.path)) {
        ++shards;
        ASSERT_GE(chunks_[f.path].size(), 3u) << f.path;
      }
    }
    ASSERT_GE(shards, 2);
  }

  // Small chunks, so the tiny model's tensors make many chunks.
  std::unique_ptr<Store> OpenStore(const std::string& name) {
    Options o;
    o.data_dir = dir_ / name;
    o.max_chunk_size = 16 << 10;
    auto s = Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // A chunk's raw bytes, as a peer would send them: A's stored record, decoded and verified.
  Result<std::string> RawFromA(const ChunkId& id) {
    ASSIGN_OR_RETURN(std::string record, a_->ReadChunkRecord(id));
    return DecodeVerifiedChunk(id, record);
  }

  Status CopyChunk(Store& to, const ChunkId& id) {
    ASSIGN_OR_RETURN(std::string raw, RawFromA(id));
    return to.PutChunk(id, raw, ElementKindHint::kBytes);
  }

  // Makes `to` hold the model in part: every chunk of the non-safetensors files and only the first
  // chunk (the header) of each safetensors file; records every file and commits them as repo
  // org/moe's main. `held` gets the chunk ids copied.
  void MakePartial(Store& to, GitOid* commit, std::set<ChunkId>* held = nullptr) {
    std::vector<FileChange> changes;
    for (const auto& f : files_) {
      const auto& chunks = chunks_.at(f.path);
      for (size_t i = 0; i < chunks.size(); ++i) {
        if (IsSafetensors(f.path) && i > 0) break;
        ASSERT_OK(CopyChunk(to, chunks[i].id));
        if (held) held->insert(chunks[i].id);
      }
      Status recorded = to.RecordContent(ContentOf(f, chunks));
      ASSERT_TRUE(recorded.ok()) << f.path << ": " << recorded.ToString();
      changes.push_back(PutOf(f));
    }
    CommitSpec spec;
    spec.changes = std::move(changes);
    spec.author = kAuthor;
    spec.message = kMessage;
    ASSERT_OK_AND_ASSIGN(WrittenCommit wc, to.WriteCommit(spec));
    auto repo = *RepoId::Parse("org/moe");
    ASSERT_OK(to.CreateRepo(repo, Visibility::kPublic));
    ASSERT_OK(to.UpdateRef(repo, "refs/heads/main", GitOid(), wc.commit));
    *commit = wc.commit;
  }

  // The distinct chunk ids of the safetensors files that a partial store lacks.
  std::set<ChunkId> Missing(const std::set<ChunkId>& held) {
    std::set<ChunkId> out;
    for (const auto& f : files_) {
      for (const auto& c : chunks_.at(f.path)) {
        if (!held.count(c.id)) out.insert(c.id);
      }
    }
    return out;
  }

  // A source serving A's chunks, counting its calls; `mutate` may spoil what it returns.
  ChunkSource SourceFromA(std::atomic<int>* calls, std::function<void(std::string*)> mutate = nullptr) {
    Store* a = a_.get();
    return [a, calls, mutate](const ChunkId& id, uint32_t raw_len) -> Result<std::string> {
      calls->fetch_add(1);
      auto record = a->ReadChunkRecord(id);
      if (!record.ok()) return UnavailableError("A lacks chunk " + id.hex());
      ASSIGN_OR_RETURN(std::string raw, DecodeVerifiedChunk(id, *record));
      if (raw.size() != raw_len) return InternalError("raw_len disagrees with A's chunk");
      if (mutate) mutate(&raw);
      return raw;
    };
  }

  Result<std::string> ReadAll(Store& s, const FileEntry& f) {
    ASSIGN_OR_RETURN(auto reader, s.OpenFile(f));
    return reader->ReadToString(0, reader->size());
  }

  std::vector<bool> Has(Store& s, const std::vector<ChunkId>& ids) {
    auto h = s.HasChunks(ids);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : std::vector<bool>(ids.size(), false);
  }

  const FileEntry& LargestShard() {
    const FileEntry* best = nullptr;
    for (const auto& f : files_) {
      if (IsSafetensors(f.path) && (!best || f.size > best->size)) best = &f;
    }
    return *best;
  }

  TempDir dir_;
  std::unique_ptr<Store> a_, b_;
  std::string src_;
  GitOid a_commit_;
  std::vector<FileEntry> files_;
  std::map<std::string, std::vector<FileChunk>> chunks_;
};

// 1. A model recorded from its chunk lists with only the headers held commits exactly as the
// import did: same commit, files, chunks, tensors and expert index.
TEST_F(PartialTest, PartialRecordedModelCommitsLikeTheImport) {
  GitOid b_commit;
  std::set<ChunkId> held;
  ASSERT_NO_FATAL_FAILURE(MakePartial(*b_, &b_commit, &held));
  std::set<ChunkId> missing = Missing(held);
  ASSERT_GT(missing.size(), 10u);  // B really holds the model in part
  EXPECT_EQ(Has(*b_, std::vector<ChunkId>(missing.begin(), missing.end())),
            std::vector<bool>(missing.size(), false));

  for (const auto& f : files_) {
    ASSERT_OK_AND_ASSIGN(bool held_content, b_->HasContent(f.sha256, f.size));
    EXPECT_TRUE(held_content) << f.path;
    ASSERT_OK_AND_ASSIGN(bool wrong_size, b_->HasContent(f.sha256, f.size + 1));
    EXPECT_FALSE(wrong_size) << f.path;
  }
  // Same files, author and message: the import's very commit.
  EXPECT_EQ(b_commit, a_commit_);
  ASSERT_OK_AND_ASSIGN(GitOid head, b_->Resolve(*RepoId::Parse("org/moe"), "main"));
  EXPECT_EQ(head, b_commit);
  ASSERT_OK_AND_ASSIGN(auto b_files, b_->ListFiles(b_commit));
  ASSERT_EQ(b_files.size(), files_.size());
  for (size_t i = 0; i < files_.size(); ++i) {
    const FileEntry &fa = files_[i], &fb = b_files[i];
    EXPECT_EQ(fb.path, fa.path);
    EXPECT_EQ(fb.size, fa.size) << fa.path;
    EXPECT_EQ(fb.blob, fa.blob) << fa.path;
    EXPECT_EQ(fb.lfs, fa.lfs) << fa.path;
    EXPECT_EQ(fb.sha256, fa.sha256) << fa.path;
    ASSERT_OK_AND_ASSIGN(auto ta, a_->ListTensors(fa));
    ASSERT_OK_AND_ASSIGN(auto tb, b_->ListTensors(fb));
    ASSERT_EQ(tb.size(), ta.size()) << fa.path;
    if (IsSafetensors(fa.path)) {
      EXPECT_FALSE(tb.empty()) << fa.path;
    }
    for (size_t j = 0; j < ta.size(); ++j) {
      EXPECT_EQ(tb[j].name, ta[j].name) << fa.path;
      EXPECT_EQ(tb[j].dtype, ta[j].dtype) << ta[j].name;
      EXPECT_EQ(tb[j].shape, ta[j].shape) << ta[j].name;
      EXPECT_EQ(tb[j].begin, ta[j].begin) << ta[j].name;
      EXPECT_EQ(tb[j].end, ta[j].end) << ta[j].name;
    }
    ASSERT_OK_AND_ASSIGN(auto cb, b_->ListChunks(fb));
    const auto& ca = chunks_.at(fa.path);
    ASSERT_EQ(cb.size(), ca.size()) << fa.path;
    for (size_t j = 0; j < ca.size(); ++j) {
      EXPECT_EQ(cb[j].id, ca[j].id) << fa.path << " chunk " << j;
      EXPECT_EQ(cb[j].offset, ca[j].offset) << fa.path << " chunk " << j;
      EXPECT_EQ(cb[j].size, ca[j].size) << fa.path << " chunk " << j;
    }
  }
  ASSERT_OK_AND_ASSIGN(ExpertIndex want, a_->GetExpertIndex(a_commit_));
  ASSERT_OK_AND_ASSIGN(ExpertIndex got, b_->GetExpertIndex(b_commit));
  EXPECT_FALSE(want.empty());
  EXPECT_EQ(Flatten(got), Flatten(want));
  // A tensor is found by name though its bytes are elsewhere.
  ASSERT_OK_AND_ASSIGN(auto tensors, a_->ListTensors(LargestShard()));
  ASSERT_FALSE(tensors.empty());
  ASSERT_OK_AND_ASSIGN(TensorLocation loc, b_->FindTensor(b_commit, tensors.back().name));
  EXPECT_EQ(loc.file.path, LargestShard().path);
  EXPECT_EQ(loc.tensor.begin, tensors.back().begin);

  // GC keeps a committed partial model: nothing it holds is garbage, and it still counts as held.
  ASSERT_OK_AND_ASSIGN(GcResult gc, b_->CollectGarbage());
  EXPECT_EQ(gc.chunks_deleted, 0u);
  EXPECT_EQ(gc.files_deleted, 0u);
  for (const auto& f : files_) {
    ASSERT_OK_AND_ASSIGN(bool held_content, b_->HasContent(f.sha256, f.size));
    EXPECT_TRUE(held_content) << f.path;
  }
}

// 2. Without a source, a read that needs a missing chunk is Unavailable; the held header reads.
TEST_F(PartialTest, PartialReadWithoutSourceIsUnavailable) {
  GitOid b_commit;
  ASSERT_NO_FATAL_FAILURE(MakePartial(*b_, &b_commit));
  const FileEntry& shard = LargestShard();
  const auto& chunks = chunks_.at(shard.path);
  const std::string content = ReadWholeFile(src_ + "/" + shard.path);
  ASSERT_EQ(content.size(), shard.size);
  const uint64_t header = chunks[0].size;

  ASSERT_OK_AND_ASSIGN(auto reader, b_->OpenFile(shard));
  EXPECT_EQ(reader->size(), shard.size);
  ASSERT_OK_AND_ASSIGN(std::string head, reader->ReadToString(0, header));
  EXPECT_TRUE(head == content.substr(0, header));
  ASSERT_OK_AND_ASSIGN(std::string mid, reader->ReadToString(3, header - 5));
  EXPECT_TRUE(mid == content.substr(3, header - 5));

  // The whole file, a range inside chunk 2, and one starting in the header and running on.
  auto whole = reader->ReadToString(0, shard.size);
  EXPECT_EQ(whole.status().code(), StatusCode::kUnavailable) << whole.status().ToString();
  auto inner = reader->ReadToString(chunks[2].offset + 1, 10);
  EXPECT_EQ(inner.status().code(), StatusCode::kUnavailable) << inner.status().ToString();
  auto straddle = reader->ReadToString(header - 4, 8);
  EXPECT_EQ(straddle.status().code(), StatusCode::kUnavailable) << straddle.status().ToString();
  // The reader still serves the header after those failures; a fresh one too.
  ASSERT_OK_AND_ASSIGN(std::string again, reader->ReadToString(0, header));
  EXPECT_TRUE(again == content.substr(0, header));
  ASSERT_OK_AND_ASSIGN(auto fresh, b_->OpenFile(shard));
  auto fresh_inner = fresh->ReadToString(chunks[1].offset, 1);
  EXPECT_EQ(fresh_inner.status().code(), StatusCode::kUnavailable) << fresh_inner.status().ToString();
  ASSERT_OK_AND_ASSIGN(std::string fresh_head, fresh->ReadToString(0, 8));
  EXPECT_TRUE(fresh_head == content.substr(0, 8));

  // Fully held files read whole.
  for (const auto& f : files_) {
    if (IsSafetensors(f.path)) continue;
    ASSERT_OK_AND_ASSIGN(std::string got, ReadAll(*b_, f));
    EXPECT_TRUE(got == ReadWholeFile(src_ + "/" + f.path)) << f.path;
  }
  // An export needs every chunk.
  EXPECT_EQ(b_->Export(b_commit, dir_ / "export").code(), StatusCode::kUnavailable);
  // Nothing was stored by the failed reads.
  std::vector<ChunkId> rest;
  for (size_t i = 1; i < chunks.size(); ++i) rest.push_back(chunks[i].id);
  EXPECT_EQ(Has(*b_, rest), std::vector<bool>(rest.size(), false));
}

// 3a. A source fills in the missing chunks: the reads equal A's, the chunks are kept, and a second
// read asks the source for nothing.
TEST_F(PartialTest, PartialReadFetchesFromSourceAndKeepsChunks) {
  GitOid b_commit;
  std::set<ChunkId> held;
  ASSERT_NO_FATAL_FAILURE(MakePartial(*b_, &b_commit, &held));
  const std::set<ChunkId> missing = Missing(held);
  std::atomic<int> calls{0};
  b_->SetChunkSource(SourceFromA(&calls));

  for (const auto& f : files_) {
    ASSERT_OK_AND_ASSIGN(std::string want, ReadAll(*a_, f));
    ASSERT_OK_AND_ASSIGN(std::string got, ReadAll(*b_, f));
    EXPECT_EQ(got.size(), want.size()) << f.path;
    EXPECT_TRUE(got == want) << f.path;
    EXPECT_EQ(Sha256Of(got), f.sha256) << f.path;
  }
  // Each missing chunk was asked for once (a chunk repeated in the files is kept the first time).
  EXPECT_EQ(calls.load(), static_cast<int>(missing.size()));
  std::vector<ChunkId> all;
  for (const auto& f : files_) {
    for (const auto& c : chunks_.at(f.path)) all.push_back(c.id);
  }
  EXPECT_EQ(Has(*b_, all), std::vector<bool>(all.size(), true));
  // Kept as A keeps them: same codec for the same bytes (bf16 tensors by byte planes).
  for (const ChunkId& id : missing) {
    ASSERT_OK_AND_ASSIGN(std::string ra, a_->ReadChunkRecord(id));
    ASSERT_OK_AND_ASSIGN(std::string rb, b_->ReadChunkRecord(id));
    ASSERT_FALSE(ra.empty());
    ASSERT_FALSE(rb.empty());
    EXPECT_EQ(static_cast<int>(rb[0]), static_cast<int>(ra[0])) << "codec of chunk " << id.hex();
    EXPECT_OK(DecodeVerifiedChunk(id, rb).status());
  }

  // A second full read, and an export, make no further calls.
  const int after_first = calls.load();
  for (const auto& f : files_) {
    ASSERT_OK_AND_ASSIGN(std::string got, ReadAll(*b_, f));
    EXPECT_EQ(Sha256Of(got), f.sha256) << f.path;
  }
  std::string out_b = dir_ / "export-b", out_a = dir_ / "export-a";
  ASSERT_OK(b_->Export(b_commit, out_b));
  ASSERT_OK(a_->Export(a_commit_, out_a));
  EXPECT_EQ(ReadTree(out_b), ReadTree(out_a));
  EXPECT_EQ(calls.load(), after_first);

  // With the source cleared, reads of what is now held still work.
  b_->SetChunkSource(nullptr);
  ASSERT_OK_AND_ASSIGN(std::string again, ReadAll(*b_, LargestShard()));
  EXPECT_EQ(Sha256Of(again), LargestShard().sha256);
  EXPECT_EQ(calls.load(), after_first);
}

// 3b. A source that fails or lies: the read fails and nothing bad is kept; clearing the source
// brings back Unavailable; a good source afterwards works.
TEST_F(PartialTest, PartialSourceFailuresAreReported) {
  GitOid b_commit;
  ASSERT_NO_FATAL_FAILURE(MakePartial(*b_, &b_commit));
  const FileEntry& shard = LargestShard();
  const auto& chunks = chunks_.at(shard.path);
  std::vector<ChunkId> rest;
  for (size_t i = 1; i < chunks.size(); ++i) rest.push_back(chunks[i].id);
  const std::vector<bool> none(rest.size(), false);

  // Wrong bytes: one byte flipped.
  std::atomic<int> flipped_calls{0};
  b_->SetChunkSource(SourceFromA(&flipped_calls, [](std::string* raw) { (*raw)[raw->size() / 2] ^= 0x01; }));
  {
    auto r = ReadAll(*b_, shard);
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_GT(flipped_calls.load(), 0);
    ASSERT_OK_AND_ASSIGN(auto reader, b_->OpenFile(shard));
    auto one = reader->ReadToString(chunks[2].offset, chunks[2].size);
    EXPECT_EQ(one.status().code(), StatusCode::kDataLoss) << one.status().ToString();
  }
  EXPECT_EQ(Has(*b_, rest), none);
  EXPECT_EQ(b_->ReadChunkRecord(chunks[1].id).status().code(), StatusCode::kNotFound);

  // Wrong length: a byte appended, or one dropped.
  for (int extra : {1, -1}) {
    std::atomic<int> n{0};
    b_->SetChunkSource(SourceFromA(&n, [extra](std::string* raw) {
      if (extra > 0) raw->push_back('x');
      else raw->pop_back();
    }));
    auto r = ReadAll(*b_, shard);
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << "extra " << extra << ": " << r.status().ToString();
    EXPECT_GT(n.load(), 0);
    EXPECT_EQ(Has(*b_, rest), none);
  }

  // Another chunk's bytes (valid, but not this chunk).
  {
    std::atomic<int> n{0};
    Store* a = a_.get();
    ChunkId other = chunks[1].id;
    b_->SetChunkSource([&n, a, other](const ChunkId&, uint32_t) -> Result<std::string> {
      n.fetch_add(1);
      ASSIGN_OR_RETURN(std::string rec, a->ReadChunkRecord(other));
      return DecodeVerifiedChunk(other, rec);
    });
    ASSERT_OK_AND_ASSIGN(auto reader, b_->OpenFile(shard));
    auto r = reader->ReadToString(chunks[2].offset, chunks[2].size);
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_GT(n.load(), 0);
  }
  EXPECT_FALSE(Has(*b_, {chunks[2].id})[0]);

  // Nobody has it: Unavailable.
  std::atomic<int> unavailable_calls{0};
  b_->SetChunkSource([&](const ChunkId& id, uint32_t) -> Result<std::string> {
    unavailable_calls.fetch_add(1);
    return UnavailableError("no peer holds " + id.hex());
  });
  {
    auto r = ReadAll(*b_, shard);
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    EXPECT_GT(unavailable_calls.load(), 0);
  }
  EXPECT_EQ(Has(*b_, rest), none);

  // Cleared: Unavailable without asking anyone.
  b_->SetChunkSource(nullptr);
  const int before = unavailable_calls.load();
  {
    auto r = ReadAll(*b_, shard);
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  }
  EXPECT_EQ(unavailable_calls.load(), before);

  // A good source now serves the whole file.
  std::atomic<int> good_calls{0};
  b_->SetChunkSource(SourceFromA(&good_calls));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadAll(*b_, shard));
  EXPECT_TRUE(got == ReadWholeFile(src_ + "/" + shard.path));
  EXPECT_GT(good_calls.load(), 0);
  EXPECT_EQ(Has(*b_, rest), std::vector<bool>(rest.size(), true));
}

// 4. PutChunk stores only bytes that hash to the id, and is idempotent.
TEST_F(PartialTest, PartialPutChunkChecksTheId) {
  const FileEntry& shard = LargestShard();
  const auto& chunks = chunks_.at(shard.path);
  ASSERT_OK_AND_ASSIGN(std::string raw1, RawFromA(chunks[1].id));
  ASSERT_OK_AND_ASSIGN(std::string raw2, RawFromA(chunks[2].id));
  ASSERT_NE(chunks[1].id, chunks[2].id);

  // Another chunk's bytes, flipped bytes, a byte short: refused, nothing stored under either id.
  std::string flipped = raw1;
  flipped[0] ^= 0x40;
  for (const auto& bad : {raw2, flipped, raw1.substr(0, raw1.size() - 1), std::string()}) {
    EXPECT_EQ(b_->PutChunk(chunks[1].id, bad, ElementKindHint::k2Byte).code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Has(*b_, {chunks[1].id, chunks[2].id, ChunkIdOf(flipped)}), std::vector<bool>({false, false, false}));
  EXPECT_EQ(b_->ReadChunkRecord(chunks[1].id).status().code(), StatusCode::kNotFound);

  // The right bytes: stored, read back, and a second put is fine and changes nothing.
  ASSERT_OK(b_->PutChunk(chunks[1].id, raw1, ElementKindHint::k2Byte));
  ASSERT_OK_AND_ASSIGN(std::string rec, b_->ReadChunkRecord(chunks[1].id));
  ASSERT_OK_AND_ASSIGN(std::string back, DecodeVerifiedChunk(chunks[1].id, rec));
  EXPECT_TRUE(back == raw1);
  EXPECT_OK(b_->PutChunk(chunks[1].id, raw1, ElementKindHint::k2Byte));
  EXPECT_OK(b_->PutChunk(chunks[1].id, raw1, ElementKindHint::kBytes));
  ASSERT_OK_AND_ASSIGN(std::string rec2, b_->ReadChunkRecord(chunks[1].id));
  EXPECT_EQ(rec2, rec);
  // A wrong put after a good one leaves the good one.
  EXPECT_EQ(b_->PutChunk(chunks[1].id, raw2, ElementKindHint::kBytes).code(), StatusCode::kInvalidArgument);
  ASSERT_OK_AND_ASSIGN(std::string rec3, b_->ReadChunkRecord(chunks[1].id));
  EXPECT_EQ(rec3, rec);
  EXPECT_FALSE(Has(*b_, {chunks[2].id})[0]);

  // Any hint round-trips any length, odd tails included.
  int n = 0;
  for (size_t len : {size_t{1}, size_t{3}, size_t{4097}, size_t{4099}, size_t{65537}}) {
    std::string data(len, '\0');
    for (size_t i = 0; i < len; ++i) data[i] = static_cast<char>((i * 7 + i / 3) & 0xFF);
    for (auto hint : {ElementKindHint::kBytes, ElementKindHint::k2Byte, ElementKindHint::k4Byte}) {
      auto s = OpenStore("hint" + std::to_string(n++));
      ASSERT_TRUE(s);
      ChunkId id = ChunkIdOf(data);
      ASSERT_OK(s->PutChunk(id, data, hint));
      ASSERT_OK_AND_ASSIGN(std::string r, s->ReadChunkRecord(id));
      ASSERT_OK_AND_ASSIGN(std::string out, DecodeVerifiedChunk(id, r));
      EXPECT_TRUE(out == data) << "len " << len << " hint " << static_cast<int>(hint);
    }
  }
  // DecodeVerifiedChunk refuses a record under the wrong id.
  EXPECT_EQ(DecodeVerifiedChunk(chunks[2].id, rec).status().code(), StatusCode::kDataLoss);
}

// 5. What RecordContent refuses; nothing is recorded then.
TEST_F(PartialTest, PartialRecordContentRefusesBadChunkLists) {
  const FileEntry& shard = LargestShard();
  const std::vector<FileChunk>& good = chunks_.at(shard.path);
  ASSERT_GE(good.size(), 4u);
  const std::string content = ReadWholeFile(src_ + "/" + shard.path);
  auto held = [&](Store& s) {
    auto h = s.HasContent(shard.sha256, shard.size);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() && *h;
  };
  auto put_raw = [&](const std::string& raw) -> ChunkId {
    ChunkId id = ChunkIdOf(raw);
    EXPECT_OK(b_->PutChunk(id, raw, ElementKindHint::kBytes));
    return id;
  };

  // The header chunk not held (B holds nothing yet): FailedPrecondition.
  EXPECT_EQ(b_->RecordContent(ContentOf(shard, good)).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(held(*b_));
  ASSERT_OK(CopyChunk(*b_, good[0].id));

  std::vector<std::pair<std::string, PartialContent>> bad;
  {
    auto c = ContentOf(shard, good);  // a gap
    c.chunks[1].offset += 1;
    bad.emplace_back("gap", c);
  }
  {
    auto c = ContentOf(shard, good);  // an overlap
    c.chunks[2].offset -= 1;
    bad.emplace_back("overlap", c);
  }
  {
    auto c = ContentOf(shard, good);  // an empty chunk
    c.chunks.insert(c.chunks.begin() + 2, FileChunk{good[1].id, good[2].offset, 0});
    bad.emplace_back("empty chunk", c);
  }
  {
    auto c = ContentOf(shard, good);  // the last chunk missing
    c.chunks.pop_back();
    bad.emplace_back("short list", c);
  }
  {
    auto c = ContentOf(shard, good);  // size one more than the chunks
    c.size += 1;
    bad.emplace_back("size + 1", c);
  }
  {
    auto c = ContentOf(shard, good);  // size one less
    c.size -= 1;
    bad.emplace_back("size - 1", c);
  }
  {
    auto c = ContentOf(shard, good);  // chunks 1 and 2 merged
    c.chunks[1].size += c.chunks[2].size;
    c.chunks.erase(c.chunks.begin() + 2);
    bad.emplace_back("merged chunks", c);
  }
  {
    auto c = ContentOf(shard, good);  // the cut between chunks 1 and 2 moved (same count)
    c.chunks[1].size += 2;
    c.chunks[2].offset += 2;
    c.chunks[2].size -= 2;
    bad.emplace_back("moved cut", c);
  }
  {
    auto c = ContentOf(shard, good);  // the last chunk split in two
    FileChunk last = c.chunks.back();
    ASSERT_GE(last.size, 2u);
    c.chunks.back().size = 1;
    c.chunks.push_back(FileChunk{last.id, last.offset + 1, last.size - 1});
    bad.emplace_back("split chunk", c);
  }
  {
    // The first chunk is the header and the first tensor's bytes (held, real bytes).
    auto c = ContentOf(shard, good);
    ChunkId id = put_raw(content.substr(0, good[0].size + good[1].size));
    c.chunks[0] = FileChunk{id, 0, good[0].size + good[1].size};
    c.chunks.erase(c.chunks.begin() + 1);
    bad.emplace_back("header and more", c);
  }
  {
    // The first chunk is only part of the header; the next one holds the rest and a tensor.
    auto c = ContentOf(shard, good);
    uint32_t cut = 100;
    ASSERT_LT(cut, good[0].size);
    ChunkId h1 = put_raw(content.substr(0, cut));
    ChunkId h2 = put_raw(content.substr(cut, good[0].size - cut + good[1].size));
    c.chunks[0] = FileChunk{h1, 0, cut};
    c.chunks[1] = FileChunk{h2, cut, good[0].size - cut + good[1].size};
    bad.emplace_back("part of the header", c);
  }
  {
    // A first chunk too short to hold the length prefix.
    auto c = ContentOf(shard, good);
    ChunkId h1 = put_raw(content.substr(0, 4));
    ChunkId h2 = put_raw(content.substr(4, good[0].size - 4));
    c.chunks[0] = FileChunk{h1, 0, 4};
    c.chunks.insert(c.chunks.begin() + 1, FileChunk{h2, 4, good[0].size - 4});
    bad.emplace_back("four-byte first chunk", c);
  }
  for (const auto& [why, c] : bad) {
    EXPECT_EQ(b_->RecordContent(c).code(), StatusCode::kInvalidArgument) << why;
    EXPECT_FALSE(held(*b_)) << why;
  }
  // Another shard's header over this file's chunks: its tensors do not describe this file.
  for (const auto& f : files_) {
    if (!IsSafetensors(f.path) || f.path == shard.path) continue;
    const auto& other = chunks_.at(f.path);
    ASSERT_OK(CopyChunk(*b_, other[0].id));
    auto c = ContentOf(shard, good);
    c.chunks[0].id = other[0].id;
    Status s = b_->RecordContent(c);
    EXPECT_FALSE(s.ok()) << f.path;
    EXPECT_FALSE(held(*b_)) << f.path;
  }
  // A bad path.
  {
    auto c = ContentOf(shard, good);
    c.path = "../x.safetensors";
    EXPECT_EQ(b_->RecordContent(c).code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(held(*b_));
  }
  // A non-safetensors file is checked for gaps and size too.
  for (const auto& f : files_) {
    const auto& cs = chunks_.at(f.path);
    if (IsSafetensors(f.path) || cs.size() < 2) continue;
    auto c = ContentOf(f, cs);
    c.chunks[1].offset += 1;
    EXPECT_EQ(b_->RecordContent(c).code(), StatusCode::kInvalidArgument) << f.path;
    c = ContentOf(f, cs);
    c.size += 1;
    EXPECT_EQ(b_->RecordContent(c).code(), StatusCode::kInvalidArgument) << f.path;
    ASSERT_OK_AND_ASSIGN(bool h, b_->HasContent(f.sha256, f.size));
    EXPECT_FALSE(h) << f.path;
  }

  // The true list is accepted (the refusals above were for what they changed), twice.
  ASSERT_OK(b_->RecordContent(ContentOf(shard, good)));
  EXPECT_TRUE(held(*b_));
  EXPECT_OK(b_->RecordContent(ContentOf(shard, good)));
  ASSERT_OK_AND_ASSIGN(auto tensors, b_->ListTensors(shard));
  ASSERT_OK_AND_ASSIGN(auto want, a_->ListTensors(shard));
  EXPECT_EQ(tensors.size(), want.size());
}

// 6. Small sequential reads across many chunks, with read-ahead fetching from the source.
TEST_F(PartialTest, PartialSmallSequentialReadsThroughSource) {
  for (uint64_t step : {uint64_t{4096}, uint64_t{4093}}) {
    SCOPED_TRACE("step " + std::to_string(step));
    auto store = OpenStore("seq" + std::to_string(step));
    ASSERT_TRUE(store);
    GitOid commit;
    std::set<ChunkId> held;
    ASSERT_NO_FATAL_FAILURE(MakePartial(*store, &commit, &held));
    std::atomic<int> calls{0};
    store->SetChunkSource(SourceFromA(&calls));
    for (const auto& f : files_) {
      if (!IsSafetensors(f.path)) continue;
      const std::string want = ReadWholeFile(src_ + "/" + f.path);
      ASSERT_OK_AND_ASSIGN(auto reader, store->OpenFile(f));
      std::string got;
      int pieces = 0;
      for (uint64_t at = 0; at < f.size; at += step) {
        uint64_t n = std::min(step, f.size - at);
        ASSERT_OK(reader->Read(at, n, [&](std::string_view piece) {
          got.append(piece);
          return OkStatus();
        }));
        ++pieces;
      }
      EXPECT_GT(pieces, static_cast<int>(chunks_.at(f.path).size()));
      EXPECT_EQ(got.size(), want.size()) << f.path;
      EXPECT_TRUE(got == want) << f.path;
    }
    EXPECT_EQ(calls.load(), static_cast<int>(Missing(held).size()));
    // And backwards, from a fresh reader: everything is held now.
    const FileEntry& shard = LargestShard();
    const std::string want = ReadWholeFile(src_ + "/" + shard.path);
    ASSERT_OK_AND_ASSIGN(auto reader, store->OpenFile(shard));
    const int before = calls.load();
    for (uint64_t end = shard.size; end > 0;) {
      uint64_t n = std::min(step, end);
      ASSERT_OK_AND_ASSIGN(std::string piece, reader->ReadToString(end - n, n));
      EXPECT_TRUE(piece == want.substr(end - n, n)) << "at " << end - n;
      end -= n;
    }
    EXPECT_EQ(calls.load(), before);
  }
}

// Many readers of one partly held file at once share the (thread-safe) source; each reads A's bytes.
TEST_F(PartialTest, PartialConcurrentReadersThroughSource) {
  GitOid b_commit;
  ASSERT_NO_FATAL_FAILURE(MakePartial(*b_, &b_commit));
  std::atomic<int> calls{0};
  b_->SetChunkSource(SourceFromA(&calls));
  const FileEntry shard = LargestShard();
  const std::string want = ReadWholeFile(src_ + "/" + shard.path);
  std::vector<std::string> got(6);
  std::vector<Status> status(6);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      auto r = ReadAll(*b_, shard);
      status[t] = r.status();
      if (r.ok()) got[t] = std::move(*r);
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t) {
    EXPECT_OK(status[t]);
    EXPECT_TRUE(got[t] == want) << "reader " << t;
  }
  EXPECT_GT(calls.load(), 0);
  std::vector<ChunkId> ids;
  for (const auto& c : chunks_.at(shard.path)) ids.push_back(c.id);
  EXPECT_EQ(Has(*b_, ids), std::vector<bool>(ids.size(), true));
}

// RecordContent says a recorded .safetensors file may be committed. Content the store already
// holds under a plain record (the same bytes imported under another name, cut by content) must
// not make it return OK and then leave a record a .safetensors commit refuses (WriteContent's
// Finish upgrades such a record; see WriteTest.SafetensorsImportedUnderAnotherNameCanBeCommitted).
TEST_F(PartialTest, PartialRecordContentOverAPlainRecordCanBeCommitted) {
  const FileEntry& shard = LargestShard();
  const auto& chunks = chunks_.at(shard.path);
  std::string copy_dir = dir_ / "copy";
  testing::WriteFile(copy_dir + "/copy.bin", ReadWholeFile(src_ + "/" + shard.path));
  ImportOptions io;
  io.author = kAuthor;
  ASSERT_OK(b_->ImportDirectory(copy_dir, *RepoId::Parse("org/copy"), io).status());
  ASSERT_OK_AND_ASSIGN(bool before, b_->HasContent(shard.sha256, shard.size));
  ASSERT_TRUE(before);  // held, as a plain file

  ASSERT_OK(CopyChunk(*b_, chunks[0].id));
  ASSERT_OK(b_->RecordContent(ContentOf(shard, chunks)));
  CommitSpec spec;
  spec.changes = {PutOf(shard)};
  spec.author = kAuthor;
  spec.message = "Partial\n";
  auto wc = b_->WriteCommit(spec);
  ASSERT_TRUE(wc.ok()) << wc.status().ToString();
  ASSERT_OK_AND_ASSIGN(FileEntry f, b_->StatFile(wc->commit, shard.path));
  ASSERT_OK_AND_ASSIGN(auto tensors, b_->ListTensors(f));
  ASSERT_OK_AND_ASSIGN(auto want, a_->ListTensors(shard));
  EXPECT_EQ(tensors.size(), want.size());
}

}  // namespace
}  // namespace hubnode::store

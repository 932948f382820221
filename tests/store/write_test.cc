// The store's write API: content streamed in through a ContentWriter, commits built with
// WriteCommit and published with UpdateRef, and repo create / delete / move. Streamed content must
// be stored exactly as ImportDirectory stores the same file (same digests, chunks, tensors, expert
// index), whatever the sizes of the pieces it arrives in.
#include <algorithm>
#include <random>
#include <set>
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

const Signature kAuthor{"Writer", "writer@example.org", 1760000000, 60};

GitOid GitBlobOf(std::string_view content) {
  Sha1 sha1;
  sha1.Update("blob " + std::to_string(content.size()) + std::string(1, '\0'));
  sha1.Update(content);
  return sha1.Finish();
}

// Piece sizes covering `total` bytes. seed 0: one piece. Otherwise 1, 7, 4093, then sizes drawn
// from a fixed seed, mixing tiny, page-sized and large pieces.
std::vector<size_t> PieceSizes(size_t total, uint64_t seed) {
  std::vector<size_t> out;
  if (seed == 0) {
    out.push_back(total);
    return out;
  }
  std::mt19937_64 rng(seed);
  size_t done = 0;
  const size_t fixed[] = {1, 7, 4093};
  for (size_t i = 0; done < total; ++i) {
    size_t n;
    if (i < 3) {
      n = fixed[i];
    } else {
      switch (rng() % 3) {
        case 0: n = 1 + rng() % 16; break;
        case 1: n = 1 + rng() % 8192; break;
        default: n = 1 + rng() % 300000; break;
      }
    }
    n = std::min(n, total - done);
    out.push_back(n);
    done += n;
  }
  return out;
}

// A safetensors file built by hand: F32 tensors with the given data, in order, header padded with
// spaces to a multiple of 8.
std::string MakeSafetensors(const std::vector<std::pair<std::string, std::string>>& tensors) {
  std::string json = "{";
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, data] = tensors[i];
    if (i) json += ",";
    json += "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + std::to_string(data.size() / 4) +
            "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + data.size()) + "]}";
    offset += data.size();
  }
  json += "}";
  while (json.size() % 8) json.push_back(' ');
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((json.size() >> (8 * i)) & 0xFF));
  out += json;
  for (const auto& t : tensors) out += t.second;
  return out;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

FileChange Put(const std::string& path, const ContentInfo& info, bool lfs) {
  FileChange c;
  c.kind = FileChange::Kind::kPut;
  c.path = path;
  c.sha256 = info.sha256;
  c.size = info.size;
  c.lfs = lfs;
  c.git_blob = info.git_blob;
  return c;
}
FileChange Delete(const std::string& path) {
  FileChange c;
  c.kind = FileChange::Kind::kDelete;
  c.path = path;
  return c;
}
FileChange DeleteFolder(const std::string& path) {
  FileChange c;
  c.kind = FileChange::Kind::kDeleteFolder;
  c.path = path;
  return c;
}

CommitSpec Spec(std::optional<GitOid> parent, std::vector<FileChange> changes, const std::string& message = "Write\n") {
  CommitSpec s;
  s.parent = parent;
  s.changes = std::move(changes);
  s.author = kAuthor;
  s.message = message;
  return s;
}

void ExpectSameChunks(const std::vector<FileChunk>& a, const std::vector<FileChunk>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id) << what << " chunk " << i;
    EXPECT_EQ(a[i].offset, b[i].offset) << what << " chunk " << i;
    EXPECT_EQ(a[i].size, b[i].size) << what << " chunk " << i;
  }
}

void ExpectSameTensors(const std::vector<TensorInfo>& a, const std::vector<TensorInfo>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name) << what;
    EXPECT_EQ(a[i].dtype, b[i].dtype) << what << " " << a[i].name;
    EXPECT_EQ(a[i].shape, b[i].shape) << what << " " << a[i].name;
    EXPECT_EQ(a[i].begin, b[i].begin) << what << " " << a[i].name;
    EXPECT_EQ(a[i].end, b[i].end) << what << " " << a[i].name;
  }
}

void ExpectSameFiles(const std::vector<FileEntry>& a, const std::vector<FileEntry>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].path, b[i].path);
    EXPECT_EQ(a[i].size, b[i].size) << a[i].path;
    EXPECT_EQ(a[i].mode, b[i].mode) << a[i].path;
    EXPECT_EQ(a[i].blob, b[i].blob) << a[i].path;
    EXPECT_EQ(a[i].lfs, b[i].lfs) << a[i].path;
    EXPECT_EQ(a[i].sha256, b[i].sha256) << a[i].path;
    EXPECT_EQ(a[i].pointer_size, b[i].pointer_size) << a[i].path;
  }
}


class WriteTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenStore("data"); }

  // Small chunks, so tensors of the tiny test models are cut into several.
  std::unique_ptr<Store> OpenStore(const std::string& name) {
    Options o;
    o.data_dir = dir_ / name;
    o.max_chunk_size = 16 << 10;
    auto s = Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
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

  static ImportResult Import(Store& store, const std::string& src, const std::string& repo,
                             const std::string& message = "Import\n") {
    ImportOptions io;
    io.author = kAuthor;
    io.message = message;
    auto r = store.ImportDirectory(src, *RepoId::Parse(repo), io);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : ImportResult{};
  }

  // Streams `content` into `store` in pieces of PieceSizes(size, seed). Returns the first error of
  // NewContentWriter, Write or Finish.
  static Result<ContentInfo> Stream(Store& store, const std::string& path, std::string_view content, uint64_t seed,
                                    bool git_blob = true, std::optional<Sha256Digest> sha256 = std::nullopt,
                                    std::optional<uint64_t> announced = std::nullopt) {
    ContentSpec spec;
    spec.path = path;
    spec.size = announced.value_or(content.size());
    spec.sha256 = sha256;
    spec.git_blob = git_blob;
    ASSIGN_OR_RETURN(auto writer, store.NewContentWriter(spec));
    size_t at = 0;
    for (size_t n : PieceSizes(content.size(), seed)) {
      RETURN_IF_ERROR(writer->Write(content.substr(at, n)));
      at += n;
    }
    return writer->Finish();
  }
  Result<ContentInfo> Stream(const std::string& path, std::string_view content, uint64_t seed = 1) {
    return Stream(*store_, path, content, seed);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// 1. Safetensors streamed in odd pieces is stored exactly as an import stores it.
TEST_F(WriteTest, StreamedSafetensorsMatchesImport) {
  std::string src = Model(tm::Family::kOlmoe, "m", 3);
  auto ref = OpenStore("ref");
  ImportResult imp = Import(*ref, src, "t/imp");
  ASSERT_OK_AND_ASSIGN(auto imported, ref->ListFiles(imp.commit));
  // Piece patterns: one Write; 1, 7, 4093 then random; and another random draw. Each in a store
  // of its own, so the file records compared are the ones the stream wrote.
  for (uint64_t seed : {0, 1, 77}) {
    SCOPED_TRACE("piece seed " + std::to_string(seed));
    auto store = OpenStore("s" + std::to_string(seed));
    std::vector<FileChange> changes;
    int safetensors = 0, multi_chunk_tensors = 0;
    for (const FileEntry& f : imported) {
      std::string content = ReadWholeFile(src + "/" + f.path);
      ASSERT_OK_AND_ASSIGN(ContentInfo info,
                           Stream(*store, f.path, content, seed, /*git_blob=*/!f.lfs, Sha256Of(content)));
      EXPECT_EQ(info.sha256, f.sha256) << f.path;
      EXPECT_EQ(info.size, f.size) << f.path;
      if (!f.lfs) {
        EXPECT_EQ(info.git_blob, f.blob) << f.path;
      }
      ASSERT_OK_AND_ASSIGN(bool held, store->HasContent(info.sha256, info.size));
      EXPECT_TRUE(held) << f.path;
      ASSERT_OK_AND_ASSIGN(auto ref_chunks, ref->ListChunks(f));
      EXPECT_EQ(info.chunks, ref_chunks.size()) << f.path;
      if (f.path.ends_with(".safetensors")) {
        ++safetensors;
        for (const auto& c : ref_chunks) {
          if (c.size == (16u << 10)) ++multi_chunk_tensors;
        }
      }
      changes.push_back(Put(f.path, info, f.lfs));
    }
    EXPECT_GE(safetensors, 2);
    EXPECT_GT(multi_chunk_tensors, 0);  // some tensors are cut into several chunks
    ASSERT_OK_AND_ASSIGN(WrittenCommit wc, store->WriteCommit(Spec(std::nullopt, changes, "Import\n")));
    EXPECT_TRUE(wc.changed);
    EXPECT_EQ(wc.files, imported.size());
    // Same files, same author and message: the very commit the import made.
    EXPECT_EQ(wc.commit, imp.commit);
    ASSERT_OK_AND_ASSIGN(auto written, store->ListFiles(wc.commit));
    ExpectSameFiles(written, imported);
    for (size_t i = 0; i < written.size() && i < imported.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(auto got, store->ListChunks(written[i]));
      ASSERT_OK_AND_ASSIGN(auto want, ref->ListChunks(imported[i]));
      ExpectSameChunks(got, want, written[i].path);
      ASSERT_OK_AND_ASSIGN(auto got_t, store->ListTensors(written[i]));
      ASSERT_OK_AND_ASSIGN(auto want_t, ref->ListTensors(imported[i]));
      ExpectSameTensors(got_t, want_t, written[i].path);
      if (written[i].path.ends_with(".safetensors")) {
        EXPECT_FALSE(got_t.empty()) << written[i].path;
      }
    }
    std::string out = dir_ / ("export" + std::to_string(seed));
    ASSERT_OK(store->Export(wc.commit, out));
    EXPECT_EQ(ReadTree(out), ReadTree(src));
  }
}

// 2. A plain file: digests, chunks (content-defined cuts across piece boundaries) and read-back.
TEST_F(WriteTest, StreamedPlainFileDigestsAndReadBack) {
  // 600 KB: random runs with repeats, so the gear chunker cuts several chunks.
  std::string content;
  for (int i = 0; i < 12; ++i) content += RandomBytes(50000, i % 5);
  const std::string empty;
  ASSERT_OK_AND_ASSIGN(ContentInfo info, Stream("data/blob.txt", content, 5));
  EXPECT_EQ(info.sha256, Sha256Of(content));
  EXPECT_EQ(info.git_blob, GitBlobOf(content));
  EXPECT_EQ(info.size, content.size());
  EXPECT_GT(info.chunks, 3u);
  EXPECT_GT(info.new_chunks, 0u);
  EXPECT_LE(info.new_raw_bytes, content.size());
  ASSERT_OK_AND_ASSIGN(ContentInfo none, Stream("empty.txt", empty, 0));
  EXPECT_EQ(none.sha256, Sha256Of(""));
  EXPECT_EQ(none.git_blob.hex(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  EXPECT_EQ(none.chunks, 0u);
  // Without git_blob the id stays zero.
  ASSERT_OK_AND_ASSIGN(ContentInfo no_blob, Stream(*store_, "other.txt", "x", 1, /*git_blob=*/false));
  EXPECT_TRUE(no_blob.git_blob.IsZero());

  auto repo = *RepoId::Parse("t/plain");
  ASSERT_OK(store_->CreateRepo(repo, Visibility::kPublic));
  ASSERT_OK_AND_ASSIGN(WrittenCommit wc, store_->WriteCommit(Spec(std::nullopt, {Put("data/blob.txt", info, false),
                                                                                  Put("empty.txt", none, false)})));
  ASSERT_OK(store_->UpdateRef(repo, "refs/heads/main", GitOid(), wc.commit));
  ASSERT_OK_AND_ASSIGN(GitOid head, store_->Resolve(repo, "main"));
  EXPECT_EQ(head, wc.commit);
  ASSERT_OK_AND_ASSIGN(FileEntry f, store_->StatFile(head, "data/blob.txt"));
  EXPECT_FALSE(f.lfs);
  EXPECT_EQ(f.size, content.size());
  EXPECT_EQ(f.sha256, Sha256Of(content));
  EXPECT_EQ(f.blob, GitBlobOf(content));
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenFile(f));
  ASSERT_OK_AND_ASSIGN(std::string back, reader->ReadToString(0, f.size));
  EXPECT_TRUE(back == content);
  ASSERT_OK_AND_ASSIGN(FileEntry e, store_->StatFile(head, "empty.txt"));
  EXPECT_EQ(e.size, 0u);
  ASSERT_OK_AND_ASSIGN(auto er, store_->OpenFile(e));
  ASSERT_OK_AND_ASSIGN(std::string eb, er->ReadToString(0, 0));
  EXPECT_EQ(eb, "");

  // The chunks equal an import's of the same file, whatever the piece sizes.
  std::string src = dir_ / "plain";
  testing::WriteFile(src + "/data/blob.txt", content);
  auto ref = OpenStore("ref");
  ImportResult imp = Import(*ref, src, "t/imp");
  ASSERT_OK_AND_ASSIGN(FileEntry rf, ref->StatFile(imp.commit, "data/blob.txt"));
  EXPECT_EQ(rf.blob, f.blob);
  ASSERT_OK_AND_ASSIGN(auto want, ref->ListChunks(rf));
  ASSERT_OK_AND_ASSIGN(auto got, store_->ListChunks(f));
  ExpectSameChunks(got, want, f.path);
  for (uint64_t seed : {0, 9}) {
    auto s = OpenStore("p" + std::to_string(seed));
    ASSERT_OK_AND_ASSIGN(ContentInfo i2, Stream(*s, "data/blob.txt", content, seed));
    FileEntry probe = f;  // the record is found by content
    ASSERT_OK_AND_ASSIGN(auto got2, s->ListChunks(probe));
    ExpectSameChunks(got2, want, "seed " + std::to_string(seed));
    EXPECT_EQ(i2.chunks, want.size());
  }
}

// 3. What Write and Finish refuse; nothing is recorded then.
TEST_F(WriteTest, WriterRefusesBadContent) {
  const std::string content = RandomBytes(100000, 3);
  const Sha256Digest sha = Sha256Of(content);
  auto held = [&](const Sha256Digest& d, uint64_t size) {
    auto h = store_->HasContent(d, size);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() && *h;
  };

  // Wrong announced SHA-256.
  auto r = Stream(*store_, "a.txt", content, 1, true, Sha256Of("something else"));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_FALSE(held(sha, content.size()));
  // Fewer bytes than announced.
  r = Stream(*store_, "a.txt", content, 1, true, sha, content.size() + 1);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_FALSE(held(sha, content.size()));
  EXPECT_FALSE(held(sha, content.size() + 1));
  // More bytes than announced: the Write that goes past fails, and so does everything after it.
  {
    ContentSpec spec;
    spec.path = "a.txt";
    spec.size = 10;
    ASSERT_OK_AND_ASSIGN(auto w, store_->NewContentWriter(spec));
    EXPECT_OK(w->Write("0123456"));
    EXPECT_EQ(w->Write("7890").code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(w->Write("789").ok());
    EXPECT_FALSE(w->Finish().ok());
    EXPECT_FALSE(held(Sha256Of("0123456789"), 10));
    EXPECT_FALSE(held(Sha256Of("0123456"), 7));
  }
  // A finished writer takes nothing more.
  {
    ContentSpec spec;
    spec.path = "b.txt";
    spec.size = 3;
    ASSERT_OK_AND_ASSIGN(auto w, store_->NewContentWriter(spec));
    EXPECT_OK(w->Write("abc"));
    ASSERT_OK(w->Finish().status());
    EXPECT_FALSE(w->Write("").ok());
    EXPECT_FALSE(w->Finish().ok());
    EXPECT_TRUE(held(Sha256Of("abc"), 3));
    EXPECT_FALSE(held(Sha256Of("abc"), 4));  // content known, size wrong
  }
  // A bad path.
  ContentSpec bad_path;
  bad_path.path = "../x";
  EXPECT_EQ(store_->NewContentWriter(bad_path).status().code(), StatusCode::kInvalidArgument);

  // Corrupt safetensors, each streamed whole and in odd pieces.
  const std::string good = MakeSafetensors({{"a", RandomBytes(4096, 1)}, {"b", RandomBytes(64, 2)}});
  ASSERT_OK(Stream(*store_, "ok.safetensors", good, 3).status());  // the builder makes valid files
  std::vector<std::pair<std::string, std::string>> bad;
  {
    std::string s = good;  // header length beyond the file
    uint64_t n = good.size() + 100;
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    bad.emplace_back("header length beyond the file", s);
  }
  {
    std::string s = good;  // header length over the 100 MB limit
    uint64_t n = 200'000'000;
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
    bad.emplace_back("header length over the limit", s);
  }
  {
    std::string s = good;  // the JSON broken
    s[8] = '[';
    bad.emplace_back("not JSON", s);
  }
  bad.emplace_back("bytes after the last tensor", good + "12345678");
  bad.emplace_back("truncated data", good.substr(0, good.size() - 4));
  bad.emplace_back("shorter than the length prefix", good.substr(0, 5));
  {
    // Offsets that leave a hole.
    std::string json = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
    while (json.size() % 8) json.push_back(' ');
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((json.size() >> (8 * i)) & 0xFF));
    bad.emplace_back("hole before a tensor", s + json + "12345678");
  }
  for (const auto& [why, bytes] : bad) {
    for (uint64_t seed : {0, 1}) {
      auto rb = Stream(*store_, "m.safetensors", bytes, seed);
      EXPECT_EQ(rb.status().code(), StatusCode::kInvalidArgument) << why << " seed " << seed << ": " << rb.status().ToString();
      EXPECT_FALSE(held(Sha256Of(bytes), bytes.size())) << why;
    }
  }
  // The same bytes are fine as an ordinary file: only a .safetensors path must hold safetensors.
  for (const auto& [why, bytes] : bad) {
    auto rb = Stream(*store_, "m.bin", bytes, 1);
    EXPECT_OK(rb.status());
    if (rb.ok()) {
      EXPECT_EQ(rb->sha256, Sha256Of(bytes)) << why;
    }
  }
  // An empty .safetensors file is refused too (as ImportDirectory refuses it).
  EXPECT_EQ(Stream("e.safetensors", "", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(held(Sha256Of(""), 0));
}

// A .safetensors path in a commit must name content that parsed as safetensors: bytes uploaded
// under another name are not committed as a safetensors file unless they are one.
TEST_F(WriteTest, WriteCommitSafetensorsPathNeedsSafetensorsContent) {
  ASSERT_OK_AND_ASSIGN(ContentInfo junk, Stream("x.bin", "this is not a safetensors file"));
  EXPECT_EQ(store_->WriteCommit(Spec(std::nullopt, {Put("x.safetensors", junk, false)})).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->WriteCommit(Spec(std::nullopt, {Put("x.safetensors", junk, true)})).status().code(),
            StatusCode::kInvalidArgument);
  // The same content is fine under its own name.
  ASSERT_OK(store_->WriteCommit(Spec(std::nullopt, {Put("x.bin", junk, false)})).status());
  // A valid safetensors file uploaded under another name can be committed as one, with its tensors.
  const std::string good = MakeSafetensors({{"a", RandomBytes(64, 1)}});
  ASSERT_OK_AND_ASSIGN(ContentInfo g, Stream("upload.bin", good));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c, store_->WriteCommit(Spec(std::nullopt, {Put("g.safetensors", g, false)})));
  ASSERT_OK_AND_ASSIGN(TensorLocation loc, store_->FindTensor(c.commit, "a"));
  EXPECT_EQ(loc.file.path, "g.safetensors");
}

// 4. Commits from a parent and changes; publishing is a compare-and-swap of the ref.
TEST_F(WriteTest, WriteCommitChangesAndPublish) {
  auto repo = *RepoId::Parse("t/c");
  ASSERT_OK(store_->CreateRepo(repo, Visibility::kPublic));
  std::map<std::string, ContentInfo> up;
  std::map<std::string, std::string> text = {
      {"README.md", "# readme\n"}, {"a", "a file\n"},          {"dir/sub/z.txt", "z\n"},
      {"dir/w.txt", "w\n"},        {"keep/x.txt", "x\n"},      {"keep/y.txt", "y\n"},
  };
  for (const auto& [path, t] : text) {
    ASSERT_OK_AND_ASSIGN(up[path], Stream(path, t));
  }
  const std::string model = MakeSafetensors({{"w", RandomBytes(40000, 4)}});
  ASSERT_OK_AND_ASSIGN(ContentInfo mi, Stream(*store_, "model.safetensors", model, 2, /*git_blob=*/false));

  std::vector<FileChange> first;
  for (const auto& [path, t] : text) first.push_back(Put(path, up[path], false));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c1, store_->WriteCommit(Spec(std::nullopt, first, "First")));
  EXPECT_TRUE(c1.changed);
  EXPECT_EQ(c1.files, text.size());
  ASSERT_OK_AND_ASSIGN(CommitInfo ci1, store_->GetCommit(c1.commit));
  EXPECT_TRUE(ci1.parents.empty());
  EXPECT_EQ(ci1.message, "First\n");
  EXPECT_EQ(ci1.author.time, kAuthor.time);
  // Writing a commit moves no ref; the repo has none yet.
  ASSERT_OK_AND_ASSIGN(auto refs, store_->ListRefs(repo));
  EXPECT_TRUE(refs.empty());
  ASSERT_OK(store_->UpdateRef(repo, "refs/heads/main", GitOid(), c1.commit));
  ASSERT_OK_AND_ASSIGN(auto files1, store_->ListFiles(c1.commit));
  ASSERT_EQ(files1.size(), text.size());
  for (const auto& f : files1) {
    EXPECT_EQ(f.blob, GitBlobOf(text.at(f.path))) << f.path;
    EXPECT_FALSE(f.lfs);
  }

  // Second commit: delete a file, a folder (given with a trailing slash), put an LFS file.
  ASSERT_OK_AND_ASSIGN(WrittenCommit c2, store_->WriteCommit(Spec(c1.commit, {Delete("keep/x.txt"), DeleteFolder("dir/"),
                                                                              Put("model.safetensors", mi, true)})));
  EXPECT_TRUE(c2.changed);
  EXPECT_EQ(c2.files, 4u);
  ASSERT_OK_AND_ASSIGN(auto files2, store_->ListFiles(c2.commit));
  std::vector<std::string> paths;
  for (const auto& f : files2) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"README.md", "a", "keep/y.txt", "model.safetensors"}));
  ASSERT_OK_AND_ASSIGN(CommitInfo ci2, store_->GetCommit(c2.commit));
  EXPECT_EQ(ci2.parents, std::vector<GitOid>{c1.commit});
  EXPECT_EQ(ci2.message, "Write\n");
  ASSERT_OK_AND_ASSIGN(FileEntry mf, store_->StatFile(c2.commit, "model.safetensors"));
  EXPECT_TRUE(mf.lfs);
  EXPECT_EQ(mf.sha256, Sha256Of(model));
  EXPECT_EQ(mf.size, model.size());
  const std::string pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:" + Sha256Of(model).hex() +
                              "\nsize " + std::to_string(model.size()) + "\n";
  EXPECT_EQ(LfsPointerText(mf), pointer);
  EXPECT_EQ(mf.blob, GitBlobOf(pointer));
  EXPECT_EQ(mf.pointer_size, pointer.size());
  ASSERT_OK_AND_ASSIGN(auto mr, store_->OpenFile(mf));
  ASSERT_OK_AND_ASSIGN(std::string mb, mr->ReadToString(0, mf.size));
  EXPECT_TRUE(mb == model);
  ASSERT_OK_AND_ASSIGN(auto tensors, store_->ListTensors(mf));
  ASSERT_EQ(tensors.size(), 1u);
  EXPECT_EQ(tensors[0].name, "w");
  ASSERT_OK_AND_ASSIGN(TensorLocation loc, store_->FindTensor(c2.commit, "w"));
  EXPECT_EQ(loc.file.path, "model.safetensors");
  EXPECT_EQ(store_->StatFile(c2.commit, "keep/x.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->StatPath(c2.commit, "dir").status().code(), StatusCode::kNotFound);
  // Unchanged files keep their blobs.
  ASSERT_OK_AND_ASSIGN(FileEntry y, store_->StatFile(c2.commit, "keep/y.txt"));
  EXPECT_EQ(y.blob, GitBlobOf("y\n"));

  // Errors, against c2.
  auto code = [&](std::vector<FileChange> changes) {
    return store_->WriteCommit(Spec(c2.commit, std::move(changes))).status().code();
  };
  ContentInfo missing = up["README.md"];
  missing.sha256 = Sha256Of("never uploaded");
  EXPECT_EQ(code({Put("new.txt", missing, false)}), StatusCode::kNotFound);
  ContentInfo wrong_size = up["README.md"];
  wrong_size.size += 1;
  EXPECT_EQ(code({Put("new.txt", wrong_size, false)}), StatusCode::kNotFound);
  EXPECT_EQ(code({Put("a/b", up["README.md"], false)}), StatusCode::kInvalidArgument);     // "a" is a file
  EXPECT_EQ(code({Put("a/b/c", up["README.md"], false)}), StatusCode::kInvalidArgument);   // deeper too
  EXPECT_EQ(code({Put("keep", up["README.md"], false)}), StatusCode::kInvalidArgument);    // "keep" is a folder
  EXPECT_EQ(code({Put("n/m", up["README.md"], false), Put("n", up["README.md"], false)}),  // a clash within the commit
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({Put("../x", up["README.md"], false)}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({Put(".git/config", up["README.md"], false)}), StatusCode::kInvalidArgument);
  ContentInfo no_blob = up["README.md"];
  no_blob.git_blob = GitOid();
  EXPECT_EQ(code({Put("new.txt", no_blob, false)}), StatusCode::kInvalidArgument);         // a regular file needs it
  EXPECT_EQ(code({Delete("missing.txt")}), StatusCode::kNotFound);
  EXPECT_EQ(code({Delete("keep/x.txt")}), StatusCode::kNotFound);                           // deleted in c2
  EXPECT_EQ(code({Delete("keep")}), StatusCode::kNotFound);                                 // a folder, not a file
  EXPECT_EQ(code({DeleteFolder("nope")}), StatusCode::kNotFound);
  EXPECT_EQ(code({DeleteFolder("a")}), StatusCode::kNotFound);                              // a file, not a folder
  EXPECT_EQ(code({Delete("README.md"), Delete("README.md")}), StatusCode::kNotFound);
  EXPECT_EQ(store_->WriteCommit(Spec(*GitOid::FromHex(std::string(40, 'b')), {})).status().code(),
            StatusCode::kNotFound);  // no such parent

  // No effective change: the parent comes back.
  for (auto changes : std::vector<std::vector<FileChange>>{
           {}, {Put("README.md", up["README.md"], false)}, {Delete("README.md"), Put("README.md", up["README.md"], false)}}) {
    ASSERT_OK_AND_ASSIGN(WrittenCommit same, store_->WriteCommit(Spec(c2.commit, changes)));
    EXPECT_FALSE(same.changed);
    EXPECT_EQ(same.commit, c2.commit);
    EXPECT_EQ(same.files, 4u);
  }
  // But turning a regular file into an LFS one with the same content is a change.
  ASSERT_OK_AND_ASSIGN(WrittenCommit to_lfs, store_->WriteCommit(Spec(c2.commit, {Put("README.md", up["README.md"], true)})));
  EXPECT_TRUE(to_lfs.changed);
  ASSERT_OK_AND_ASSIGN(FileEntry rl, store_->StatFile(to_lfs.commit, "README.md"));
  EXPECT_TRUE(rl.lfs);

  // Publishing: the ref still holds c1; a stale expectation fails and changes nothing.
  EXPECT_EQ(*store_->Resolve(repo, "main"), c1.commit);
  ASSERT_OK(store_->UpdateRef(repo, "refs/heads/main", c1.commit, c2.commit));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c3, store_->WriteCommit(Spec(c2.commit, {Delete("a")})));
  EXPECT_EQ(store_->UpdateRef(repo, "refs/heads/main", c1.commit, c3.commit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->UpdateRef(repo, "refs/heads/main", GitOid(), c3.commit).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(*store_->Resolve(repo, "main"), c2.commit);
  ASSERT_OK(store_->UpdateRef(repo, "refs/heads/main", c2.commit, c3.commit));
  ASSERT_OK_AND_ASSIGN(auto log, store_->Log(c3.commit, 10));
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[2].id, c1.commit);
}

// 5. A fine-tune streamed after its base stores only the chunks of the tensors it changed.
TEST_F(WriteTest, WriteFinetuneStoresOnlyChangedTensors) {
  std::string base = Model(tm::Family::kOlmoe, "base", 1);
  ImportResult rb = Import(*store_, base, "org/base");
  ASSERT_OK_AND_ASSIGN(auto base_files, store_->ListFiles(rb.commit));
  std::set<ChunkId> base_chunks;
  for (const auto& f : base_files) {
    ASSERT_OK_AND_ASSIGN(auto chunks, store_->ListChunks(f));
    for (const auto& c : chunks) base_chunks.insert(c.id);
  }
  const FileEntry* shard = nullptr;
  for (const auto& f : base_files) {
    if (f.path.ends_with(".safetensors")) shard = &f;
  }
  ASSERT_NE(shard, nullptr);
  ASSERT_OK_AND_ASSIGN(auto tensors, store_->ListTensors(*shard));
  ASSERT_GE(tensors.size(), 10u);

  // Negate every weight of every tenth weight matrix (the data section only; the header stays).
  // Flipping the sign bit changes every element and keeps the data as compressible as it was.
  // Matrices only: rank-1 tensors (norms) may hold equal values in several tensors.
  std::string content = ReadWholeFile(base + "/" + shard->path);
  std::vector<std::pair<uint64_t, uint64_t>> changed;
  size_t matrices = 0;
  for (const TensorInfo& t : tensors) {
    if (t.shape.size() != 2) continue;
    ASSERT_EQ(t.dtype, "BF16");
    if (matrices++ % 10 != 3) continue;
    for (uint64_t b = t.begin + 1; b < t.end; b += 2) content[b] = static_cast<char>(content[b] ^ 0x80);
    changed.emplace_back(t.begin, t.end);
  }
  ASSERT_FALSE(changed.empty());

  ASSERT_OK_AND_ASSIGN(ContentInfo info, Stream(*store_, shard->path, content, 21, false, Sha256Of(content)));
  ASSERT_OK(store_->CreateRepo(*RepoId::Parse("org/ft"), Visibility::kPublic));
  ASSERT_OK_AND_ASSIGN(WrittenCommit wc, store_->WriteCommit(Spec(rb.commit, {Put(shard->path, info, true)})));
  ASSERT_OK_AND_ASSIGN(FileEntry ft, store_->StatFile(wc.commit, shard->path));
  ASSERT_OK_AND_ASSIGN(auto ft_chunks, store_->ListChunks(ft));
  EXPECT_EQ(info.chunks, ft_chunks.size());

  // Expected: the distinct chunks of the new file that the base lacks, which must be exactly the
  // chunks lying inside the changed tensors.
  std::map<ChunkId, uint32_t> fresh;
  uint64_t in_changed = 0;
  for (const auto& c : ft_chunks) {
    bool inside = std::any_of(changed.begin(), changed.end(), [&](const auto& r) {
      return c.offset >= r.first && c.offset + c.size <= r.second;
    });
    bool overlaps = std::any_of(changed.begin(), changed.end(), [&](const auto& r) {
      return c.offset < r.second && c.offset + c.size > r.first;
    });
    EXPECT_EQ(inside, overlaps) << "chunk at " << c.offset << " straddles a tensor boundary";
    EXPECT_EQ(inside, !base_chunks.count(c.id)) << "chunk at " << c.offset;
    if (inside) ++in_changed;
    if (!base_chunks.count(c.id)) fresh[c.id] = c.size;
  }
  uint64_t fresh_bytes = 0;
  for (const auto& [id, size] : fresh) fresh_bytes += size;
  uint64_t changed_bytes = 0;
  for (const auto& [b, e] : changed) changed_bytes += e - b;
  EXPECT_EQ(in_changed, fresh.size());
  EXPECT_EQ(fresh_bytes, changed_bytes);
  EXPECT_EQ(info.new_chunks, fresh.size());
  EXPECT_EQ(info.new_raw_bytes, fresh_bytes);
  EXPECT_GT(info.new_stored_bytes, 0u);
  EXPECT_LT(info.new_stored_bytes, info.new_raw_bytes);  // bf16 weights compress

  // Streaming it again stores nothing new.
  ASSERT_OK_AND_ASSIGN(ContentInfo again, Stream(*store_, shard->path, content, 0, false));
  EXPECT_EQ(again.new_chunks, 0u);
  EXPECT_EQ(again.new_raw_bytes, 0u);
  EXPECT_EQ(again.chunks, info.chunks);
}

// 6. Repo create / delete / move.
TEST_F(WriteTest, WriteRepoCreateDeleteMove) {
  auto a = *RepoId::Parse("t/a"), a2 = *RepoId::Parse("t/a2"), b = *RepoId::Parse("t/b"), c = *RepoId::Parse("u/c");
  ASSERT_OK(store_->CreateRepo(a, Visibility::kPrivate));
  EXPECT_EQ(store_->CreateRepo(a, Visibility::kPublic).code(), StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(RepoInfo ai, store_->GetRepo(a));
  EXPECT_EQ(ai.visibility, Visibility::kPrivate);  // the second create changed nothing
  EXPECT_GT(ai.created, 0);
  ASSERT_OK_AND_ASSIGN(auto none, store_->ListRefs(a));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(store_->Resolve(a, "main").status().code(), StatusCode::kNotFound);
  // A repo an import made exists too.
  std::string src = dir_ / "src";
  testing::WriteFile(src + "/f.txt", "f\n");
  Import(*store_, src, "t/imported");
  EXPECT_EQ(store_->CreateRepo(*RepoId::Parse("t/imported"), Visibility::kPublic).code(), StatusCode::kAlreadyExists);

  ASSERT_OK_AND_ASSIGN(ContentInfo fi, Stream("f.txt", "f\n"));
  ASSERT_OK_AND_ASSIGN(WrittenCommit wc, store_->WriteCommit(Spec(std::nullopt, {Put("f.txt", fi, false)})));
  for (const auto& r : {a, a2, b}) {
    if (r.str() != a.str()) ASSERT_OK(store_->CreateRepo(r, Visibility::kGated));
    ASSERT_OK(store_->UpdateRef(r, "refs/heads/main", GitOid(), wc.commit));
    ASSERT_OK(store_->UpdateRef(r, "refs/tags/v1", GitOid(), wc.commit));
    ASSERT_OK(store_->UpdateRef(r, "refs/pr/1", GitOid(), wc.commit));
  }

  // Delete: record and refs go; a repo whose name extends this one keeps its refs.
  ASSERT_OK(store_->DeleteRepo(a));
  EXPECT_EQ(store_->GetRepo(a).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListRefs(a).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve(a, "main").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteRepo(a).code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(auto a2refs, store_->ListRefs(a2));
  EXPECT_EQ(a2refs.size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto repos, store_->ListRepos());
  for (const auto& r : repos) EXPECT_NE(r.id.str(), "t/a");
  // Content stays until GC: the commit is still readable.
  EXPECT_OK(store_->GetCommit(wc.commit).status());
  // Created again, it starts without refs.
  ASSERT_OK(store_->CreateRepo(a, Visibility::kPublic));
  ASSERT_OK_AND_ASSIGN(auto fresh, store_->ListRefs(a));
  EXPECT_TRUE(fresh.empty());

  // Move: refs and record go to the new name.
  ASSERT_OK_AND_ASSIGN(RepoInfo bi, store_->GetRepo(b));
  ASSERT_OK_AND_ASSIGN(auto brefs, store_->ListRefs(b));
  ASSERT_OK(store_->MoveRepo(b, c));
  EXPECT_EQ(store_->GetRepo(b).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListRefs(b).status().code(), StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(RepoInfo moved, store_->GetRepo(c));
  EXPECT_EQ(moved.id.str(), "u/c");
  EXPECT_EQ(moved.visibility, Visibility::kGated);
  EXPECT_EQ(moved.created, bi.created);
  EXPECT_EQ(moved.default_branch, bi.default_branch);
  ASSERT_OK_AND_ASSIGN(auto crefs, store_->ListRefs(c));
  ASSERT_EQ(crefs.size(), brefs.size());
  for (size_t i = 0; i < crefs.size(); ++i) {
    EXPECT_EQ(crefs[i].name, brefs[i].name);
    EXPECT_EQ(crefs[i].commit, brefs[i].commit);
  }
  EXPECT_EQ(*store_->Resolve(c, "main"), wc.commit);
  EXPECT_EQ(*store_->Resolve(c, "v1"), wc.commit);
  // Nothing is left under the old name: created again, it has no refs.
  ASSERT_OK(store_->CreateRepo(b, Visibility::kPublic));
  ASSERT_OK_AND_ASSIGN(auto bleft, store_->ListRefs(b));
  EXPECT_TRUE(bleft.empty());
  ASSERT_OK(store_->DeleteRepo(b));
  // Onto an existing repo: AlreadyExists, and both stay as they were.
  EXPECT_EQ(store_->MoveRepo(c, a2).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->MoveRepo(c, c).code(), StatusCode::kAlreadyExists);
  ASSERT_OK_AND_ASSIGN(auto crefs2, store_->ListRefs(c));
  EXPECT_EQ(crefs2.size(), 3u);
  ASSERT_OK_AND_ASSIGN(auto a2refs2, store_->ListRefs(a2));
  EXPECT_EQ(a2refs2.size(), 3u);
  // From a missing repo: NotFound.
  EXPECT_EQ(store_->MoveRepo(b, *RepoId::Parse("t/z")).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRepo(*RepoId::Parse("t/z")).status().code(), StatusCode::kNotFound);
  // Moving back restores the old name.
  ASSERT_OK(store_->MoveRepo(c, b));
  EXPECT_EQ(*store_->Resolve(b, "refs/pr/1"), wc.commit);
}

// 7. WriteCommit writes the expert index an import of the same files would.
TEST_F(WriteTest, WriteCommitExpertIndexMatchesImport) {
  for (auto family : {tm::Family::kMixtral, tm::Family::kOlmoe}) {
    std::string name(tm::FamilyName(family));
    SCOPED_TRACE(name);
    std::string src = Model(family, name, 5);
    auto ref = OpenStore("ref-" + name);
    ImportResult imp = Import(*ref, src, "t/" + name);
    ASSERT_OK_AND_ASSIGN(ExpertIndex want, ref->GetExpertIndex(imp.commit));
    ASSERT_FALSE(want.empty());
    ASSERT_OK_AND_ASSIGN(auto files, ref->ListFiles(imp.commit));

    // Upload everything; commit all but the last shard, then the last shard on top.
    std::vector<FileChange> first, second;
    std::string last_shard;
    for (const auto& f : files) {
      if (f.path.ends_with(".safetensors")) last_shard = f.path;
    }
    ASSERT_FALSE(last_shard.empty());
    for (const auto& f : files) {
      std::string content = ReadWholeFile(src + "/" + f.path);
      ASSERT_OK_AND_ASSIGN(ContentInfo info, Stream(*store_, f.path, content, 31, !f.lfs));
      (f.path == last_shard ? second : first).push_back(Put(f.path, info, f.lfs));
    }
    ASSERT_OK_AND_ASSIGN(WrittenCommit c1, store_->WriteCommit(Spec(std::nullopt, first, "part 1")));
    ASSERT_OK_AND_ASSIGN(WrittenCommit c2, store_->WriteCommit(Spec(c1.commit, second, "part 2")));
    ASSERT_OK_AND_ASSIGN(ExpertIndex got, store_->GetExpertIndex(c2.commit));
    EXPECT_EQ(Flatten(got), Flatten(want));

    // The first commit indexes only the parts of the shards it holds.
    auto without = [&](const ExpertIndex& idx, const std::string& path) {
      FlatIndex out;
      for (const auto& [k, parts] : Flatten(idx)) {
        for (const auto& p : parts) {
          if (std::get<0>(p) != path) out[k].push_back(p);
        }
      }
      return out;
    };
    ASSERT_OK_AND_ASSIGN(ExpertIndex got1, store_->GetExpertIndex(c1.commit));
    EXPECT_EQ(Flatten(got1), without(want, last_shard));
    EXPECT_NE(Flatten(got1), Flatten(want));
    // Deleting a shard drops its parts.
    ASSERT_OK_AND_ASSIGN(WrittenCommit c3, store_->WriteCommit(Spec(c2.commit, {Delete(last_shard)}, "part 3")));
    ASSERT_OK_AND_ASSIGN(ExpertIndex got3, store_->GetExpertIndex(c3.commit));
    EXPECT_EQ(Flatten(got3), without(want, last_shard));
    // Changing a non-safetensors file keeps the index.
    ASSERT_OK_AND_ASSIGN(ContentInfo note, Stream("NOTES.md", "notes\n"));
    ASSERT_OK_AND_ASSIGN(WrittenCommit c4, store_->WriteCommit(Spec(c2.commit, {Put("NOTES.md", note, false)}, "part 4")));
    ASSERT_OK_AND_ASSIGN(ExpertIndex got4, store_->GetExpertIndex(c4.commit));
    EXPECT_EQ(Flatten(got4), Flatten(want));
  }
}

}  // namespace
}  // namespace hubnode::store

// Regression tests for bugs a review of the write API found (each failed before its fix).
namespace hubnode::store {
namespace {

// WriteCommit trusts FileChange::git_blob and writes the blob object under it, over whatever the
// store holds under that id: another file's blob, or a commit.
TEST_F(WriteTest, WriteCommitRefusesAWrongGitBlob) {
  ASSERT_OK_AND_ASSIGN(ContentInfo readme, Stream("README.md", "readme\n"));
  ASSERT_OK_AND_ASSIGN(ContentInfo other, Stream("x.txt", "something else entirely\n"));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c1, store_->WriteCommit(Spec(std::nullopt, {Put("README.md", readme, false)})));
  ContentInfo lie = other;
  lie.git_blob = readme.git_blob;
  EXPECT_EQ(store_->WriteCommit(Spec(c1.commit, {Put("x.txt", lie, false)})).status().code(),
            StatusCode::kInvalidArgument);
  lie.git_blob = c1.commit;
  EXPECT_EQ(store_->WriteCommit(Spec(std::nullopt, {Put("y.txt", lie, false)})).status().code(),
            StatusCode::kInvalidArgument);
  // Whatever was refused, c1 still reads as it was written.
  ASSERT_OK_AND_ASSIGN(FileEntry f, store_->StatFile(c1.commit, "README.md"));
  ASSERT_OK_AND_ASSIGN(auto reader, store_->OpenFile(f));
  EXPECT_EQ(*reader->ReadToString(0, f.size), "readme\n");
}

// File records are keyed by content and the first one written is kept. A valid safetensors file
// an import stored under another name (a plain record, cut by content) is then refused as a
// .safetensors file, even when streamed again under that name.
TEST_F(WriteTest, SafetensorsImportedUnderAnotherNameCanBeCommitted) {
  const std::string good = MakeSafetensors({{"a", RandomBytes(64, 1)}});
  std::string src = dir_ / "src";
  testing::WriteFile(src + "/copy.bin", good);
  Import(*store_, src, "t/i");
  ASSERT_OK_AND_ASSIGN(ContentInfo g, Stream("g.safetensors", good));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c, store_->WriteCommit(Spec(std::nullopt, {Put("g.safetensors", g, false)})));
  EXPECT_OK(store_->FindTensor(c.commit, "a").status());
}

// ContentInfo::new_chunks counts chunks the store did not hold; a chunk repeated within one upload
// is stored once but counted by every pool task that raced past the Has check.
TEST_F(WriteTest, NewChunksCountsEachChunkOnce) {
  std::vector<std::pair<std::string, std::string>> tensors;
  const std::string same = RandomBytes(4096, 9);
  for (int i = 0; i < 200; ++i) tensors.emplace_back("t" + std::to_string(1000 + i), same);
  const std::string file = MakeSafetensors(tensors);  // header + 200 identical 4 KiB chunks
  for (int round = 0; round < 5; ++round) {
    Options o;
    o.data_dir = dir_ / ("dup" + std::to_string(round));
    o.max_chunk_size = 4096;
    o.ingest_threads = 8;
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
    ASSERT_OK_AND_ASSIGN(ContentInfo info, Stream(*store, "d.safetensors", file, round + 1));
    EXPECT_EQ(info.chunks, 201u);
    EXPECT_EQ(info.new_chunks, 2u) << "round " << round;
    EXPECT_EQ(info.new_raw_bytes, file.size() - 200 * 4096 + 4096) << "round " << round;
  }
}

// A regular file whose content is an LFS pointer has the same git blob id as the LFS file it
// points at; committing it rewrites that blob object, and the LFS file (in any repo) turns into a
// small regular file.
TEST_F(WriteTest, RegularPointerTextLeavesLfsFilesAlone) {
  const std::string model = MakeSafetensors({{"w", RandomBytes(40000, 4)}});
  ASSERT_OK_AND_ASSIGN(ContentInfo mi, Stream("model.safetensors", model));
  ASSERT_OK_AND_ASSIGN(WrittenCommit c1, store_->WriteCommit(Spec(std::nullopt, {Put("model.safetensors", mi, true)})));
  ASSERT_OK_AND_ASSIGN(FileEntry before, store_->StatFile(c1.commit, "model.safetensors"));
  ASSERT_OK_AND_ASSIGN(ContentInfo pi, Stream("pointer.txt", LfsPointerText(before)));
  (void)store_->WriteCommit(Spec(std::nullopt, {Put("pointer.txt", pi, false)}));
  ASSERT_OK_AND_ASSIGN(FileEntry after, store_->StatFile(c1.commit, "model.safetensors"));
  EXPECT_TRUE(after.lfs);
  EXPECT_EQ(after.size, model.size());
}

}  // namespace
}  // namespace hubnode::store

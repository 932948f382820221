// The ids hubnode computes must equal what the git CLI computes for the same content.
#include "store/git_objects.h"

#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "base/bytes.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::RunShell;
using hubnode::testing::TempDir;
namespace fs = std::filesystem;

std::string SmallSafetensors() {
  std::string json = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::string out;
  PutFixed64(&out, json.size());
  out += json;
  for (int i = 0; i < 16; ++i) out.push_back(static_cast<char>(i));
  return out;
}

// Writes the model directory; returns path -> content.
void WriteModel(const std::string& dir, const std::string& readme) {
  testing::WriteFile(dir + "/README.md", readme);
  testing::WriteFile(dir + "/config.json", "{\"model_type\": \"olmoe\"}\n");
  testing::WriteFile(dir + "/sub/dir/notes.txt", "nested\n");
  testing::WriteFile(dir + "/sub/a-b.txt", "sorting vs sub/dir\n");
  testing::WriteFile(dir + "/sub.txt", "sorts before sub/ in git order\n");
  testing::WriteFile(dir + "/run.sh", "#!/bin/sh\necho hi\n");
  ::chmod((dir + "/run.sh").c_str(), 0755);
  testing::WriteFile(dir + "/model.safetensors", SmallSafetensors());
  testing::WriteFile(dir + "/big.txt", std::string((10u << 20) + 5, 'z'));  // LFS by size
}

// A git checkout of the same content, LFS files replaced by their pointer files.
void MirrorAsGit(const std::string& src, const std::string& git) {
  for (const auto& e : fs::recursive_directory_iterator(src)) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), src).string();
    std::string content = testing::ReadWholeFile(e.path().string());
    if (ShouldStoreAsLfs(rel, content.size())) content = LfsPointer(Sha256Of(content), content.size());
    testing::WriteFile(git + "/" + rel, content);
    ::chmod((git + "/" + rel).c_str(), (fs::status(e.path()).permissions() & fs::perms::owner_exec) != fs::perms::none ? 0755 : 0644);
  }
}

std::string GitCommit(const std::string& git, const std::string& msg, int64_t date) {
  std::string env = "GIT_AUTHOR_NAME='Ada Lovelace' GIT_AUTHOR_EMAIL=ada@example.org GIT_AUTHOR_DATE='@" +
                    std::to_string(date) + " +0000' GIT_COMMITTER_NAME='Ada Lovelace' "
                    "GIT_COMMITTER_EMAIL=ada@example.org GIT_COMMITTER_DATE='@" + std::to_string(date) + " +0000' ";
  auto r = RunShell("cd '" + git + "' && (test -d .git || git init -q) && git add -A && " + env +
                    "git -c commit.gpgsign=false -c core.fileMode=true commit -q -m '" + msg +
                    "' && git rev-parse HEAD");
  EXPECT_EQ(r.exit_code, 0);
  return r.out.substr(0, 40);
}

TEST(GitObjectsTest, IdsEqualTheGitCli) {
  if (RunShell("git --version >/dev/null 2>&1").exit_code != 0) GTEST_SKIP() << "git not installed";
  TempDir dir;
  std::string src = dir / "model", git = dir / "git";
  WriteModel(src, "# v1\n");
  MirrorAsGit(src, git);

  Options o;
  o.data_dir = dir / "data";
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok());
  auto repo = *RepoId::Parse("ada/model");
  ImportOptions io;
  io.message = "First import";
  io.author = Signature{"Ada Lovelace", "ada@example.org", 1700000000, 0};
  auto r1 = (*store)->ImportDirectory(src, repo, io);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  std::string git1 = GitCommit(git, "First import", 1700000000);
  EXPECT_EQ(r1->commit.hex(), git1);

  // Tree id and every blob id, entry by entry.
  auto tree = RunShell("cd '" + git + "' && git rev-parse 'HEAD^{tree}'");
  auto c = (*store)->GetCommit(r1->commit);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tree.hex(), tree.out.substr(0, 40));
  auto ls = RunShell("cd '" + git + "' && git ls-tree -r HEAD");
  auto files = (*store)->ListFiles(r1->commit);
  ASSERT_TRUE(files.ok());
  std::ostringstream ours;
  for (const auto& f : *files) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%06o", f.mode);
    ours << mode << " blob " << f.blob.hex() << "\t" << f.path << "\n";
  }
  EXPECT_EQ(ours.str(), ls.out);
  for (const auto& f : *files) {
    EXPECT_EQ(f.lfs, f.path == "model.safetensors" || f.path == "big.txt") << f.path;
  }

  // A second commit has the first as its parent, as in git.
  testing::WriteFile(src + "/README.md", "# v2\n");
  testing::WriteFile(git + "/README.md", "# v2\n");
  io.message = "Second";
  io.author.time = 1700000100;
  auto r2 = (*store)->ImportDirectory(src, repo, io);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->commit.hex(), GitCommit(git, "Second", 1700000100));
  EXPECT_EQ(r2->new_chunks, 1u);  // only README.md changed
}

TEST(GitObjectsTest, TreeAndCommitRoundTrip) {
  std::vector<TreeEntry> entries = {{kModeFile, "b", HashObject("blob", "b")},
                                    {kModeTree, "a", HashObject("tree", "")},
                                    {kModeFile, "a.txt", HashObject("blob", "x")}};
  std::string body = EncodeTree(entries);
  auto back = DecodeTree(body);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 3u);
  EXPECT_EQ((*back)[0].name, "a.txt");  // "a.txt" < "a/" in git order
  EXPECT_EQ((*back)[1].name, "a");
  EXPECT_EQ(HashObject("blob", "").hex(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");

  CommitObject c;
  c.tree = HashObject("tree", "");
  c.parents = {HashObject("blob", "p")};
  c.author = Signature{"A", "a@b", 1234, -330};
  c.committer = Signature{"C", "c@d", 5678, 60};
  c.message = "line one\n\nmore\n";
  auto d = DecodeCommit(EncodeCommit(c));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tree, c.tree);
  EXPECT_EQ(d->parents, c.parents);
  EXPECT_EQ(d->author.tz_offset_min, -330);
  EXPECT_EQ(d->committer.time, 5678);
  EXPECT_EQ(d->message, c.message);

  EXPECT_FALSE(DecodeTree(std::string("100644 x\0short", 14)).ok());
  EXPECT_FALSE(DecodeCommit("tree zz\n\nmsg").ok());
}

}  // namespace
}  // namespace hubnode::store

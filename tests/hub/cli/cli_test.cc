// The hubnode command line, end to end, as a user runs it.
#include "tests/testutil/testutil.h"

namespace hubnode::testing {
namespace {

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class CliTest : public ::testing::Test {
 protected:
  CommandResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--data", dir_ / "data", "-q"});
    return RunHubnode(args);
  }
  TempDir dir_;
};

TEST_F(CliTest, ImportListCatLogExportStatsGc) {
  auto gen = Run({"testmodel", "--family", "mixtral", "--out", dir_ / "m", "--seed", "3"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto imp = Run({"import", dir_ / "m", "--repo", "demo/mixtral", "-m", "first", "--author", "Ada <ada@example.org>",
                  "--date", "1700000000"});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_TRUE(Contains(imp.out, "committed demo/mixtral@"));
  std::string commit = imp.out.substr(imp.out.find('@') + 1, 40);

  auto repos = Run({"ls"});
  EXPECT_EQ(repos.exit_code, 0);
  EXPECT_TRUE(Contains(repos.out, "demo/mixtral")) << repos.out;

  auto files = Run({"ls", "demo/mixtral@main"});
  EXPECT_EQ(files.exit_code, 0) << files.err;
  EXPECT_TRUE(Contains(files.out, "config.json"));
  EXPECT_TRUE(Contains(files.out, "model-00001-of-00002.safetensors"));
  auto json = Run({"ls", "demo/mixtral", "--json"});
  EXPECT_TRUE(Contains(json.out, "\"lfs\"")) << json.out;

  auto cat = Run({"cat", "demo/mixtral@" + commit + ":config.json"});
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, ReadWholeFile(dir_ / "m/config.json"));
  auto range = Run({"cat", "demo/mixtral:config.json", "--range", "2-9"});
  EXPECT_EQ(range.out, ReadWholeFile(dir_ / "m/config.json").substr(2, 8));

  auto tensors = Run({"tensors", "demo/mixtral"});
  EXPECT_TRUE(Contains(tensors.out, "model.layers.0.block_sparse_moe.experts.1.w2.weight"));
  auto experts = Run({"experts", "demo/mixtral"});
  EXPECT_TRUE(Contains(experts.out, "layer 1 expert 3: 3 tensors")) << experts.out;
  auto tensor = Run({"cat", "demo/mixtral", "--tensor", "model.norm.weight"});
  EXPECT_EQ(tensor.exit_code, 0) << tensor.err;
  EXPECT_EQ(tensor.out.size() % 2, 0u);
  EXPECT_GT(tensor.out.size(), 0u);

  auto log = Run({"log", "demo/mixtral"});
  EXPECT_TRUE(Contains(log.out, "commit " + commit));
  EXPECT_TRUE(Contains(log.out, "Author: Ada <ada@example.org>"));
  EXPECT_TRUE(Contains(log.out, "first"));

  auto exp = Run({"export", "demo/mixtral@main", dir_ / "out"});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  EXPECT_EQ(ReadTree(dir_ / "out"), ReadTree(dir_ / "m"));

  auto stats = Run({"stats", "--json"});
  EXPECT_EQ(stats.exit_code, 0);
  EXPECT_TRUE(Contains(stats.out, "\"chunk_stored_bytes\""));
  auto gc = Run({"gc"});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_TRUE(Contains(gc.out, "deleted 0 chunks"));
}

TEST_F(CliTest, ErrorsAreClearAndNonZero) {
  auto bad_repo = Run({"import", dir_.path(), "--repo", "../evil"});
  EXPECT_EQ(bad_repo.exit_code, 1);
  EXPECT_TRUE(Contains(bad_repo.err, "hubnode: InvalidArgument: invalid repo name")) << bad_repo.err;
  auto missing = Run({"import", dir_ / "nope", "--repo", "a/b"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.err, "not a directory")) << missing.err;
  auto no_repo = Run({"ls", "a/b"});
  EXPECT_EQ(no_repo.exit_code, 1);
  EXPECT_TRUE(Contains(no_repo.err, "NotFound")) << no_repo.err;
  auto usage = Run({"import"});
  EXPECT_EQ(usage.exit_code, 2);
  auto unknown = Run({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  auto bad_family = Run({"testmodel", "--family", "gpt5", "--out", dir_ / "x"});
  EXPECT_EQ(bad_family.exit_code, 1);

  ASSERT_EQ(Run({"testmodel", "--out", dir_ / "m"}).exit_code, 0);
  ASSERT_EQ(Run({"import", dir_ / "m", "--repo", "a/b"}).exit_code, 0);
  auto no_file = Run({"cat", "a/b@main:nope.txt"});
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_TRUE(Contains(no_file.err, "not found")) << no_file.err;
  auto bad_range = Run({"cat", "a/b:config.json", "--range", "999999-"});
  EXPECT_EQ(bad_range.exit_code, 1);
  auto traversal = Run({"cat", "a/b@main:../../etc/passwd"});
  EXPECT_EQ(traversal.exit_code, 1);
  EXPECT_TRUE(Contains(traversal.err, "invalid path")) << traversal.err;
  auto exists = Run({"export", "a/b", dir_ / "m"});
  EXPECT_EQ(exists.exit_code, 1);
  EXPECT_TRUE(Contains(exists.err, "AlreadyExists")) << exists.err;
}

TEST_F(CliTest, DataDirectoryFromEnvironment) {
  ASSERT_EQ(Run({"testmodel", "--out", dir_ / "m"}).exit_code, 0);
  auto r = RunShell("cd '" + dir_.path() + "' && HUBNODE_DATA='" + (dir_ / "envdata") + "' '" HUBNODE_BIN "' -q import m --repo env/m >/dev/null && HUBNODE_DATA='" +
                    (dir_ / "envdata") + "' '" HUBNODE_BIN "' ls");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "env/m")) << r.out;
}

}  // namespace
}  // namespace hubnode::testing

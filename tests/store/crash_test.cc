// Crash safety: SIGKILL an importing `hubnode` process at many random moments, reopen the store,
// and check that every ref names a complete commit that exports byte-exact.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "store/store.h"
#include "testmodel/testmodel.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::ReadTree;
using hubnode::testing::TempDir;
namespace tm = hubnode::testmodel;
using Clock = std::chrono::steady_clock;

pid_t StartImport(const std::string& data, const std::string& src, const std::string& repo,
                  const std::string& branch) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(HUBNODE_BIN, HUBNODE_BIN, "--data", data.c_str(), "-q", "import", src.c_str(), "--repo", repo.c_str(),
            "--branch", branch.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

using Fingerprint = std::map<std::string, Sha256Digest>;

Fingerprint FingerprintOf(const std::string& dir) {
  Fingerprint f;
  for (const auto& [path, content] : ReadTree(dir)) f[path] = Sha256Of(content);
  return f;
}

TEST(CrashTest, KilledImportsLeaveEveryRefComplete) {
  TempDir dir;
  // A new model for every round, so that every import has new chunks to write when it is killed.
  std::vector<Fingerprint> prints;
  auto new_model = [&](int i) {
    tm::Options o;
    o.size = "small";
    o.seed = 100 + i;
    std::string out = dir / ("model" + std::to_string(i));
    EXPECT_OK(tm::Generate(o, out).status());
    prints.push_back(FingerprintOf(out));
    return out;
  };
  auto is_a_model = [&](const std::string& exported) {
    Fingerprint f = FingerprintOf(exported);
    for (const auto& p : prints) {
      if (p == f) return true;
    }
    return false;
  };
  std::string data = dir / "data";

  // How long one uninterrupted import takes, to spread the kills over it.
  auto t0 = Clock::now();
  pid_t pid = StartImport(dir / "scratch", new_model(0), "crash/warmup", "main");
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  double window = 1.2 * std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();

  // Kill at a uniformly random moment within a window that adapts to how fast imports run on this
  // (possibly busy) machine, until at least kKills imports died mid-way.
  std::mt19937_64 rng(20261129);
  const int kKills = 20, kMaxRounds = 100;
  int killed_mid_import = 0, completed = 0, round = 0;
  const char* branches[] = {"main", "dev", "refs/heads/exp"};
  for (; killed_mid_import < kKills && round < kMaxRounds; ++round) {
    pid = StartImport(data, new_model(round + 1), round % 2 ? "crash/a" : "crash/b", branches[rng() % 3]);
    auto delay = std::chrono::microseconds(static_cast<int64_t>(rng() % static_cast<uint64_t>(window + 1)));
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
      ++killed_mid_import;
      window *= 1.05;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "round " << round;
      ++completed;
      window *= 0.7;
    }

    // Reopen and check every ref of every repo.
    Options o;
    o.data_dir = data;
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
    ASSERT_OK_AND_ASSIGN(auto repos, store->ListRepos());
    for (const auto& repo : repos) {
      ASSERT_OK_AND_ASSIGN(auto refs, store->ListRefs(repo.id));
      for (const auto& ref : refs) {
        std::string out = dir / "check";
        ASSERT_OK(store->Export(ref.commit, out));
        EXPECT_TRUE(is_a_model(out)) << repo.id.str() << " " << ref.name << " round " << round;
        testing::RunShell("rm -rf '" + out + "'");
      }
    }
    testing::RunShell("rm -rf '" + dir / ("model" + std::to_string(round + 1)) + "'");
  }
  std::printf("crash test: %d imports killed mid-way, %d completed before the kill, %d rounds\n",
              killed_mid_import, completed, round);
  EXPECT_GE(killed_mid_import, kKills);
  EXPECT_GT(completed, 0);  // some rounds did commit, so refs existed to check

  // GC then removes what the killed imports left behind, and every ref still exports.
  Options o;
  o.data_dir = data;
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  ASSERT_OK_AND_ASSIGN(GcResult gc, store->CollectGarbage());
  std::printf("crash test: gc removed %llu orphaned chunks\n", static_cast<unsigned long long>(gc.chunks_deleted));
  ASSERT_OK_AND_ASSIGN(auto repos, store->ListRepos());
  for (const auto& repo : repos) {
    ASSERT_OK_AND_ASSIGN(auto refs, store->ListRefs(repo.id));
    for (const auto& ref : refs) {
      std::string out = dir / "final";
      ASSERT_OK(store->Export(ref.commit, out));
      EXPECT_TRUE(is_a_model(out));
      testing::RunShell("rm -rf '" + out + "'");
    }
  }
}

}  // namespace
}  // namespace hubnode::store

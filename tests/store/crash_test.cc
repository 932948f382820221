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
  const int kRounds = 24;
  // A new model for every round, so that every import has new chunks to write when it is killed.
  std::vector<std::string> models;
  std::vector<Fingerprint> prints;
  for (int i = 0; i <= kRounds; ++i) {
    tm::Options o;
    o.size = "small";
    o.seed = 100 + i;
    std::string out = dir / ("model" + std::to_string(i));
    ASSERT_OK(tm::Generate(o, out).status());
    models.push_back(out);
    prints.push_back(FingerprintOf(out));
  }
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
  pid_t pid = StartImport(dir / "scratch", models[kRounds], "crash/warmup", "main");
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  auto full = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();

  std::mt19937_64 rng(20261129);
  int killed_mid_import = 0, completed = 0;
  const char* branches[] = {"main", "dev", "refs/heads/exp"};
  for (int round = 0; round < kRounds; ++round) {
    pid = StartImport(data, models[round], round % 2 ? "crash/a" : "crash/b", branches[rng() % 3]);
    auto delay = std::chrono::microseconds(static_cast<int64_t>(rng() % static_cast<uint64_t>(full * 1.2 + 1)));
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
      ++killed_mid_import;
    } else {
      ASSERT_EQ(WEXITSTATUS(status), 0) << "round " << round;
      ++completed;
    }

    // Reopen and check every ref of every repo.
    Options o;
    o.data_dir = data;
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
    ASSERT_OK_AND_ASSIGN(auto repos, store->ListRepos());
    for (const auto& repo : repos) {
      ASSERT_OK_AND_ASSIGN(auto refs, store->ListRefs(repo.id));
      for (const auto& ref : refs) {
        std::string out = dir / ("check-" + std::to_string(round) + "-" + repo.id.str().substr(6) + "-" +
                                 std::to_string(&ref - refs.data()));
        ASSERT_OK(store->Export(ref.commit, out));
        EXPECT_TRUE(is_a_model(out)) << repo.id.str() << " " << ref.name << " round " << round;
        testing::RunShell("rm -rf '" + out + "'");
      }
    }
  }
  std::printf("crash test: %d imports killed mid-way, %d completed before the kill\n", killed_mid_import, completed);
  EXPECT_GE(killed_mid_import, kRounds / 2);

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

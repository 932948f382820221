// Shared test helpers: temporary directories, running the hubnode binary, comparing trees.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace hubnode::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& child) const { return path_ + "/" + child; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the hubnode binary built with the tests with `args`, capturing stdout and stderr.
CommandResult RunHubnode(const std::vector<std::string>& args);
// Runs a shell command line, capturing stdout (stderr passes through).
CommandResult RunShell(const std::string& command);

// Every regular file under `dir`, relative path -> content.
std::map<std::string, std::string> ReadTree(const std::string& dir);

// Writes `content` to dir/rel, creating parent directories.
void WriteFile(const std::string& path, const std::string& content);
std::string ReadWholeFile(const std::string& path);

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    auto hubnode_s_ = (expr);                                 \
    ASSERT_TRUE(hubnode_s_.ok()) << hubnode_s_.ToString();    \
  } while (0)
#define EXPECT_OK(expr)                                       \
  do {                                                        \
    auto hubnode_s_ = (expr);                                 \
    EXPECT_TRUE(hubnode_s_.ok()) << hubnode_s_.ToString();    \
  } while (0)
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                         \
  ASSERT_OK_AND_ASSIGN_IMPL(HUBNODE_CONCAT(hubnode_r_, __LINE__), lhs, rexpr)
#define ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, rexpr)          \
  auto tmp = (rexpr);                                       \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();         \
  lhs = std::move(tmp).value()

}  // namespace hubnode::testing

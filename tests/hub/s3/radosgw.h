// A throwaway Ceph RADOS Gateway on 127.0.0.1 for tests (tests/tools/ceph/ceph-up.sh), stopped
// and removed when the object is destroyed. available() is false, with why(), when Ceph's
// packages are not installed (scripts/install-deps.sh installs them) or it failed to start.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <string>

#include "tests/testutil/testutil.h"

namespace hubnode::testing {

class Radosgw {
 public:
  Radosgw() {
    if (RunShell("command -v ceph-mon && command -v ceph-osd && command -v radosgw").exit_code != 0) {
      why_ = "Ceph (ceph-mon, ceph-osd, radosgw) is not installed; scripts/install-deps.sh installs it";
      return;
    }
    std::mt19937 rng(std::random_device{}());
    for (int attempt = 0; attempt < 4 && !ok_; ++attempt) {
      int port = 20000 + static_cast<int>(rng() % 20000) * 2;
      if (!Free(port) || !Free(port + 1)) continue;
      dir_ = tmp_.path() + "/ceph" + std::to_string(attempt);
      auto r = RunShell(std::string(HUBNODE_SOURCE_DIR) + "/tests/tools/ceph/ceph-up.sh " + dir_ + " " +
                        std::to_string(port) + " 2>&1");
      if (r.exit_code != 0) {
        why_ = "ceph-up.sh failed: " + r.out;
        RunShell(std::string(HUBNODE_SOURCE_DIR) + "/tests/tools/ceph/ceph-down.sh " + dir_);
        dir_.clear();
        continue;
      }
      std::ifstream env(dir_ + "/s3.env");
      for (std::string line; std::getline(env, line);) {
        auto eq = line.find('=');
        if (eq != std::string::npos) env_[line.substr(0, eq)] = line.substr(eq + 1);
      }
      ok_ = env_.count("S3_ENDPOINT") && env_.count("AWS_ACCESS_KEY_ID");
    }
  }
  ~Radosgw() {
    if (!dir_.empty()) RunShell(std::string(HUBNODE_SOURCE_DIR) + "/tests/tools/ceph/ceph-down.sh " + dir_);
  }
  bool available() const { return ok_; }
  const std::string& why() const { return why_; }
  std::string endpoint() const { return env_.at("S3_ENDPOINT"); }
  std::string access_key() const { return env_.at("AWS_ACCESS_KEY_ID"); }
  std::string secret_key() const { return env_.at("AWS_SECRET_ACCESS_KEY"); }
  // Stops radosgw alone (the object store "down"); the cluster stays.
  void StopGateway() {
    RunShell("awk '$1==\"rgw.a\"{print $2}' " + dir_ + "/pids | xargs -r kill -TERM; sleep 1");
  }

 private:
  static bool Free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    return free;
  }

  TempDir tmp_;
  std::string dir_;
  std::map<std::string, std::string> env_;
  bool ok_ = false;
  std::string why_;
};

}  // namespace hubnode::testing

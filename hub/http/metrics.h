// Prometheus text-format metrics: requests by route and status, bytes served, request latency.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace hubnode::hub {

class Metrics {
 public:
  void Record(std::string_view route, int status, double seconds);
  void AddBytes(uint64_t n) { bytes_served_.fetch_add(n, std::memory_order_relaxed); }
  // The exposition text; `store_disk_bytes` is sampled by the caller.
  std::string Render(uint64_t store_disk_bytes);

 private:
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120};
  std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::array<uint64_t, kBuckets.size() + 1> latency_{};
  double latency_sum_ = 0;
  uint64_t latency_count_ = 0;
  std::atomic<uint64_t> bytes_served_{0};
};

}  // namespace hubnode::hub

// A fork-join worker pool for the CPU backend: Run(n, fn) calls fn(task) for task in [0, n) on
// the pool's threads and the caller's, and returns when all are done. Kept separate from
// base/ThreadPool (a queue of independent jobs) because a decode step forks and joins hundreds of
// times and needs the lowest wake-up latency, not a bounded queue.
//
// Thread safety: Run() must not be called concurrently or from inside a task.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hubnode::runtime {

class WorkerPool {
 public:
  // threads includes the caller: threads == 1 runs everything on the caller.
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  void Run(int64_t tasks, const std::function<void(int64_t)>& fn);

 private:
  void Work();
  void Drain();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;  // bumped per Run
  bool stop_ = false;
  int busy_ = 0;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t tasks_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};
};

}  // namespace hubnode::runtime

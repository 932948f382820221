#include "runtime/cpu/parallel.h"

#include <algorithm>

namespace hubnode::runtime {

WorkerPool::WorkerPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void WorkerPool::Drain() {
  // Threads claim runs of `grain_` consecutive tasks: neighbouring tasks touch neighbouring
  // memory (weight rows), and a long sequential run is what the hardware prefetcher follows.
  for (int64_t t = next_.fetch_add(grain_, std::memory_order_relaxed); t < tasks_;
       t = next_.fetch_add(grain_, std::memory_order_relaxed)) {
    const int64_t end = std::min(tasks_, t + grain_);
    for (int64_t i = t; i < end; ++i) (*fn_)(i);
  }
}

void WorkerPool::Run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1) {
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    tasks_ = tasks;
    // About 8 runs per thread: long enough to stream, short enough to balance a busy core.
    grain_ = std::max<int64_t>(1, tasks / (8 * threads()));
    next_.store(0, std::memory_order_relaxed);
    busy_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  Drain();
  std::unique_lock lock(mu_);
  done_.wait(lock, [&] { return busy_ == 0; });
  fn_ = nullptr;
}

void WorkerPool::Work() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
    }
    Drain();
    std::lock_guard lock(mu_);
    if (--busy_ == 0) done_.notify_one();
  }
}

}  // namespace hubnode::runtime

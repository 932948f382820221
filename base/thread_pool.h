// A fixed-size thread pool with a bounded queue.
//
// Submit() blocks while the queue is full, which is how producers (an import reading a file) are
// held back to bounded memory. Tasks must not throw. The destructor runs every queued task, then
// joins the workers.
//
// Thread safety: Submit() and Wait() may be called from any thread, but not from inside a task of
// the same pool (that could deadlock on a full queue).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hubnode {

class ThreadPool {
 public:
  // threads == 0 means std::thread::hardware_concurrency() (at least 1).
  // max_queue == 0 means 4 * threads.
  explicit ThreadPool(size_t threads = 0, size_t max_queue = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Submit(std::function<void()> task);
  // Blocks until every task submitted so far has finished.
  void Wait();
  size_t size() const { return workers_.size(); }

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable not_empty_, not_full_, idle_;
  std::deque<std::function<void()>> queue_;
  size_t max_queue_;
  size_t running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace hubnode

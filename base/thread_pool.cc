#include "base/thread_pool.h"

#include <algorithm>
#include <utility>

namespace shardfs {

ThreadPool::ThreadPool(int workers, int max_workers)
    : max_workers_(static_cast<size_t>(std::max({workers, max_workers, 0}))) {
  MutexLock lock(&mu_);
  threads_.reserve(static_cast<size_t>(workers > 0 ? workers : 0));
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  std::vector<std::thread> threads;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    threads = std::move(threads_);
  }
  cv_.NotifyAll();
  for (auto& t : threads) t.join();
  while (RunOne()) {
  }
}

void ThreadPool::Submit(std::function<void()> task) {
  {
    MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
    // More tasks queued than workers free to take them: one more, if the pool may grow.
    if (!stopping_ && tasks_.size() > threads_.size() - busy_ && threads_.size() < max_workers_) {
      threads_.emplace_back([this] { WorkerLoop(); });
    }
  }
  cv_.NotifyOne();
}

int ThreadPool::workers() const {
  MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

bool ThreadPool::RunOne() {
  std::function<void()> task;
  {
    MutexLock lock(&mu_);
    if (tasks_.empty()) return false;
    task = std::move(tasks_.front());
    tasks_.pop_front();
  }
  task();
  return true;
}

size_t ThreadPool::queued() const {
  MutexLock lock(&mu_);
  return tasks_.size();
}

void ThreadPool::WorkerLoop() {
  bool busy = false;
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      if (busy) --busy_;
      busy = false;
      cv_.Wait(&mu_, [this]() REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping, and nothing left to run
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++busy_;
      busy = true;
    }
    task();
  }
}

}  // namespace shardfs

// A pool of worker threads running queued tasks in FIFO order. The thread that submits may
// also run queued tasks itself (RunOne), so a producer that gets ahead of the workers helps
// instead of idling: with a pool of N-1 workers plus the caller, N cores stay busy. A pool for
// tasks that block (on the network) may grow, so that a task does not wait behind others
// blocked on something slow.
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_BASE_THREAD_POOL_H_
#define SHARDFS_BASE_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "base/thread_annotations.h"

namespace shardfs {

class ThreadPool {
 public:
  // Starts `workers` threads (0 is allowed: then only RunOne and the destructor run tasks).
  // If max_workers > workers, a task queued while no worker is idle starts one more, up to
  // max_workers in all; they stay until the pool is destroyed.
  explicit ThreadPool(int workers, int max_workers = 0);
  // Runs every task still queued, then joins the workers.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`. Tasks must not throw.
  void Submit(std::function<void()> task) EXCLUDES(mu_);

  // Runs the oldest queued task on the calling thread. Returns false if none was queued.
  bool RunOne() EXCLUDES(mu_);

  // Tasks queued and not yet started.
  size_t queued() const EXCLUDES(mu_);

  // Worker threads now.
  int workers() const EXCLUDES(mu_);

 private:
  void WorkerLoop() EXCLUDES(mu_);

  const size_t max_workers_;
  mutable Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> tasks_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  size_t busy_ GUARDED_BY(mu_) = 0;  // workers running a task
  std::vector<std::thread> threads_ GUARDED_BY(mu_);
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_THREAD_POOL_H_

// A thread that runs a loop in the background until it is stopped, with a pause that a stop
// or a wake ends early: the shape of the drive's auditor and repairer.
//
// Thread safety: all methods may be called from any thread; Pause and stopping from the
// body.

#ifndef SHARDFS_BASE_BACKGROUND_THREAD_H_
#define SHARDFS_BASE_BACKGROUND_THREAD_H_

#include <chrono>
#include <functional>
#include <thread>

#include "base/thread_annotations.h"

namespace shardfs {

class BackgroundThread {
 public:
  BackgroundThread() = default;
  // Stops the body if it runs.
  ~BackgroundThread() { Stop(); }
  BackgroundThread(const BackgroundThread&) = delete;
  BackgroundThread& operator=(const BackgroundThread&) = delete;

  // Runs `body` on a new thread, unless one runs already.
  void Start(std::function<void()> body) EXCLUDES(mu_);
  // Makes Pause return false from now on, and waits for the body to return. Idempotent.
  void Stop() EXCLUDES(mu_);
  // Waits `d`, or until Stop or Wake; false if stopped.
  bool Pause(std::chrono::steady_clock::duration d) EXCLUDES(mu_);
  // Ends the body's current (or next) pause early.
  void Wake() EXCLUDES(mu_);
  bool stopping() const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  CondVar cv_;
  bool running_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  bool wake_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_BACKGROUND_THREAD_H_

#include "base/background_thread.h"

namespace shardfs {

void BackgroundThread::Start(std::function<void()> body) {
  MutexLock lock(&mu_);
  if (running_) return;
  running_ = true;
  stop_ = false;
  wake_ = false;
  thread_ = std::thread(std::move(body));
}

void BackgroundThread::Stop() {
  {
    MutexLock lock(&mu_);
    if (!running_) return;
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
  MutexLock lock(&mu_);
  running_ = false;
}

bool BackgroundThread::Pause(std::chrono::steady_clock::duration d) {
  MutexLock lock(&mu_);
  cv_.WaitUntil(&mu_, std::chrono::steady_clock::now() + d,
                [this]() REQUIRES(mu_) { return stop_ || wake_; });
  wake_ = false;
  return !stop_;
}

void BackgroundThread::Wake() {
  {
    MutexLock lock(&mu_);
    wake_ = true;
  }
  cv_.NotifyAll();
}

bool BackgroundThread::stopping() const {
  MutexLock lock(&mu_);
  return stop_;
}

}  // namespace shardfs

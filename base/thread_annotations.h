// Clang thread-safety annotations (no-ops on other compilers) and an annotated mutex, so
// members say which lock guards them and clang's -Wthread-safety can check it.

#ifndef SHARDFS_BASE_THREAD_ANNOTATIONS_H_
#define SHARDFS_BASE_THREAD_ANNOTATIONS_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define SFS_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define SFS_THREAD_ANNOTATION_(x)
#endif

#define CAPABILITY(x) SFS_THREAD_ANNOTATION_(capability(x))
#define SCOPED_CAPABILITY SFS_THREAD_ANNOTATION_(scoped_lockable)
#define GUARDED_BY(x) SFS_THREAD_ANNOTATION_(guarded_by(x))
#define PT_GUARDED_BY(x) SFS_THREAD_ANNOTATION_(pt_guarded_by(x))
#define REQUIRES(...) SFS_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) SFS_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) SFS_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define RELEASE(...) SFS_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))

namespace shardfs {

// std::mutex with capability annotations.
class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

// A condition variable that waits on a held Mutex.
class CondVar {
 public:
  // REQUIRES: *mu is held by the caller.
  template <typename Pred>
  void Wait(Mutex* mu, Pred pred) REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->native(), std::adopt_lock);
    cv_.wait(lock, pred);
    lock.release();
  }
  // Waits until pred() holds or `deadline` passes; returns pred().
  // REQUIRES: *mu is held by the caller.
  template <typename Clock, typename Duration, typename Pred>
  bool WaitUntil(Mutex* mu, std::chrono::time_point<Clock, Duration> deadline, Pred pred)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu->native(), std::adopt_lock);
    bool done = cv_.wait_until(lock, deadline, pred);
    lock.release();
    return done;
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_THREAD_ANNOTATIONS_H_

// A flag that tells long operations (a transfer to a peer, a read from several) that their
// result is no longer needed, so they stop early with Cancelled. An operation blocked in a
// system call can register a callback (OnCancel) that unblocks it, e.g. by shutting down its
// socket.
//
// Thread safety: all methods may be called from any thread.

#ifndef SHARDFS_BASE_CANCEL_H_
#define SHARDFS_BASE_CANCEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace shardfs {

class CancelToken {
 public:
  // Keeps a callback registered; unregisters it on destruction, waiting for it if it is
  // running, so what the callback touches may be destroyed right after.
  class Registration {
   public:
    Registration() = default;
    Registration(const CancelToken* token, uint64_t id) : token_(token), id_(id) {}
    Registration(Registration&& o) noexcept : token_(o.token_), id_(o.id_) { o.token_ = nullptr; }
    Registration& operator=(Registration&&) = delete;
    Registration(const Registration&) = delete;
    ~Registration() {
      if (token_ != nullptr) token_->Unregister(id_);
    }

   private:
    const CancelToken* token_ = nullptr;
    uint64_t id_ = 0;
  };

  // Sets the flag and runs the registered callbacks (on this thread, once each).
  void Cancel() {
    cancelled_.store(true, std::memory_order_release);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, fn] : callbacks_) fn();
    callbacks_.clear();
  }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Runs `fn` when the token is cancelled while the registration lives (at once, on this
  // thread, if it already is). `fn` must be quick and must not use this token.
  Registration OnCancel(std::function<void()> fn) const {
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled()) {
      lock.unlock();
      fn();
      return Registration();
    }
    const uint64_t id = next_id_++;
    callbacks_.emplace(id, std::move(fn));
    return Registration(this, id);
  }

 private:
  void Unregister(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    callbacks_.erase(id);
  }

  std::atomic<bool> cancelled_{false};
  // Registering is not a change of the token's state (cancelled or not): const, so holders
  // of a const token can register.
  mutable std::mutex mu_;  // guards callbacks_ and next_id_; held while callbacks run
  mutable std::map<uint64_t, std::function<void()>> callbacks_;
  mutable uint64_t next_id_ = 1;
};

// True if `token` is set and cancelled (a null token never cancels).
inline bool IsCancelled(const CancelToken* token) { return token != nullptr && token->cancelled(); }

}  // namespace shardfs

#endif  // SHARDFS_BASE_CANCEL_H_

// A flag that tells long operations (a transfer to a peer, a read from several) that their
// result is no longer needed, so they stop early with Cancelled.
//
// Thread safety: Cancel and cancelled may be called from any thread.

#ifndef SHARDFS_BASE_CANCEL_H_
#define SHARDFS_BASE_CANCEL_H_

#include <atomic>

namespace shardfs {

class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> cancelled_{false};
};

// True if `token` is set and cancelled (a null token never cancels).
inline bool IsCancelled(const CancelToken* token) { return token != nullptr && token->cancelled(); }

}  // namespace shardfs

#endif  // SHARDFS_BASE_CANCEL_H_

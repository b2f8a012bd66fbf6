// FaultyPeer: the fault-injection wrapper (STYLE.md) around any backend::Peer, for tests of
// the engine and of the faces on it (the mount): a node that is down, stopped, slow, lying or
// corrupt on demand.
//
// Thread safety: the switches are atomics; flip them from any thread while others use the peer.

#ifndef SHARDFS_TESTS_FAULTY_PEER_H_
#define SHARDFS_TESTS_FAULTY_PEER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "backend/peer.h"
#include "base/cancel.h"

namespace shardfs::test {

// A peer that can be switched off, stopped, made to flip a byte of everything it reads, to
// answer Corruption (as HttpPeer does when a node's proof fails), or to be slow: the fault
// injection wrapper (STYLE.md) around an in-memory node. Counts its range reads and puts.
class FaultyPeer final : public backend::Peer {
 public:
  explicit FaultyPeer(std::shared_ptr<backend::Peer> base) : base_(std::move(base)) {}
  std::atomic<bool> down{false};
  // A stopped node (SIGSTOP) behind HttpPeer: a read or put waits until it is cancelled or
  // until its answer deadline (deadline_ms) passes, then fails with DeadlineExceeded.
  std::atomic<bool> stopped{false};
  std::atomic<int> deadline_ms{1000};
  std::atomic<bool> lies{false};
  std::atomic<bool> corrupts{false};
  std::atomic<int> delay_ms{0};
  std::atomic<int> reads{0};
  std::atomic<int> puts{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> finished{0};

  std::string name() const override { return base_->name(); }
  Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* c) override {
    ++puts;
    if (down) return Status::Unavailable(name() + " is down");
    if (stopped) return Unanswered(c);
    return base_->PutShard(id, data, c);
  }
  Result<Bytes> GetShard(const ShardId& id, const CancelToken* c) override {
    if (down) return Status::Unavailable(name() + " is down");
    return base_->GetShard(id, c);
  }
  Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                   const CancelToken* c) override {
    ++reads;
    Status s = SlowRead(id, offset, out, c);
    ++finished;
    return s;
  }
  Result<uint64_t> StatShard(const ShardId& id) override { return base_->StatShard(id); }
  Result<backend::ShardProof> ProveShard(const ShardId& id, uint64_t first,
                                         uint64_t count) override {
    return base_->ProveShard(id, first, count);
  }
  Status DeleteShard(const ShardId& id) override {
    if (down) return Status::Unavailable(name() + " is down");
    return base_->DeleteShard(id);
  }
  Result<std::optional<Bytes>> GetSlot() override { return base_->GetSlot(); }
  Status PutSlot(ByteSpan record) override { return base_->PutSlot(record); }
  Result<backend::PeerStatus> GetStatus() override {
    if (down) return Status::Unavailable(name() + " is down");
    if (stopped) return Unanswered(nullptr);
    return base_->GetStatus();
  }

 private:
  Status Unanswered(const CancelToken* c) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
    while (std::chrono::steady_clock::now() < until) {
      if (IsCancelled(c)) {
        ++cancelled;
        return Status::Cancelled(name() + ": cancelled");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return Status::DeadlineExceeded(name() + ": no answer within " + std::to_string(deadline_ms) +
                                    " ms");
  }

  Status SlowRead(const ShardId& id, uint64_t offset, MutableByteSpan out, const CancelToken* c) {
    if (stopped) return Unanswered(c);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
    while (std::chrono::steady_clock::now() < until) {
      if (IsCancelled(c)) {
        ++cancelled;
        return Status::Cancelled(name() + ": cancelled");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (down) return Status::Unavailable(name() + " is down");
    if (corrupts) return Status::Corruption(name() + ": the node's proof does not check");
    SFS_RETURN_IF_ERROR(base_->ReadShard(id, offset, out, c));
    if (lies && !out.empty()) out[out.size() / 2] ^= 0x40;
    return Status::Ok();
  }

  std::shared_ptr<backend::Peer> base_;
};

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_FAULTY_PEER_H_

// A storage node in memory, for tests of the engine and as the reference for the peer
// conformance suite. Behaves as a real node does for one owner, including the checks on
// shard ids and slot records.
//
// Thread safety: safe to call from many threads.

#ifndef SHARDFS_BACKEND_MEMORY_PEER_H_
#define SHARDFS_BACKEND_MEMORY_PEER_H_

#include <string>
#include <unordered_map>

#include "backend/peer.h"
#include "base/thread_annotations.h"
#include "crypto/sign.h"

namespace shardfs::backend {

class MemoryPeer : public Peer {
 public:
  // A node with room for `capacity` bytes of shards, acting for the owner `owner`.
  MemoryPeer(std::string name, crypto::PublicKey owner, uint64_t capacity);

  std::string name() const override { return name_; }
  Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* cancel) override;
  Result<Bytes> GetShard(const ShardId& id, const CancelToken* cancel) override;
  Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                   const CancelToken* cancel) override;
  Result<uint64_t> StatShard(const ShardId& id) override;
  Result<ShardProof> ProveShard(const ShardId& id, uint64_t first_leaf, uint64_t count) override;
  Status DeleteShard(const ShardId& id) override;
  Result<std::optional<Bytes>> GetSlot() override;
  Status PutSlot(ByteSpan record) override;
  Result<PeerStatus> GetStatus() override;

  // For tests of audits and repair: flips a byte of every shard held, as a failing disk
  // would (the node goes on serving them); returns how many.
  size_t DamageShards();

 private:
  const std::string name_;
  const crypto::PublicKey owner_;
  const uint64_t capacity_;
  Mutex mu_;
  std::unordered_map<ShardId, Bytes> shards_ GUARDED_BY(mu_);
  uint64_t used_ GUARDED_BY(mu_) = 0;
  std::optional<Bytes> slot_ GUARDED_BY(mu_);
  uint64_t slot_sequence_ GUARDED_BY(mu_) = 0;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_MEMORY_PEER_H_

#include "backend/memory_peer.h"

#include <cstring>

#include "backend/slot.h"
#include "base/version.h"

namespace shardfs::backend {

namespace {
Status CancelledStatus() { return Status::Cancelled("request cancelled"); }
}  // namespace

MemoryPeer::MemoryPeer(std::string name, crypto::PublicKey owner, uint64_t capacity)
    : name_(std::move(name)), owner_(owner), capacity_(capacity) {}

Status MemoryPeer::PutShard(const ShardId& id, ByteSpan data, const CancelToken* cancel) {
  if (IsCancelled(cancel)) return CancelledStatus();
  if (data.empty()) return Status::InvalidArgument("a shard cannot be empty");
  if (crypto::MerkleRoot(data) != id) {
    return Status::Corruption(name_ + ": shard bytes do not match id " + id.ToHex());
  }
  MutexLock lock(&mu_);
  if (shards_.count(id) != 0) return Status::Ok();
  if (used_ + data.size() > capacity_) return Status::NoSpace(name_ + ": node is full");
  shards_.emplace(id, Bytes(data.begin(), data.end()));
  used_ += data.size();
  return Status::Ok();
}

Result<Bytes> MemoryPeer::GetShard(const ShardId& id, const CancelToken* cancel) {
  if (IsCancelled(cancel)) return CancelledStatus();
  MutexLock lock(&mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": no such shard");
  return it->second;
}

Status MemoryPeer::ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                             const CancelToken* cancel) {
  if (IsCancelled(cancel)) return CancelledStatus();
  MutexLock lock(&mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": no such shard");
  const Bytes& b = it->second;
  if (offset > b.size() || out.size() > b.size() - offset) {
    return Status::OutOfRange(name_ + ": range outside the shard");
  }
  if (!out.empty()) std::memcpy(out.data(), b.data() + offset, out.size());
  return Status::Ok();
}

Result<uint64_t> MemoryPeer::StatShard(const ShardId& id) {
  MutexLock lock(&mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": no such shard");
  return static_cast<uint64_t>(it->second.size());
}

Result<ShardProof> MemoryPeer::ProveShard(const ShardId& id, uint64_t first_leaf, uint64_t count) {
  MutexLock lock(&mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": no such shard");
  const Bytes& b = it->second;
  crypto::MerkleTree tree = crypto::MerkleTree::Build(b);
  ShardProof p;
  p.length = b.size();
  SFS_ASSIGN_OR_RETURN(p.proof, tree.Prove(first_leaf, count));
  uint64_t begin = first_leaf * crypto::kMerkleLeafSize;
  uint64_t end = std::min<uint64_t>(b.size(), (first_leaf + count) * crypto::kMerkleLeafSize);
  p.leaves.assign(b.begin() + static_cast<ptrdiff_t>(begin),
                  b.begin() + static_cast<ptrdiff_t>(end));
  return p;
}

size_t MemoryPeer::DamageShards() {
  MutexLock lock(&mu_);
  for (auto& [id, bytes] : shards_) {
    if (!bytes.empty()) bytes[bytes.size() / 2] ^= 0x5a;
  }
  return shards_.size();
}

Status MemoryPeer::DeleteShard(const ShardId& id) {
  MutexLock lock(&mu_);
  auto it = shards_.find(id);
  if (it == shards_.end()) return Status::NotFound(name_ + ": no such shard");
  used_ -= it->second.size();
  shards_.erase(it);
  return Status::Ok();
}

Result<std::optional<Bytes>> MemoryPeer::GetSlot() {
  MutexLock lock(&mu_);
  return slot_;
}

Status MemoryPeer::PutSlot(ByteSpan record) {
  SFS_ASSIGN_OR_RETURN(SlotRecord rec, VerifySlotRecord(record));
  if (rec.owner != owner_)
    return Status::PermissionDenied("slot record is signed by another owner");
  MutexLock lock(&mu_);
  if (slot_ && slot_sequence_ >= rec.sequence) {
    return Status::AlreadyExists("slot already holds sequence " + std::to_string(slot_sequence_));
  }
  slot_ = Bytes(record.begin(), record.end());
  slot_sequence_ = rec.sequence;
  return Status::Ok();
}

Result<PeerStatus> MemoryPeer::GetStatus() {
  MutexLock lock(&mu_);
  PeerStatus s;
  s.version = kVersion;
  s.capacity = capacity_;
  s.used = used_;
  s.free = capacity_ - used_;
  s.shards = shards_.size();
  return s;
}

}  // namespace shardfs::backend

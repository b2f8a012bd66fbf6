// What the engine needs from one storage node, whatever carries it: over HTTP (net/http_peer),
// in memory (backend/memory_peer, for tests), or with faults injected. Every implementation
// passes the same conformance suite (tests/peer_conformance.h).
//
// A peer acts for one owner (the drive's key): it sees and deletes only the shards that owner
// stored, and reads and writes only that owner's slot. Bytes it returns are verified against
// the shard id before they are returned, so a peer never hands back wrong bytes: it answers
// Corruption instead.
//
// Thread safety: implementations are safe to call from many threads at once.

#ifndef SHARDFS_BACKEND_PEER_H_
#define SHARDFS_BACKEND_PEER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/cancel.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/merkle.h"

namespace shardfs::backend {

// A run of a shard's leaves with the proof that they belong to it.
struct ShardProof {
  uint64_t length = 0;  // the shard's length
  crypto::MerkleProof proof;
  Bytes leaves;
};

struct PeerStatus {
  NodeId node_id;
  std::string version;
  uint64_t capacity = 0;
  uint64_t used = 0;
  uint64_t free = 0;
  uint64_t shards = 0;
  uint64_t uptime_seconds = 0;
};

class Peer {
 public:
  virtual ~Peer() = default;

  // For logs: the node's address or name.
  virtual std::string name() const = 0;

  // Stores shard `id` = `data` (whose Merkle root must be `id`). OK if the node now holds it
  // for us, including when it already did. NoSpace if the node or our quota is full;
  // Corruption if the node found that the bytes are not `id`; Unavailable or
  // DeadlineExceeded if the node cannot be reached; Cancelled if `cancel` fired.
  virtual Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* cancel) = 0;

  // The whole shard, checked against `id`. NotFound if the node holds no such shard for us;
  // Corruption if it returned other bytes; errors as PutShard.
  virtual Result<Bytes> GetShard(const ShardId& id, const CancelToken* cancel) = 0;

  // Reads [offset, offset + out.size()) of shard `id`. The bytes are NOT checked against `id`
  // (a range cannot be checked by itself): the caller checks them (ChunkReader opens the
  // chunk they hold) and asks ProveShard to find out whether the node lied. OutOfRange if the
  // range is not within the shard; Corruption if the node answered other bytes than asked
  // (another range, a cut-off body); other errors as GetShard.
  virtual Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                           const CancelToken* cancel) = 0;

  // The shard's length if the node holds it for us; NotFound otherwise.
  virtual Result<uint64_t> StatShard(const ShardId& id) = 0;

  // Leaves [first_leaf, first_leaf + count) of shard `id` and their proof, already checked
  // against `id` (for audits). OutOfRange if the run is not within the shard.
  virtual Result<ShardProof> ProveShard(const ShardId& id, uint64_t first_leaf, uint64_t count) = 0;

  // Drops our lease on shard `id`. NotFound if we held none.
  virtual Status DeleteShard(const ShardId& id) = 0;

  // Our slot's record (backend/slot.h), or nullopt if we never stored one.
  virtual Result<std::optional<Bytes>> GetSlot() = 0;
  // Stores our signed slot record. AlreadyExists if the node holds the same or a newer
  // sequence; PermissionDenied if the record is not signed by our key.
  virtual Status PutSlot(ByteSpan record) = 0;

  virtual Result<PeerStatus> GetStatus() = 0;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PEER_H_

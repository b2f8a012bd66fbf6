// Merkle trees over shards: a shard's id is the root of a SHA-256 tree over its 64 KiB leaves,
// so anyone holding the id can check the whole shard, or any run of its leaves with a short
// proof, without a key (docs/format.md, "Shard id").
//
// Tree shape (as RFC 6962's, with the shard length bound into the root):
//   leaf      = SHA-256(0x00 || leaf bytes)      leaves are 64 KiB, the last may be shorter;
//                                                an empty shard has one empty leaf
//   node      = SHA-256(0x01 || left || right)   a range of n > 1 leaves splits at the
//                                                largest power of two below n
//   shard id  = SHA-256(0x02 || le64(length) || top)
// The distinct prefixes keep leaves, inner nodes and roots from ever being confused, and the
// length in the root fixes the tree's shape, so a proof cannot be replayed for another size.
//
// Thread safety: MerkleTree is immutable after Build; the free functions are thread-safe.

#ifndef SHARDFS_CRYPTO_MERKLE_H_
#define SHARDFS_CRYPTO_MERKLE_H_

#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/hash.h"

namespace shardfs::crypto {

inline constexpr size_t kMerkleLeafSize = 64 * 1024;
// The longest shard a proof is checked for (far above any real shard; keeps every offset
// computation far from overflow).
inline constexpr uint64_t kMaxMerkleLength = uint64_t{1} << 40;

// Leaves in a shard of `length` bytes (at least 1).
uint64_t MerkleLeafCount(uint64_t length);

// The id of a shard with these bytes.
ShardId MerkleRoot(ByteSpan shard);

// The hashes that, with a run of leaves, recompute the root: the roots of the largest
// subtrees that do not touch the run, in depth-first left-to-right order.
struct MerkleProof {
  uint64_t first_leaf = 0;
  uint64_t leaf_count = 0;
  std::vector<Digest256> hashes;
};

class MerkleTree {
 public:
  // Hashes every leaf of `shard` (the bytes are not kept).
  static MerkleTree Build(ByteSpan shard);
  // A tree from leaf hashes already known (e.g. kept beside a stored shard).
  // InvalidArgument if the count does not match `length`, or length > kMaxMerkleLength.
  static Result<MerkleTree> FromLeafHashes(uint64_t length, std::vector<Digest256> leaves);

  uint64_t length() const { return length_; }
  uint64_t leaf_count() const { return leaves_.size(); }
  const std::vector<Digest256>& leaf_hashes() const { return leaves_; }
  ShardId root() const { return root_; }

  // Proof for leaves [first_leaf, first_leaf + count). OutOfRange if the run is empty or does
  // not lie within the shard.
  Result<MerkleProof> Prove(uint64_t first_leaf, uint64_t count) const;

 private:
  uint64_t length_ = 0;
  std::vector<Digest256> leaves_;
  ShardId root_;
};

// Builds a tree from a shard's bytes as they arrive, without keeping them (a node hashes a
// shard while it streams to disk). It holds back at most two leaves (128 KiB, allocated when
// first needed) so that leaves are hashed two at a time (crypto/sha256_pair.h).
class MerkleBuilder {
 public:
  MerkleBuilder();
  void Update(ByteSpan data);
  uint64_t length() const { return length_; }
  // The tree over everything passed to Update. InvalidArgument above kMaxMerkleLength.
  // The builder is spent afterwards.
  Result<MerkleTree> Finish();

 private:
  uint64_t length_ = 0;
  Bytes pending_;  // the bytes of the leaves not hashed yet: less than two whole leaves
  std::vector<Digest256> leaves_;
};

// The hash of one leaf (the first level of the tree), as kept beside a stored shard.
Digest256 MerkleLeafHash(ByteSpan leaf);

// The hashes of consecutive leaves `run`, cut into 64 KiB leaves (the last may be shorter),
// appended to `out`; two at a time where the CPU allows. An empty run has no leaves.
void MerkleLeafHashes(ByteSpan run, std::vector<Digest256>* out);

// Checks that `leaves` are the shard's leaves starting at leaf `first_leaf` (the one the
// caller asked for: the proof's own first_leaf must match it), as they are in the shard, so all
// but the shard's last leaf are 64 KiB, and that they belong to the shard `root` of `length`
// bytes. Corruption if they do not, or if the proof is malformed (wrong number of hashes, a
// run outside the shard, leaves of the wrong size, a length above kMaxMerkleLength).
Status VerifyMerkleProof(const ShardId& root, uint64_t length, uint64_t first_leaf, ByteSpan leaves,
                         const MerkleProof& proof);

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_MERKLE_H_

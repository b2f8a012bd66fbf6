#include "crypto/merkle.h"

#include <algorithm>
#include <bit>

#include "crypto/sha256_pair.h"

namespace shardfs::crypto {

namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;
constexpr uint8_t kRootPrefix = 0x02;
// A proof has at most one hash per level of the tree (64 levels for 2^64 leaves) on each side
// of the run.
constexpr size_t kMaxProofHashes = 128;

Digest256 LeafHash(Sha256Hasher& h, ByteSpan leaf) {
  h.Update(ByteSpan(&kLeafPrefix, 1));
  h.Update(leaf);
  return h.Final();
}

Digest256 NodeHash(Sha256Hasher& h, const Digest256& left, const Digest256& right) {
  h.Update(ByteSpan(&kNodePrefix, 1));
  h.Update(left);
  h.Update(right);
  return h.Final();
}

ShardId RootOf(Sha256Hasher& h, uint64_t length, const Digest256& top) {
  uint8_t len[8];
  StoreLE64(len, length);
  h.Update(ByteSpan(&kRootPrefix, 1));
  h.Update(len);
  h.Update(top);
  return ShardId(h.Final());
}

// Largest power of two strictly below n. REQUIRES: n > 1.
uint64_t SplitPoint(uint64_t n) { return uint64_t{1} << (63 - std::countl_zero(n - 1)); }

Digest256 Subtree(Sha256Hasher& h, const std::vector<Digest256>& leaves, uint64_t lo, uint64_t hi) {
  if (hi - lo == 1) return leaves[lo];
  uint64_t mid = lo + SplitPoint(hi - lo);
  Digest256 left = Subtree(h, leaves, lo, mid);
  Digest256 right = Subtree(h, leaves, mid, hi);
  return NodeHash(h, left, right);
}

std::vector<Digest256> HashLeaves(ByteSpan shard) {
  std::vector<Digest256> leaves;
  leaves.reserve(MerkleLeafCount(shard.size()));
  if (shard.empty()) {
    leaves.push_back(MerkleLeafHash({}));
  } else {
    MerkleLeafHashes(shard, &leaves);
  }
  return leaves;
}

// Hashes two whole leaves at once.
void AddLeafPair(ByteSpan a, ByteSpan b, std::vector<Digest256>* out) {
  Digest256 ha, hb;
  Sha256Pair(kLeafPrefix, a, b, &ha, &hb);
  out->push_back(ha);
  out->push_back(hb);
}

void CollectProof(Sha256Hasher& h, const std::vector<Digest256>& leaves, uint64_t lo, uint64_t hi,
                  uint64_t a, uint64_t b, std::vector<Digest256>* out) {
  if (hi <= a || lo >= b) {
    out->push_back(Subtree(h, leaves, lo, hi));
    return;
  }
  if (hi - lo == 1) return;  // a leaf of the run: the verifier hashes it itself
  uint64_t mid = lo + SplitPoint(hi - lo);
  CollectProof(h, leaves, lo, mid, a, b, out);
  CollectProof(h, leaves, mid, hi, a, b, out);
}

// Recomputes the root of [lo, hi) from the run's leaf hashes and the proof. False if the
// proof runs out of hashes.
bool Recompute(Sha256Hasher& h, const std::vector<Digest256>& run, uint64_t a, uint64_t b,
               uint64_t lo, uint64_t hi, const std::vector<Digest256>& proof, size_t* next,
               Digest256* out) {
  if (hi <= a || lo >= b) {
    if (*next >= proof.size()) return false;
    *out = proof[(*next)++];
    return true;
  }
  if (hi - lo == 1) {
    *out = run[lo - a];
    return true;
  }
  uint64_t mid = lo + SplitPoint(hi - lo);
  Digest256 left, right;
  if (!Recompute(h, run, a, b, lo, mid, proof, next, &left)) return false;
  if (!Recompute(h, run, a, b, mid, hi, proof, next, &right)) return false;
  *out = NodeHash(h, left, right);
  return true;
}

}  // namespace

uint64_t MerkleLeafCount(uint64_t length) {
  return length == 0 ? 1 : (length - 1) / kMerkleLeafSize + 1;
}

Digest256 MerkleLeafHash(ByteSpan leaf) {
  Sha256Hasher h;
  return LeafHash(h, leaf);
}

void MerkleLeafHashes(ByteSpan run, std::vector<Digest256>* out) {
  while (run.size() >= 2 * kMerkleLeafSize) {
    AddLeafPair(run.first(kMerkleLeafSize), run.subspan(kMerkleLeafSize, kMerkleLeafSize), out);
    run = run.subspan(2 * kMerkleLeafSize);
  }
  // One or two leaves left, the second short.
  while (!run.empty()) {
    size_t n = std::min(kMerkleLeafSize, run.size());
    out->push_back(MerkleLeafHash(run.first(n)));
    run = run.subspan(n);
  }
}

MerkleBuilder::MerkleBuilder() = default;

void MerkleBuilder::Update(ByteSpan data) {
  length_ += data.size();
  while (!data.empty()) {
    if (pending_.size() == kMerkleLeafSize && data.size() >= kMerkleLeafSize) {
      // One whole leaf waits: pair it with the next one where it lies, without copying it.
      AddLeafPair(pending_, data.first(kMerkleLeafSize), &leaves_);
      pending_.clear();
      data = data.subspan(kMerkleLeafSize);
      continue;
    }
    if (pending_.empty() && data.size() >= 2 * kMerkleLeafSize) {
      AddLeafPair(data.first(kMerkleLeafSize), data.subspan(kMerkleLeafSize, kMerkleLeafSize),
                  &leaves_);
      data = data.subspan(2 * kMerkleLeafSize);
      continue;
    }
    // Hold back up to the end of the current leaf.
    if (pending_.capacity() == 0) pending_.reserve(2 * kMerkleLeafSize);
    size_t boundary = pending_.size() < kMerkleLeafSize ? kMerkleLeafSize : 2 * kMerkleLeafSize;
    size_t n = std::min(data.size(), boundary - pending_.size());
    pending_.insert(pending_.end(), data.begin(), data.begin() + n);
    data = data.subspan(n);
    if (pending_.size() == 2 * kMerkleLeafSize) {
      AddLeafPair(ByteSpan(pending_).first(kMerkleLeafSize),
                  ByteSpan(pending_).subspan(kMerkleLeafSize), &leaves_);
      pending_.clear();
    }
  }
}

Result<MerkleTree> MerkleBuilder::Finish() {
  // What is held back is the last leaf or two; an empty shard has one empty leaf.
  if (length_ == 0) {
    leaves_.push_back(MerkleLeafHash({}));
  } else {
    MerkleLeafHashes(pending_, &leaves_);
  }
  pending_ = Bytes();
  return MerkleTree::FromLeafHashes(length_, std::move(leaves_));
}

ShardId MerkleRoot(ByteSpan shard) { return MerkleTree::Build(shard).root(); }

MerkleTree MerkleTree::Build(ByteSpan shard) {
  return FromLeafHashes(shard.size(), HashLeaves(shard)).value();
}

Result<MerkleTree> MerkleTree::FromLeafHashes(uint64_t length, std::vector<Digest256> leaves) {
  if (length > kMaxMerkleLength || leaves.size() != MerkleLeafCount(length)) {
    return Status::InvalidArgument("leaf hash count does not match the shard length");
  }
  MerkleTree t;
  t.length_ = length;
  t.leaves_ = std::move(leaves);
  Sha256Hasher h;
  Digest256 top = Subtree(h, t.leaves_, 0, t.leaves_.size());
  t.root_ = RootOf(h, length, top);
  return t;
}

Result<MerkleProof> MerkleTree::Prove(uint64_t first_leaf, uint64_t count) const {
  uint64_t n = leaves_.size();
  if (count == 0 || first_leaf >= n || count > n - first_leaf) {
    return Status::OutOfRange("leaf run outside the shard");
  }
  MerkleProof proof{first_leaf, count, {}};
  Sha256Hasher h;
  CollectProof(h, leaves_, 0, n, first_leaf, first_leaf + count, &proof.hashes);
  return proof;
}

Status VerifyMerkleProof(const ShardId& root, uint64_t length, uint64_t first_leaf, ByteSpan leaves,
                         const MerkleProof& proof) {
  if (length > kMaxMerkleLength) return Status::Corruption("shard length out of range");
  if (proof.first_leaf != first_leaf) {
    return Status::Corruption("proof is for other leaves than the ones asked for");
  }
  uint64_t n = MerkleLeafCount(length);
  uint64_t a = proof.first_leaf;
  if (proof.leaf_count == 0 || a >= n || proof.leaf_count > n - a) {
    return Status::Corruption("proof names leaves outside the shard");
  }
  if (proof.hashes.size() > kMaxProofHashes) return Status::Corruption("proof is too long");
  uint64_t b = a + proof.leaf_count;
  // Expected bytes: whole leaves, except that the shard's last leaf may be short.
  uint64_t begin = a * kMerkleLeafSize;
  uint64_t end = std::min<uint64_t>(b * kMerkleLeafSize, length);
  if (leaves.size() != end - begin) return Status::Corruption("proof leaves have the wrong size");
  Sha256Hasher h;
  std::vector<Digest256> run;
  run.reserve(proof.leaf_count);
  if (leaves.empty()) {
    run.push_back(LeafHash(h, leaves));  // the one empty leaf of an empty shard
  } else {
    MerkleLeafHashes(leaves, &run);
  }
  size_t next = 0;
  Digest256 top;
  if (!Recompute(h, run, a, b, 0, n, proof.hashes, &next, &top) || next != proof.hashes.size()) {
    return Status::Corruption("proof has the wrong number of hashes");
  }
  if (RootOf(h, length, top) != root) {
    return Status::Corruption("leaves do not match the shard id");
  }
  return Status::Ok();
}

}  // namespace shardfs::crypto

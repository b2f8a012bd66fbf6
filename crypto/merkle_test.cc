#include "crypto/merkle.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::crypto {
namespace {

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i % 251);
  return b;
}

ByteSpan LeafRun(const Bytes& shard, uint64_t first, uint64_t count) {
  size_t begin = first * kMerkleLeafSize;
  size_t end = std::min(shard.size(), (first + count) * kMerkleLeafSize);
  return ByteSpan(shard).subspan(begin, end - begin);
}

// Golden roots computed by an independent implementation (Python hashlib) of the tree in
// merkle.h; shard ids on the network depend on them, so they must never change.
TEST(MerkleTest, GoldenRoots) {
  EXPECT_EQ(MerkleRoot(Pattern(200000)).ToHex(),
            "0e4fd408383cec510b6eaf735cd75181f041e3db65d06e36bc91bc8911cf7e49");
  EXPECT_EQ(MerkleRoot({}).ToHex(),
            "c0e50f0d90d6e2fea1e6f53d4f758ed5fc9035a399a8eb215c29c6ff3ea05425");
}

TEST(MerkleTest, LeafCount) {
  EXPECT_EQ(MerkleLeafCount(0), 1u);
  EXPECT_EQ(MerkleLeafCount(1), 1u);
  EXPECT_EQ(MerkleLeafCount(kMerkleLeafSize), 1u);
  EXPECT_EQ(MerkleLeafCount(kMerkleLeafSize + 1), 2u);
  EXPECT_EQ(MerkleLeafCount(uint64_t{1} << 40), uint64_t{1} << 24);
}

TEST(MerkleTest, LengthIsBoundIntoTheRoot) {
  // Same leaves as far as they go, different length: different ids.
  Bytes a = Pattern(1000);
  Bytes b = a;
  b.push_back(0);
  EXPECT_NE(MerkleRoot(a), MerkleRoot(b));
  // A one-leaf shard's root is not its leaf hash, nor any inner node.
  EXPECT_NE(MerkleRoot(a).ToHex(), HexEncode(Sha256(a)));
}

TEST(MerkleTest, EveryRunOfEveryShapeVerifies) {
  for (uint64_t leaves : {1u, 2u, 3u, 5u, 7u, 8u, 9u}) {
    Bytes shard = test::PseudoRandomBytes(leaves * kMerkleLeafSize - 100 * (leaves % 2), leaves);
    MerkleTree tree = MerkleTree::Build(shard);
    ASSERT_EQ(tree.leaf_count(), leaves);
    EXPECT_EQ(tree.root(), MerkleRoot(shard));
    for (uint64_t first = 0; first < leaves; ++first) {
      for (uint64_t count = 1; first + count <= leaves; ++count) {
        ASSERT_OK_AND_ASSIGN(MerkleProof proof, tree.Prove(first, count));
        EXPECT_OK(VerifyMerkleProof(tree.root(), shard.size(), first, LeafRun(shard, first, count),
                                    proof))
            << leaves << " leaves, run " << first << "+" << count;
      }
    }
  }
}

TEST(MerkleTest, ProofForOneLeafDoesNotVerifyAnother) {
  Bytes shard = test::PseudoRandomBytes(6 * kMerkleLeafSize, 5);
  MerkleTree tree = MerkleTree::Build(shard);
  for (uint64_t i = 0; i < 6; ++i) {
    ASSERT_OK_AND_ASSIGN(MerkleProof proof, tree.Prove(i, 1));
    for (uint64_t j = 0; j < 6; ++j) {
      if (i == j) continue;
      // Leaf j's bytes presented with leaf i's proof.
      EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), i, LeafRun(shard, j, 1), proof).code(),
                Code::kCorruption);
      // Leaf i's proof relabelled as leaf j's.
      MerkleProof moved = proof;
      moved.first_leaf = j;
      EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), j, LeafRun(shard, j, 1), moved).code(),
                Code::kCorruption);
      // A valid proof of leaf i, when leaf j was asked for: refused, not accepted as leaf j.
      EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), j, LeafRun(shard, i, 1), proof).code(),
                Code::kCorruption);
    }
  }
}

TEST(MerkleTest, TamperedOrMalformedProofsFail) {
  Bytes shard = test::PseudoRandomBytes(5 * kMerkleLeafSize + 123, 6);
  MerkleTree tree = MerkleTree::Build(shard);
  ASSERT_OK_AND_ASSIGN(MerkleProof proof, tree.Prove(1, 2));
  ByteSpan run = LeafRun(shard, 1, 2);
  ASSERT_OK(VerifyMerkleProof(tree.root(), shard.size(), proof.first_leaf, run, proof));

  Bytes bad_run(run.begin(), run.end());
  bad_run[777] ^= 1;
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), proof.first_leaf, bad_run, proof).code(),
            Code::kCorruption);
  // Truncated leaves.
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), proof.first_leaf,
                              run.first(run.size() - 1), proof)
                .code(),
            Code::kCorruption);
  // A flipped bit in a proof hash.
  for (size_t h = 0; h < proof.hashes.size(); ++h) {
    MerkleProof p = proof;
    p.hashes[h][5] ^= 0x40;
    EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), p.first_leaf, run, p).code(),
              Code::kCorruption);
  }
  // Too few and too many hashes.
  MerkleProof fewer = proof;
  fewer.hashes.pop_back();
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), fewer.first_leaf, run, fewer).code(),
            Code::kCorruption);
  MerkleProof more = proof;
  more.hashes.push_back(proof.hashes[0]);
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), more.first_leaf, run, more).code(),
            Code::kCorruption);
  // A lie about the shard's length.
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size() + 1, proof.first_leaf, run, proof).code(),
            Code::kCorruption);
  // Runs outside the shard, or empty.
  MerkleProof outside = proof;
  outside.first_leaf = 5;
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), outside.first_leaf, run, outside).code(),
            Code::kCorruption);
  MerkleProof empty = proof;
  empty.leaf_count = 0;
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), empty.first_leaf, {}, empty).code(),
            Code::kCorruption);
  MerkleProof huge = proof;
  huge.leaf_count = UINT64_MAX;
  EXPECT_EQ(VerifyMerkleProof(tree.root(), shard.size(), huge.first_leaf, run, huge).code(),
            Code::kCorruption);
  // Lengths near 2^64 would overflow offset arithmetic: refused outright.
  MerkleProof last = proof;
  last.first_leaf = (UINT64_MAX >> 16);
  last.leaf_count = 1;
  EXPECT_EQ(VerifyMerkleProof(tree.root(), UINT64_MAX, last.first_leaf, Bytes(65536), last).code(),
            Code::kCorruption);
  EXPECT_EQ(tree.Prove(6, 1).status().code(), Code::kOutOfRange);
  EXPECT_EQ(tree.Prove(0, 0).status().code(), Code::kOutOfRange);
  EXPECT_EQ(tree.Prove(2, UINT64_MAX).status().code(), Code::kOutOfRange);
}

TEST(MerkleTest, FromLeafHashesMatchesBuild) {
  Bytes shard = test::PseudoRandomBytes(3 * kMerkleLeafSize + 5, 8);
  MerkleTree built = MerkleTree::Build(shard);
  ASSERT_OK_AND_ASSIGN(MerkleTree again,
                       MerkleTree::FromLeafHashes(shard.size(), built.leaf_hashes()));
  EXPECT_EQ(again.root(), built.root());
  EXPECT_EQ(MerkleTree::FromLeafHashes(shard.size() + kMerkleLeafSize, built.leaf_hashes())
                .status()
                .code(),
            Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs::crypto

namespace shardfs::crypto {
namespace {

TEST(MerkleBuilderTest, StreamingMatchesWholeForEveryShapeAndSplit) {
  for (size_t len : {size_t{0}, size_t{1}, kMerkleLeafSize - 1, kMerkleLeafSize,
                     kMerkleLeafSize + 1, 2 * kMerkleLeafSize, 2 * kMerkleLeafSize + 1,
                     3 * kMerkleLeafSize, 4 * kMerkleLeafSize, 5 * kMerkleLeafSize + 77}) {
    Bytes data = test::PseudoRandomBytes(len, len + 3);
    for (size_t piece :
         {size_t{1} << 20, size_t{4096}, size_t{65537}, size_t{1000}, kMerkleLeafSize,
          2 * kMerkleLeafSize, 2 * kMerkleLeafSize + 1, 3 * kMerkleLeafSize - 1}) {
      MerkleBuilder b;
      for (size_t off = 0; off < len; off += piece) {
        b.Update(ByteSpan(data).subspan(off, std::min(piece, len - off)));
      }
      ASSERT_OK_AND_ASSIGN(MerkleTree tree, b.Finish());
      EXPECT_EQ(tree.root(), MerkleRoot(data)) << len << " in pieces of " << piece;
      EXPECT_EQ(tree.leaf_hashes().front(),
                MerkleLeafHash(ByteSpan(data).first(std::min(len, kMerkleLeafSize))));
    }
  }
}

// Leaves are hashed two at a time (crypto/sha256_pair.h); each hash must still be the plain
// one-leaf hash, wherever the leaf sits and however the bytes arrive.
TEST(MerkleBuilderTest, LeafHashesEqualOneAtATime) {
  Bytes data = test::PseudoRandomBytes(7 * kMerkleLeafSize + 12345, 99);
  std::vector<Digest256> expected;
  for (size_t off = 0; off < data.size(); off += kMerkleLeafSize) {
    expected.push_back(
        MerkleLeafHash(ByteSpan(data).subspan(off, std::min(kMerkleLeafSize, data.size() - off))));
  }
  EXPECT_EQ(MerkleTree::Build(data).leaf_hashes(), expected);
  std::vector<Digest256> batch;
  MerkleLeafHashes(data, &batch);
  EXPECT_EQ(batch, expected);
  for (size_t piece : {size_t{333}, kMerkleLeafSize + 3, 3 * kMerkleLeafSize}) {
    MerkleBuilder b;
    for (size_t off = 0; off < data.size(); off += piece) {
      b.Update(ByteSpan(data).subspan(off, std::min(piece, data.size() - off)));
    }
    ASSERT_OK_AND_ASSIGN(MerkleTree tree, b.Finish());
    EXPECT_EQ(tree.leaf_hashes(), expected) << piece;
  }
}

}  // namespace
}  // namespace shardfs::crypto

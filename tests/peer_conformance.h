// The conformance suite every backend::Peer passes: the in-memory peer, the HTTP peer against
// a real node, and any decorator. Include this header in one test file per binary and
// instantiate it:
//   INSTANTIATE_TEST_SUITE_P(Memory, PeerConformanceTest, ::testing::Values(factory));

#ifndef SHARDFS_TESTS_PEER_CONFORMANCE_H_
#define SHARDFS_TESTS_PEER_CONFORMANCE_H_

#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include "backend/peer.h"
#include "backend/slot.h"
#include "crypto/merkle.h"
#include "crypto/sign.h"
#include "tests/testutil.h"

namespace shardfs::test {

// A peer acting for `owner`, with whatever keeps it alive (a node, a folder).
class PeerUnderTest {
 public:
  virtual ~PeerUnderTest() = default;
  virtual backend::Peer& peer() = 0;
  virtual const crypto::SigningKey& owner() = 0;
};
using PeerFactory = std::function<std::unique_ptr<PeerUnderTest>()>;

class PeerConformanceTest : public ::testing::TestWithParam<PeerFactory> {
 protected:
  void SetUp() override { env_ = GetParam()(); }
  backend::Peer& peer() { return env_->peer(); }
  std::unique_ptr<PeerUnderTest> env_;
};

TEST_P(PeerConformanceTest, PutGetStatAndRepeat) {
  Bytes data = PseudoRandomBytes(3 * crypto::kMerkleLeafSize + 999, 1);
  ShardId id = crypto::MerkleRoot(data);
  EXPECT_EQ(peer().StatShard(id).status().code(), Code::kNotFound);
  EXPECT_EQ(peer().GetShard(id, nullptr).status().code(), Code::kNotFound);
  ASSERT_OK(peer().PutShard(id, data, nullptr));
  ASSERT_OK(peer().PutShard(id, data, nullptr));  // a repeat is fine
  ASSERT_OK_AND_ASSIGN(Bytes back, peer().GetShard(id, nullptr));
  EXPECT_EQ(back, data);
  ASSERT_OK_AND_ASSIGN(uint64_t len, peer().StatShard(id));
  EXPECT_EQ(len, data.size());
}

TEST_P(PeerConformanceTest, BytesThatAreNotTheIdAreRefused) {
  Bytes data = PseudoRandomBytes(5000, 2);
  ShardId other = crypto::MerkleRoot(PseudoRandomBytes(5000, 3));
  EXPECT_EQ(peer().PutShard(other, data, nullptr).code(), Code::kCorruption);
  EXPECT_EQ(peer().StatShard(other).status().code(), Code::kNotFound);
}

TEST_P(PeerConformanceTest, ReadRanges) {
  Bytes data = PseudoRandomBytes(4 * crypto::kMerkleLeafSize + 17, 4);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(peer().PutShard(id, data, nullptr));
  struct Range {
    uint64_t offset, size;
  };
  for (Range r : {Range{0, 1}, Range{0, data.size()}, Range{65535, 2}, Range{65536, 65536},
                  Range{100000, 150000}, Range{data.size() - 17, 17}, Range{data.size(), 0}}) {
    Bytes out(r.size);
    ASSERT_OK(peer().ReadShard(id, r.offset, out, nullptr)) << r.offset << "+" << r.size;
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + static_cast<ptrdiff_t>(r.offset)))
        << r.offset << "+" << r.size;
  }
  Bytes two(2);
  EXPECT_EQ(peer().ReadShard(id, data.size() - 1, two, nullptr).code(), Code::kOutOfRange);
  EXPECT_EQ(peer().ReadShard(id, UINT64_MAX - 1, two, nullptr).code(), Code::kOutOfRange);
  EXPECT_EQ(peer().ReadShard(crypto::MerkleRoot(two), 0, two, nullptr).code(), Code::kNotFound);
}

TEST_P(PeerConformanceTest, ProofsVerify) {
  Bytes data = PseudoRandomBytes(6 * crypto::kMerkleLeafSize + 5, 5);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(peer().PutShard(id, data, nullptr));
  for (uint64_t first = 0; first < 7; ++first) {
    ASSERT_OK_AND_ASSIGN(backend::ShardProof p, peer().ProveShard(id, first, 1));
    EXPECT_EQ(p.length, data.size());
    EXPECT_OK(crypto::VerifyMerkleProof(id, p.length, first, p.leaves, p.proof));
  }
  ASSERT_OK_AND_ASSIGN(backend::ShardProof all, peer().ProveShard(id, 0, 7));
  EXPECT_EQ(all.leaves, data);
  EXPECT_EQ(peer().ProveShard(id, 7, 1).status().code(), Code::kOutOfRange);
  EXPECT_EQ(peer().ProveShard(id, 3, 0).status().code(), Code::kOutOfRange);
}

TEST_P(PeerConformanceTest, DeleteDropsTheShard) {
  Bytes data = PseudoRandomBytes(1000, 6);
  ShardId id = crypto::MerkleRoot(data);
  ASSERT_OK(peer().PutShard(id, data, nullptr));
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus before, peer().GetStatus());
  ASSERT_OK(peer().DeleteShard(id));
  EXPECT_EQ(peer().DeleteShard(id).code(), Code::kNotFound);
  EXPECT_EQ(peer().GetShard(id, nullptr).status().code(), Code::kNotFound);
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus after, peer().GetStatus());
  EXPECT_EQ(after.shards + 1, before.shards);
  EXPECT_LT(after.used, before.used);
}

TEST_P(PeerConformanceTest, SlotsKeepTheNewestSignedRecord) {
  const crypto::SigningKey& key = env_->owner();
  ASSERT_OK_AND_ASSIGN(auto empty, peer().GetSlot());
  EXPECT_FALSE(empty.has_value());
  ASSERT_OK_AND_ASSIGN(Bytes r2, backend::SignSlotRecord(key, 2, ToBytes("two")));
  ASSERT_OK_AND_ASSIGN(Bytes r1, backend::SignSlotRecord(key, 1, ToBytes("one")));
  ASSERT_OK_AND_ASSIGN(Bytes r3, backend::SignSlotRecord(key, 3, ToBytes("three")));
  ASSERT_OK(peer().PutSlot(r2));
  EXPECT_EQ(peer().PutSlot(r1).code(), Code::kAlreadyExists);
  EXPECT_EQ(peer().PutSlot(r2).code(), Code::kAlreadyExists);
  auto stranger = crypto::SigningKey::Generate();
  ASSERT_OK_AND_ASSIGN(Bytes foreign, backend::SignSlotRecord(stranger, 9, ToBytes("x")));
  EXPECT_EQ(peer().PutSlot(foreign).code(), Code::kPermissionDenied);
  Bytes forged = r3;
  forged.back() ^= 1;
  EXPECT_EQ(peer().PutSlot(forged).code(), Code::kPermissionDenied);
  ASSERT_OK_AND_ASSIGN(auto got, peer().GetSlot());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, r2);
  ASSERT_OK(peer().PutSlot(r3));
  ASSERT_OK_AND_ASSIGN(got, peer().GetSlot());
  EXPECT_EQ(*got, r3);
}

TEST_P(PeerConformanceTest, StatusCountsShards) {
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s0, peer().GetStatus());
  Bytes data = PseudoRandomBytes(20000, 7);
  ASSERT_OK(peer().PutShard(crypto::MerkleRoot(data), data, nullptr));
  ASSERT_OK_AND_ASSIGN(backend::PeerStatus s1, peer().GetStatus());
  EXPECT_EQ(s1.shards, s0.shards + 1);
  EXPECT_GT(s1.used, s0.used);
  EXPECT_LE(s1.free, s0.free);
  EXPECT_GT(s1.capacity, 0u);
  EXPECT_FALSE(s1.version.empty());
}

TEST_P(PeerConformanceTest, CancelledCallsStop) {
  Bytes data = PseudoRandomBytes(1000, 8);
  ShardId id = crypto::MerkleRoot(data);
  CancelToken cancel;
  cancel.Cancel();
  EXPECT_EQ(peer().PutShard(id, data, &cancel).code(), Code::kCancelled);
  ASSERT_OK(peer().PutShard(id, data, nullptr));
  EXPECT_EQ(peer().GetShard(id, &cancel).status().code(), Code::kCancelled);
  Bytes out(10);
  EXPECT_EQ(peer().ReadShard(id, 0, out, &cancel).code(), Code::kCancelled);
}

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_PEER_CONFORMANCE_H_

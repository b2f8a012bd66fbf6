#include "backend/memory_peer.h"

#include "tests/peer_conformance.h"

namespace shardfs::test {
namespace {

class MemoryPeerUnderTest : public PeerUnderTest {
 public:
  MemoryPeerUnderTest()
      : key_(crypto::SigningKey::Generate()), peer_("memory", key_.public_key(), 64 << 20) {}
  backend::Peer& peer() override { return peer_; }
  const crypto::SigningKey& owner() override { return key_; }

 private:
  crypto::SigningKey key_;
  backend::MemoryPeer peer_;
};

INSTANTIATE_TEST_SUITE_P(Memory, PeerConformanceTest, ::testing::Values([] {
                           return std::unique_ptr<PeerUnderTest>(new MemoryPeerUnderTest);
                         }),
                         [](const auto&) { return std::string("node"); });

TEST(MemoryPeerTest, FullNodeRefuses) {
  auto key = crypto::SigningKey::Generate();
  backend::MemoryPeer peer("small", key.public_key(), 1000);
  Bytes data = PseudoRandomBytes(1001, 1);
  EXPECT_EQ(peer.PutShard(crypto::MerkleRoot(data), data, nullptr).code(), Code::kNoSpace);
}

}  // namespace
}  // namespace shardfs::test

#include "base/ids.h"

#include <type_traits>
#include <unordered_set>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(IdsTest, DistinctTypes) {
  static_assert(!std::is_convertible_v<ChunkId, ShardId>);
  static_assert(!std::is_convertible_v<ShardId, NodeId>);
  static_assert(!std::is_same_v<ChunkId, ShardId>);
  static_assert(ChunkId::kSize == 32 && PackId::kSize == 16);
}

TEST(IdsTest, HexRoundTripAndValidation) {
  std::string hex(64, 'a');
  auto id = ChunkId::FromHex(hex);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->ToHex(), hex);
  EXPECT_EQ(id->ShortHex(), "aaaaaaaa");
  EXPECT_FALSE(ChunkId::FromHex(std::string(62, 'a')).ok());
  EXPECT_FALSE(ChunkId::FromHex(std::string(63, 'a') + "x").ok());
  EXPECT_FALSE(PackId::FromBytes(Bytes(17)).ok());
  EXPECT_TRUE(ChunkId().IsZero());
  EXPECT_FALSE(id->IsZero());
}

TEST(IdsTest, OrderAndHash) {
  Bytes a(32, 0), b(32, 0);
  b[31] = 1;
  auto ia = ShardId::FromBytes(a).value();
  auto ib = ShardId::FromBytes(b).value();
  EXPECT_LT(ia, ib);
  EXPECT_NE(ia, ib);
  std::unordered_set<ShardId> set{ia, ib, ia};
  EXPECT_EQ(set.size(), 2u);
}

// Ids that share their first bytes (as ground ids would) still spread over buckets.
TEST(IdsTest, HashUsesEveryByte) {
  std::unordered_set<size_t> hashes;
  for (int i = 0; i < 1000; ++i) {
    Bytes b(32, 0);
    b[31] = static_cast<uint8_t>(i);
    b[30] = static_cast<uint8_t>(i >> 8);
    hashes.insert(std::hash<NodeId>()(NodeId::FromBytes(b).value()));
  }
  EXPECT_EQ(hashes.size(), 1000u);
}

}  // namespace
}  // namespace shardfs

#include "crypto/keys.h"

#include <set>

#include <gtest/gtest.h>

namespace shardfs::crypto {
namespace {

MasterKey CountingKey() {
  Bytes b(32);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<uint8_t>(i);
  return MasterKey{SecretKey::FromBytes(b).value()};
}

// Golden values computed independently (Python hashlib: BLAKE2b-256 keyed with the master
// key, salt = le64(sub-key id), personalization = "shardfs1"): stored data depends on these
// derivations, so they must never change.
TEST(KeysTest, SubKeyDerivationIsStable) {
  MasterKey m = CountingKey();
  EXPECT_EQ(HexEncode(DeriveSubKey(m, SubKey::kChunkId).span()),
            "a0fc2e00e115d851729b3fac6a883ef16ae44c03aa1b417577f49244b34d81d6");
  EXPECT_EQ(HexEncode(DeriveSubKey(m, SubKey::kChunkEncryption).span()),
            "2bcca70cbd7d24126c0cd1030a410adac32a9dddc6a87a9c48c1595adaa2e9cb");
  EXPECT_EQ(HexEncode(DeriveSubKey(m, SubKey::kOwnerSigning).span()),
            "1a14412f17e5f465f1fcbeeb04395932abd72475181ef13c8a9c0c9db13ff875");
}

TEST(KeysTest, DriveKeysAndChunkerSeed) {
  DriveKeys keys = DriveKeys::Derive(CountingKey());
  EXPECT_EQ(HexEncode(keys.chunk_id.span()),
            "a0fc2e00e115d851729b3fac6a883ef16ae44c03aa1b417577f49244b34d81d6");
  EXPECT_TRUE(keys.chunker_seed.Equals(DeriveSubKey(CountingKey(), SubKey::kChunkerSeed)));
  // Python: le64 of the first 8 bytes of sub-key 6.
  EXPECT_EQ(keys.ChunkerSeed(), 1266056176301284954ull);
}

TEST(KeysTest, SubKeysAreDistinct) {
  MasterKey m = MasterKey::Generate();
  std::set<std::string> seen;
  for (uint64_t p = 1; p <= 8; ++p) {
    seen.insert(HexEncode(DeriveSubKey(m, static_cast<SubKey>(p)).span()));
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_FALSE(DeriveSubKey(m, SubKey::kChunkId)
                   .Equals(DeriveSubKey(MasterKey::Generate(), SubKey::kChunkId)));
}

TEST(KeysTest, ItemKeyIsStableAndSeparatesPurposeAndId) {
  SecretKey parent = CountingKey().key;
  Bytes id(32, 7);
  // Python: blake2b(b"chunk\0" + bytes([7]*32), digest_size=32, key=parent).
  EXPECT_EQ(HexEncode(DeriveItemKey(parent, "chunk", id).span()),
            "59c21ea76c6569db20fd82eb14cdc97774a5a07f11a3b9cf437266bfe3d088d5");
  EXPECT_FALSE(DeriveItemKey(parent, "chunk", id).Equals(DeriveItemKey(parent, "pack", id)));
  Bytes id2 = id;
  id2[0] ^= 1;
  EXPECT_FALSE(DeriveItemKey(parent, "chunk", id).Equals(DeriveItemKey(parent, "chunk", id2)));
  // The zero separator keeps ("ab", "c...") apart from ("a", "bc...").
  Bytes c = ToBytes("c");
  Bytes bc = ToBytes("bc");
  EXPECT_FALSE(DeriveItemKey(parent, "ab", c).Equals(DeriveItemKey(parent, "a", bc)));
}

TEST(SecretBytesTest, RandomIsRandomAndEqualsIsByValue) {
  SecretKey a = SecretKey::Random(), b = SecretKey::Random();
  EXPECT_FALSE(a.Equals(b));
  SecretKey c = a;
  EXPECT_TRUE(c.Equals(a));
  EXPECT_FALSE(SecretKey::FromBytes(Bytes(31)).ok());
}

}  // namespace
}  // namespace shardfs::crypto

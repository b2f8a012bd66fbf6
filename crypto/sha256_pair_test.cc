#include "crypto/sha256_pair.h"

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "tests/testutil.h"

namespace shardfs::crypto {
namespace {

Digest256 Reference(uint8_t prefix, ByteSpan body) {
  Bytes m{prefix};
  m.insert(m.end(), body.begin(), body.end());
  return Sha256(m);
}

TEST(Sha256PairTest, KnownAnswers) {
  // FIPS 180-2 example "abc", and "a" (prefix only).
  Bytes bc = ToBytes("bc");
  Digest256 x, y;
  Sha256Pair('a', bc, bc, &x, &y);
  EXPECT_EQ(HexEncode(x), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(x, y);
  Sha256Pair('a', {}, {}, &x, &y);
  EXPECT_EQ(HexEncode(x), "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
  EXPECT_EQ(HexEncode(y), HexEncode(x));
}

// Every length around the block and padding boundaries, and a whole Merkle leaf; the two
// lanes get different bytes, so a mix-up between them shows.
TEST(Sha256PairTest, EqualsOpenSslForEveryLengthNearABoundary) {
  RecordProperty("accelerated", Sha256PairAccelerated() ? "yes" : "no");
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 200; ++n) lengths.push_back(n);
  for (size_t n : {1000u, 4095u, 4096u, 65534u, 65535u, 65536u, 65537u}) lengths.push_back(n);
  for (size_t n : lengths) {
    Bytes a = test::PseudoRandomBytes(n, 2 * n + 1);
    Bytes b = test::PseudoRandomBytes(n, 2 * n + 2);
    for (uint8_t prefix : {uint8_t{0x00}, uint8_t{0x01}, uint8_t{0xff}}) {
      Digest256 ha, hb, pa, pb;
      Sha256Pair(prefix, a, b, &ha, &hb);
      Sha256PairPortable(prefix, a, b, &pa, &pb);
      ASSERT_EQ(ha, Reference(prefix, a)) << "length " << n;
      ASSERT_EQ(hb, Reference(prefix, b)) << "length " << n;
      ASSERT_EQ(pa, ha);
      ASSERT_EQ(pb, hb);
    }
  }
}

TEST(Sha256PairTest, UnequalLengthsHashOneByOne) {
  Bytes a = test::PseudoRandomBytes(100, 1);
  Bytes b = test::PseudoRandomBytes(300, 2);
  Digest256 ha, hb;
  Sha256Pair(0x00, a, b, &ha, &hb);
  EXPECT_EQ(ha, Reference(0x00, a));
  EXPECT_EQ(hb, Reference(0x00, b));
}

// Inputs at any alignment: the lanes load unaligned, from an odd offset after the prefix.
TEST(Sha256PairTest, AnyAlignment) {
  Bytes buf = test::PseudoRandomBytes(4096 + 64, 7);
  for (size_t shift = 0; shift < 17; ++shift) {
    ByteSpan a = ByteSpan(buf).subspan(shift, 1500);
    ByteSpan b = ByteSpan(buf).subspan(shift + 2000, 1500);
    Digest256 ha, hb;
    Sha256Pair(0x00, a, b, &ha, &hb);
    EXPECT_EQ(ha, Reference(0x00, a)) << shift;
    EXPECT_EQ(hb, Reference(0x00, b)) << shift;
  }
}

}  // namespace
}  // namespace shardfs::crypto

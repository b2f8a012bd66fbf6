#include "crypto/hash.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::crypto {
namespace {

std::string Hex(const Digest256& d) { return HexEncode(d); }

TEST(HashTest, Sha256KnownAnswers) {
  EXPECT_EQ(Hex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(HashTest, IncrementalMatchesOneShot) {
  Bytes data = test::PseudoRandomBytes(100000, 1);
  Sha256Hasher h;
  h.Update(ByteSpan(data).first(7));
  h.Update(ByteSpan(data).subspan(7));
  EXPECT_EQ(h.Final(), Sha256(data));
  // Final resets: the hasher is reusable.
  h.Update(AsBytes("abc"));
  EXPECT_EQ(h.Final(), Sha256(AsBytes("abc")));
}

TEST(HashTest, HmacSha256Rfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(Hex(HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 4231 test case 1.
  Bytes key(20, 0x0b);
  EXPECT_EQ(Hex(HmacSha256(key, AsBytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HashTest, Blake2bKnownAnswers) {
  EXPECT_EQ(Hex(Blake2b256({})),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(Hex(Blake2b256(AsBytes("abc"))),
            "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  Bytes key(32, 1);
  EXPECT_NE(Blake2b256(AsBytes("abc"), key), Blake2b256(AsBytes("abc")));
}

TEST(ChunkIdHasherTest, KeyedAndDeterministic) {
  SecretKey k1 = SecretKey::Random(), k2 = SecretKey::Random();
  ChunkIdHasher a(k1), b(k1), c(k2);
  Bytes data = test::PseudoRandomBytes(5000, 2);
  EXPECT_EQ(a.Compute(data), b.Compute(data));
  EXPECT_NE(a.Compute(data), c.Compute(data));  // another drive's key: another id
  data[4999] ^= 1;
  EXPECT_NE(a.Compute(data), b.Compute(test::PseudoRandomBytes(5000, 2)));
  // It is HMAC-SHA-256 (chunk id algorithm 1 in docs/format.md).
  EXPECT_EQ(a.Compute(data).ToHex(), HexEncode(HmacSha256(k1.span(), data)));
}

}  // namespace
}  // namespace shardfs::crypto

#include "crypto/aead.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::crypto {
namespace {

SecretKey KeyFromHex(std::string_view hex) {
  return SecretKey::FromBytes(HexDecode(hex).value()).value();
}

TEST(AeadTest, Aes256GcmKnownAnswer) {
  // The GCM specification's test case 16 (256-bit key, with associated data).
  SecretKey key = KeyFromHex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  Bytes iv = HexDecode("cafebabefacedbaddecaf888").value();
  Bytes pt = HexDecode(
                 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c959568095"
                 "32fcf0e2449a6b525b16aedf5aa0de657ba637b39")
                 .value();
  Bytes ad = HexDecode("feedfacedeadbeeffeedfacedeadbeefabaddad2").value();
  Bytes out(pt.size() + kAeadTagSize);
  ASSERT_OK(AeadSeal(Cipher::kAes256Gcm, key, iv, ad, pt, out));
  EXPECT_EQ(HexEncode(out),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b0"
            "8b1056828838c5f61e6393ba7a0abcc9f66276fc6ece0f4e1768cddf8853bb2d551b");
  Bytes back(pt.size());
  ASSERT_OK(AeadOpen(Cipher::kAes256Gcm, key, iv, ad, out, back));
  EXPECT_EQ(back, pt);
}

TEST(AeadTest, XChaCha20Poly1305KnownAnswer) {
  // draft-irtf-cfrg-xchacha, appendix A.3.1.
  Bytes k(32), nonce(24);
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(0x80 + i);
  for (int i = 0; i < 24; ++i) nonce[i] = static_cast<uint8_t>(0x40 + i);
  SecretKey key = SecretKey::FromBytes(k).value();
  Bytes ad = HexDecode("50515253c0c1c2c3c4c5c6c7").value();
  std::string_view pt =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
      "future, sunscreen would be it.";
  Bytes out(pt.size() + kAeadTagSize);
  ASSERT_OK(AeadSeal(Cipher::kXChaCha20Poly1305, key, nonce, ad, AsBytes(pt), out));
  EXPECT_EQ(HexEncode(out),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3"
            "a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2b"
            "c369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52ec0875924c1c7987947deafd8"
            "780acf49");
}

class AeadCipherTest : public ::testing::TestWithParam<Cipher> {};

TEST_P(AeadCipherTest, RoundTripInPlace) {
  Cipher c = GetParam();
  SecretKey key = SecretKey::Random();
  Bytes nonce(NonceSize(c));
  RandomBytes(nonce);
  Bytes data = test::PseudoRandomBytes(100000, 3);
  Bytes buf = data;
  buf.resize(data.size() + kAeadTagSize);
  ASSERT_OK(AeadSeal(c, key, nonce, AsBytes("ad"), ByteSpan(buf).first(data.size()), buf));
  // Sealed in place: the bytes changed (comparing one byte would match once in 256 keys).
  EXPECT_NE(Bytes(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(data.size())), data);
  ASSERT_OK(AeadOpen(c, key, nonce, AsBytes("ad"), buf, MutableByteSpan(buf).first(data.size())));
  buf.resize(data.size());
  EXPECT_EQ(buf, data);
}

TEST_P(AeadCipherTest, EveryFlippedBitFails) {
  Cipher c = GetParam();
  SecretKey key = SecretKey::Random();
  Bytes nonce(NonceSize(c), 9);
  Bytes pt = test::PseudoRandomBytes(40, 4);
  Bytes sealed(pt.size() + kAeadTagSize);
  ASSERT_OK(AeadSeal(c, key, nonce, AsBytes("ad"), pt, sealed));
  Bytes out(pt.size());
  for (size_t bit = 0; bit < sealed.size() * 8; ++bit) {
    Bytes bad = sealed;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    Status s = AeadOpen(c, key, nonce, AsBytes("ad"), bad, out);
    ASSERT_EQ(s.code(), Code::kCorruption) << "bit " << bit;
    EXPECT_EQ(out, Bytes(pt.size(), 0));  // nothing unauthenticated is released
  }
}

TEST_P(AeadCipherTest, WrongKeyNonceOrAdFails) {
  Cipher c = GetParam();
  SecretKey key = SecretKey::Random();
  Bytes nonce(NonceSize(c), 1);
  Bytes pt = ToBytes("hello");
  Bytes sealed(pt.size() + kAeadTagSize), out(pt.size());
  ASSERT_OK(AeadSeal(c, key, nonce, AsBytes("ad"), pt, sealed));
  EXPECT_EQ(AeadOpen(c, SecretKey::Random(), nonce, AsBytes("ad"), sealed, out).code(),
            Code::kCorruption);
  Bytes other_nonce(NonceSize(c), 2);
  EXPECT_EQ(AeadOpen(c, key, other_nonce, AsBytes("ad"), sealed, out).code(), Code::kCorruption);
  EXPECT_EQ(AeadOpen(c, key, nonce, AsBytes("ae"), sealed, out).code(), Code::kCorruption);
  EXPECT_OK(AeadOpen(c, key, nonce, AsBytes("ad"), sealed, out));
}

TEST_P(AeadCipherTest, TruncatedOrMisSizedInputIsAnError) {
  Cipher c = GetParam();
  SecretKey key = SecretKey::Random();
  Bytes nonce(NonceSize(c), 1);
  Bytes out(4);
  EXPECT_EQ(AeadOpen(c, key, nonce, {}, Bytes(10), out).code(), Code::kInvalidArgument);
  EXPECT_EQ(AeadOpen(c, key, nonce, {}, Bytes(3), out).code(), Code::kInvalidArgument);
  EXPECT_EQ(AeadOpen(c, key, Bytes(5), {}, Bytes(20), out).code(), Code::kInvalidArgument);
  Bytes sealed(kAeadTagSize);
  ASSERT_OK(AeadSeal(c, key, nonce, {}, {}, sealed));  // empty plaintext is fine
  Bytes none;
  EXPECT_OK(AeadOpen(c, key, nonce, {}, sealed, none));
}

TEST_P(AeadCipherTest, BoxRoundTripsWithFreshNonces) {
  Cipher c = GetParam();
  SecretKey key = SecretKey::Random();
  Bytes pt = test::PseudoRandomBytes(1000, 7);
  Bytes a(pt.size() + AeadBoxOverhead(c)), b(a.size());
  ASSERT_OK(AeadSealBox(c, key, AsBytes("ad"), pt, a));
  ASSERT_OK(AeadSealBox(c, key, AsBytes("ad"), pt, b));
  EXPECT_NE(a, b);  // a new random nonce each time
  Bytes back(pt.size());
  ASSERT_OK(AeadOpenBox(c, key, AsBytes("ad"), a, back));
  EXPECT_EQ(back, pt);
  a[0] ^= 1;  // the nonce is authenticated like the rest
  EXPECT_EQ(AeadOpenBox(c, key, AsBytes("ad"), a, back).code(), Code::kCorruption);
  Bytes small(pt.size());
  EXPECT_EQ(AeadSealBox(c, key, {}, pt, small).code(), Code::kInvalidArgument);
  EXPECT_EQ(AeadOpenBox(c, key, {}, ByteSpan(b).first(AeadBoxOverhead(c) - 1), {}).code(),
            Code::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Ciphers, AeadCipherTest,
                         ::testing::Values(Cipher::kAes256Gcm, Cipher::kXChaCha20Poly1305),
                         [](const auto& p) {
                           return p.param == Cipher::kAes256Gcm ? "Aes256Gcm" : "XChaCha";
                         });

TEST(AeadTest, CipherNumbersAreStable) {
  EXPECT_EQ(static_cast<int>(Cipher::kAes256Gcm), 1);
  EXPECT_EQ(static_cast<int>(Cipher::kXChaCha20Poly1305), 2);
  EXPECT_TRUE(CipherFromByte(1).ok());
  EXPECT_EQ(CipherFromByte(0).status().code(), Code::kCorruption);
  EXPECT_EQ(CipherFromByte(3).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace shardfs::crypto

#include "crypto/sign.h"

#include <gtest/gtest.h>

namespace shardfs::crypto {
namespace {

TEST(SignTest, Rfc8032TestVector1) {
  SecretKey seed =
      SecretKey::FromBytes(
          HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60").value())
          .value();
  SigningKey key = SigningKey::FromSeed(seed);
  EXPECT_EQ(key.public_key().ToHex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  Signature sig = key.Sign({});
  EXPECT_EQ(HexEncode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
            "39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  EXPECT_TRUE(VerifySignature(key.public_key(), {}, sig));
}

TEST(SignTest, TamperedMessageSignatureOrKeyFails) {
  SigningKey key = SigningKey::Generate();
  Bytes msg = ToBytes("PUT /v1/shards/abc 1700000000");
  Signature sig = key.Sign(msg);
  EXPECT_TRUE(VerifySignature(key.public_key(), msg, sig));
  Bytes bad_msg = msg;
  bad_msg[0] ^= 1;
  EXPECT_FALSE(VerifySignature(key.public_key(), bad_msg, sig));
  for (size_t i = 0; i < sig.size(); i += 7) {
    Signature bad = sig;
    bad[i] ^= 0x10;
    EXPECT_FALSE(VerifySignature(key.public_key(), msg, bad)) << i;
  }
  EXPECT_FALSE(VerifySignature(SigningKey::Generate().public_key(), msg, sig));
}

TEST(SignTest, SameSeedSameKey) {
  SecretKey seed = SecretKey::Random();
  EXPECT_EQ(SigningKey::FromSeed(seed).public_key(), SigningKey::FromSeed(seed).public_key());
  EXPECT_NE(SigningKey::Generate().public_key(), SigningKey::Generate().public_key());
  EXPECT_EQ(NodeIdOf(SigningKey::FromSeed(seed).public_key()).ToHex(),
            SigningKey::FromSeed(seed).public_key().ToHex());
}

}  // namespace
}  // namespace shardfs::crypto

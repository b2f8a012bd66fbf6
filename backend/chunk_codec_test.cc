#include "backend/chunk_codec.h"

#include <gtest/gtest.h>

#include "crypto/hash.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

using crypto::Cipher;

Bytes Text(size_t n) {
  std::string s;
  while (s.size() < n)
    s += "The quick brown fox jumps over the lazy dog. " + std::to_string(s.size());
  s.resize(n);
  return ToBytes(s);
}

struct Sealed {
  Bytes bytes;
  SealedChunkInfo info;
};

Sealed SealIt(const ChunkSealer& s, const ChunkId& id, ByteSpan pt) {
  Sealed out;
  out.bytes.resize(ChunkSealer::MaxSealedSize(pt.size(), s.options().cipher));
  Result<SealedChunkInfo> info = s.Seal(id, pt, out.bytes);
  EXPECT_OK(info);
  out.info = *info;
  out.bytes.resize(out.info.sealed_size);
  return out;
}

class ChunkCodecTest : public ::testing::TestWithParam<Cipher> {
 protected:
  crypto::SecretKey key_ = crypto::SecretKey::Random();
  crypto::ChunkIdHasher hasher_{crypto::SecretKey::Random()};
  ChunkSealer Sealer(Compression c) { return ChunkSealer(key_, {GetParam(), c, 1}); }
};

TEST_P(ChunkCodecTest, RoundTripsRawChunksOfManySizes) {
  ChunkSealer s = Sealer(Compression::kOff);
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}, size_t{1} << 20}) {
    Bytes pt = test::PseudoRandomBytes(n, n);
    ChunkId id = hasher_.Compute(pt);
    Sealed sealed = SealIt(s, id, pt);
    EXPECT_EQ(sealed.info.codec, ChunkCodec::kRaw);
    EXPECT_EQ(sealed.info.sealed_size, n + ChunkSealer::Overhead(GetParam()));
    Bytes back(n);
    ASSERT_OK(s.Open(GetParam(), id, sealed.info.codec, sealed.bytes, back));
    EXPECT_EQ(back, pt);
  }
}

TEST_P(ChunkCodecTest, CompressesWhatCompressesOnly) {
  ChunkSealer s = Sealer(Compression::kAuto);
  Bytes text = Text(300000);
  ChunkId id = hasher_.Compute(text);
  Sealed sealed = SealIt(s, id, text);
  EXPECT_EQ(sealed.info.codec, ChunkCodec::kZstd);
  EXPECT_LT(sealed.info.sealed_size, text.size() / 4);
  Bytes back(text.size());
  ASSERT_OK(s.Open(GetParam(), id, ChunkCodec::kZstd, sealed.bytes, back));
  EXPECT_EQ(back, text);

  Bytes random = test::PseudoRandomBytes(300000, 1);
  Sealed raw = SealIt(s, hasher_.Compute(random), random);
  EXPECT_EQ(raw.info.codec, ChunkCodec::kRaw);
}

TEST_P(ChunkCodecTest, NoncesAreFreshAndNothingIsInTheClear) {
  ChunkSealer s = Sealer(Compression::kOff);
  Bytes pt = Text(5000);
  ChunkId id = hasher_.Compute(pt);
  Sealed a = SealIt(s, id, pt), b = SealIt(s, id, pt);
  EXPECT_NE(a.bytes, b.bytes);
  std::string hay(a.bytes.begin(), a.bytes.end());
  EXPECT_EQ(hay.find("quick brown fox"), std::string::npos);
}

TEST_P(ChunkCodecTest, WrongIdCodecSizeOrCipherFails) {
  ChunkSealer s = Sealer(Compression::kAuto);
  Bytes pt = Text(10000);
  ChunkId id = hasher_.Compute(pt);
  Sealed sealed = SealIt(s, id, pt);
  ASSERT_EQ(sealed.info.codec, ChunkCodec::kZstd);
  Bytes out(pt.size());
  EXPECT_EQ(
      s.Open(GetParam(), hasher_.Compute(AsBytes("other")), ChunkCodec::kZstd, sealed.bytes, out)
          .code(),
      Code::kCorruption);
  EXPECT_EQ(s.Open(GetParam(), id, ChunkCodec::kRaw, sealed.bytes, out).code(), Code::kCorruption);
  Bytes shorter(pt.size() - 1);
  EXPECT_EQ(s.Open(GetParam(), id, ChunkCodec::kZstd, sealed.bytes, shorter).code(),
            Code::kCorruption);
  Cipher other = GetParam() == Cipher::kAes256Gcm ? Cipher::kXChaCha20Poly1305 : Cipher::kAes256Gcm;
  EXPECT_FALSE(s.Open(other, id, ChunkCodec::kZstd, sealed.bytes, out).ok());
  ChunkSealer other_key(crypto::SecretKey::Random(), s.options());
  EXPECT_EQ(other_key.Open(GetParam(), id, ChunkCodec::kZstd, sealed.bytes, out).code(),
            Code::kCorruption);
  EXPECT_OK(s.Open(GetParam(), id, ChunkCodec::kZstd, sealed.bytes, out));
}

TEST_P(ChunkCodecTest, EveryFlippedBitAndTruncationFails) {
  ChunkSealer s = Sealer(Compression::kOff);
  Bytes pt = test::PseudoRandomBytes(64, 2);
  ChunkId id = hasher_.Compute(pt);
  Sealed sealed = SealIt(s, id, pt);
  Bytes out(pt.size());
  for (size_t bit = 0; bit < sealed.bytes.size() * 8; ++bit) {
    Bytes bad = sealed.bytes;
    bad[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    ASSERT_EQ(s.Open(GetParam(), id, ChunkCodec::kRaw, bad, out).code(), Code::kCorruption) << bit;
  }
  for (size_t n = 0; n < sealed.bytes.size(); ++n) {
    EXPECT_FALSE(
        s.Open(GetParam(), id, ChunkCodec::kRaw, ByteSpan(sealed.bytes).first(n), out).ok());
  }
}

TEST_P(ChunkCodecTest, RejectsOversizeAndShortBuffers) {
  ChunkSealer s = Sealer(Compression::kOff);
  Bytes small(10);
  Bytes pt(100);
  EXPECT_EQ(s.Seal(ChunkId(), pt, small).status().code(), Code::kInvalidArgument);
  Bytes huge((64u << 20) + 1);
  Bytes huge_out(huge.size() + 64);
  EXPECT_EQ(s.Seal(ChunkId(), huge, huge_out).status().code(), Code::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Ciphers, ChunkCodecTest,
                         ::testing::Values(Cipher::kAes256Gcm, Cipher::kXChaCha20Poly1305),
                         [](const auto& p) {
                           return p.param == Cipher::kAes256Gcm ? "Aes256Gcm" : "XChaCha";
                         });

}  // namespace
}  // namespace shardfs::backend

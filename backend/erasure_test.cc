#include "backend/erasure.h"

#include <string>

#include <gtest/gtest.h>

#include "crypto/hash.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

struct Stripe {
  std::vector<Bytes> shards;  // k data then m parity
};

Stripe MakeStripe(const ErasureCoder& ec, size_t len, uint64_t seed) {
  Stripe s;
  for (int i = 0; i < ec.k(); ++i) s.shards.push_back(test::PseudoRandomBytes(len, seed + i));
  for (int j = 0; j < ec.m(); ++j) s.shards.emplace_back(len);
  std::vector<ByteSpan> data(s.shards.begin(), s.shards.begin() + ec.k());
  std::vector<MutableByteSpan> parity(s.shards.begin() + ec.k(), s.shards.end());
  EXPECT_OK(ec.Encode(data, parity));
  return s;
}

// Calls f for every subset of {0..n-1} with at most `max_size` members.
template <typename F>
void ForEachSubset(int n, int max_size, F&& f) {
  for (uint32_t mask = 0; mask < (1u << n); ++mask) {
    if (std::popcount(mask) <= max_size) f(mask);
  }
}

TEST(ErasureCoderTest, ValidatesParameters) {
  EXPECT_EQ(ErasureCoder::Create(0, 2).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ErasureCoder::Create(4, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ErasureCoder::Create(200, 56).status().code(), Code::kInvalidArgument);
  EXPECT_OK(ErasureCoder::Create(1, 1));
  EXPECT_OK(ErasureCoder::Create(200, 55));
}

// Parity bytes are a stored format: these were computed by an independent implementation
// (Python: GF(2^8) mod 0x11d, parity row k+j = 1/((k+j) xor c)).
TEST(ErasureCoderTest, GoldenParity) {
  for (auto [k, m, golden] :
       {std::tuple{4, 2, "e39815492f28d8dfda6cc276836b24f4aaeb8674a1d1f6a937bb0e1f35fee303"},
        std::tuple{10, 4, "7122a848bf9bbc9e01200380a5f1a443c40501bfb40e60b3b9bea6458f194a09"}}) {
    ErasureCoder ec = ErasureCoder::Create(k, m).value();
    std::vector<Bytes> data(k, Bytes(100));
    for (int i = 0; i < k; ++i)
      for (int t = 0; t < 100; ++t) data[i][t] = static_cast<uint8_t>(i * 31 + t * 7);
    std::vector<Bytes> parity(m, Bytes(100));
    std::vector<ByteSpan> in(data.begin(), data.end());
    std::vector<MutableByteSpan> out(parity.begin(), parity.end());
    ASSERT_OK(ec.Encode(in, out));
    Bytes all;
    for (const auto& p : parity) all.insert(all.end(), p.begin(), p.end());
    EXPECT_EQ(HexEncode(crypto::Sha256(all)), golden) << k << "+" << m;
  }
}

// Every pattern of up to m lost shards, for (4,2) and (10,4), rebuilds the original bytes.
TEST(ErasureCoderTest, EveryErasurePatternUpToMRecovers) {
  for (auto km : {std::pair{4, 2}, std::pair{10, 4}}) {
    const int k = km.first, m = km.second;  // plain variables: the lambda below captures them
    ErasureCoder ec = ErasureCoder::Create(k, m).value();
    Stripe s = MakeStripe(ec, 1000 + 3, 100);  // odd length: exercises ISA-L's tail path
    int patterns = 0;
    ForEachSubset(k + m, m, [&](uint32_t lost) {
      if (lost == 0) return;
      std::vector<ShardPiece> present;
      std::vector<Bytes> rebuilt;
      std::vector<int> lost_idx;
      for (int i = 0; i < k + m; ++i) {
        if (lost & (1u << i)) {
          lost_idx.push_back(i);
        } else {
          present.push_back({i, s.shards[i]});
        }
      }
      rebuilt.assign(lost_idx.size(), Bytes(s.shards[0].size(), 0xee));
      std::vector<ShardOutput> wanted;
      for (size_t w = 0; w < lost_idx.size(); ++w) wanted.push_back({lost_idx[w], rebuilt[w]});
      ASSERT_OK(ec.Reconstruct(present, wanted)) << "lost mask " << lost;
      for (size_t w = 0; w < lost_idx.size(); ++w) {
        ASSERT_EQ(rebuilt[w], s.shards[lost_idx[w]]) << "lost mask " << lost;
      }
      ++patterns;
    });
    EXPECT_EQ(patterns, k + m == 6 ? 6 + 15 : 14 + 91 + 364 + 1001);
  }
}

TEST(ErasureCoderTest, MoreThanMLossesIsAClearError) {
  ErasureCoder ec = ErasureCoder::Create(4, 2).value();
  Stripe s = MakeStripe(ec, 256, 7);
  std::vector<ShardPiece> present = {{0, s.shards[0]}, {4, s.shards[4]}, {5, s.shards[5]}};
  Bytes out(256);
  Status st = ec.Reconstruct(present, std::vector<ShardOutput>{{1, out}});
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_NE(st.message().find("3 of 6"), std::string::npos) << st.ToString();
  // Duplicates do not count twice.
  present.push_back({0, s.shards[0]});
  EXPECT_EQ(ec.Reconstruct(present, std::vector<ShardOutput>{{1, out}}).code(), Code::kUnavailable);
}

TEST(ErasureCoderTest, RejectsMalformedCalls) {
  ErasureCoder ec = ErasureCoder::Create(4, 2).value();
  Stripe s = MakeStripe(ec, 256, 8);
  std::vector<ShardPiece> present;
  for (int i = 0; i < 4; ++i) present.push_back({i, s.shards[i]});
  Bytes out(256), out2(256), short_out(100);
  EXPECT_EQ(ec.Reconstruct(present, std::vector<ShardOutput>{{6, out}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ec.Reconstruct(present, std::vector<ShardOutput>{{4, out}, {4, out2}}).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ec.Reconstruct(present, std::vector<ShardOutput>{{4, short_out}}).code(),
            Code::kInvalidArgument);
  std::vector<ShardPiece> bad = present;
  bad[0].index = -1;
  EXPECT_EQ(ec.Reconstruct(bad, std::vector<ShardOutput>{{4, out}}).code(), Code::kInvalidArgument);
  std::vector<ByteSpan> three(s.shards.begin(), s.shards.begin() + 3);
  std::vector<MutableByteSpan> parity = {out, out2};
  EXPECT_EQ(ec.Encode(three, parity).code(), Code::kInvalidArgument);
}

// Decoding a column range from the same range of k shards equals that range of a full decode.
TEST(ErasureCoderTest, RangeDecodeEqualsFullDecode) {
  ErasureCoder ec = ErasureCoder::Create(4, 2).value();
  const size_t len = 70000;
  Stripe s = MakeStripe(ec, len, 9);
  // Lose data shards 0 and 2; decode from 1, 3, 4, 5.
  std::vector<Bytes> full(2, Bytes(len));
  std::vector<ShardPiece> present = {
      {1, s.shards[1]}, {3, s.shards[3]}, {4, s.shards[4]}, {5, s.shards[5]}};
  ASSERT_OK(ec.Reconstruct(present, std::vector<ShardOutput>{{0, full[0]}, {2, full[1]}}));
  ASSERT_EQ(full[0], s.shards[0]);
  uint64_t state = 1;
  for (int trial = 0; trial < 200; ++trial) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    size_t a = (state >> 33) % len;
    size_t b = a + 1 + (state >> 13) % (len - a);
    std::vector<ShardPiece> cols;
    for (const auto& p : present) cols.push_back({p.index, p.bytes.subspan(a, b - a)});
    Bytes r0(b - a), r2(b - a);
    ASSERT_OK(ec.Reconstruct(cols, std::vector<ShardOutput>{{0, r0}, {2, r2}}));
    ASSERT_EQ(0, std::memcmp(r0.data(), full[0].data() + a, b - a)) << a << ".." << b;
    ASSERT_EQ(0, std::memcmp(r2.data(), full[1].data() + a, b - a)) << a << ".." << b;
  }
}

TEST(ErasureCoderTest, RegeneratesParityForRepair) {
  ErasureCoder ec = ErasureCoder::Create(10, 4).value();
  Stripe s = MakeStripe(ec, 4096, 10);
  // Parity shards 11 and 13 lost along with data shard 2: rebuild all three from the rest.
  std::vector<ShardPiece> present;
  for (int i : {0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 12}) present.push_back({i, s.shards[i]});
  Bytes p11(4096), p13(4096), d2(4096);
  ASSERT_OK(ec.Reconstruct(present, std::vector<ShardOutput>{{11, p11}, {13, p13}, {2, d2}}));
  EXPECT_EQ(p11, s.shards[11]);
  EXPECT_EQ(p13, s.shards[13]);
  EXPECT_EQ(d2, s.shards[2]);
}

TEST(StripeLayoutTest, SizesAndPadding) {
  ASSERT_OK_AND_ASSIGN(StripeLayout l, StripeLayout::ForPack(1000, 4, 2));
  EXPECT_EQ(l.shard_size, kMinShardSize);  // small packs all look alike
  EXPECT_EQ(l.padded_size(), 4 * kMinShardSize);
  ASSERT_OK_AND_ASSIGN(StripeLayout mid, StripeLayout::ForPack(100000, 4, 2));
  EXPECT_EQ(mid.shard_size, 25024u);  // ceil(100000 / 4) = 25000, rounded up to 64
  ASSERT_OK_AND_ASSIGN(StripeLayout big, StripeLayout::ForPack(16 << 20, 4, 2));
  EXPECT_EQ(big.shard_size, 4u << 20);
  EXPECT_FALSE(StripeLayout::ForPack(0, 4, 2).ok());
  EXPECT_FALSE(StripeLayout::ForPack(kMaxPackSize + 1, 4, 2).ok());
  EXPECT_FALSE(StripeLayout::ForPack(100, 0, 2).ok());
}

TEST(StripeLayoutTest, LocateSplitsAtShardBoundaries) {
  ASSERT_OK_AND_ASSIGN(StripeLayout l, StripeLayout::ForPack(100000, 4, 2));
  const uint64_t s = l.shard_size;
  ASSERT_OK_AND_ASSIGN(auto one, l.Locate(10, 20));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].shard, 0);
  EXPECT_EQ(one[0].shard_offset, 10u);
  ASSERT_OK_AND_ASSIGN(auto two, l.Locate(s - 6, 10));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].shard, 0);
  EXPECT_EQ(two[0].shard_offset, s - 6);
  EXPECT_EQ(two[0].length, 6u);
  EXPECT_EQ(two[1].shard, 1);
  EXPECT_EQ(two[1].shard_offset, 0u);
  EXPECT_EQ(two[1].length, 4u);
  ASSERT_OK_AND_ASSIGN(auto all, l.Locate(0, 100000));
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3].length, 100000u - 3 * s);
  EXPECT_EQ(l.Locate(99999, 2).status().code(), Code::kOutOfRange);
  EXPECT_EQ(l.Locate(0, 0).status().code(), Code::kOutOfRange);
  EXPECT_EQ(l.Locate(UINT64_MAX, 2).status().code(), Code::kOutOfRange);
}

// A layout from a damaged record must not divide by zero or name shards that do not exist.
TEST(StripeLayoutTest, HandMadeInconsistentLayoutsAreRefused) {
  StripeLayout zero{4, 2, 1000, 0};
  EXPECT_EQ(zero.Locate(0, 10).status().code(), Code::kCorruption);
  StripeLayout small{4, 2, 100000, 64};
  EXPECT_EQ(small.Locate(90000, 10).status().code(), Code::kCorruption);
  StripeLayout bad_k{0, 2, 1000, 4096};
  EXPECT_EQ(bad_k.Validate().code(), Code::kCorruption);
  ASSERT_OK_AND_ASSIGN(StripeLayout good, StripeLayout::ForPack(1000, 4, 2));
  EXPECT_OK(good.Validate());
}

// RFC 3720 appendix B.4 and the usual check value.
TEST(Crc32cTest, KnownValues) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(Bytes(32, 0xff)), 0x62A8AB43u);
  Bytes ascending(32);
  for (size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(ByteSpan()), 0u);
}

TEST(Crc32cTest, ExtendEqualsTheWholeAtEverySplit) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + i % 26);
  const uint32_t whole = Crc32c(AsBytes(text));
  for (size_t split = 0; split <= text.size(); ++split) {
    const ByteSpan all = AsBytes(text);
    EXPECT_EQ(Crc32cExtend(Crc32c(all.first(split)), all.subspan(split)), whole) << split;
  }
  EXPECT_NE(Crc32c(AsBytes("a")), Crc32c(AsBytes("b")));
}

}  // namespace
}  // namespace shardfs::backend

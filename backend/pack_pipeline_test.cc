#include "backend/pack_pipeline.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

#include "backend/stripe_reader.h"
#include "crypto/merkle.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

// Shards in memory; some may be "lost" (reads fail) or "rotten" (reads return wrong bytes).
class MemoryShards : public ShardSource {
 public:
  explicit MemoryShards(const EncodedPack& p) : pack_(p) {}
  Status Read(int index, uint64_t offset, MutableByteSpan out) override {
    ++reads_;
    if (lost_.count(index)) return Status::Unavailable("shard lost");
    ByteSpan s = pack_.shard(index);
    if (offset > s.size() || out.size() > s.size() - offset) return Status::OutOfRange("past end");
    std::memcpy(out.data(), s.data() + offset, out.size());
    if (rotten_.count(index) && !out.empty()) out[0] ^= 0xff;
    return Status::Ok();
  }
  std::set<int> lost_, rotten_;
  int reads_ = 0;

 private:
  const EncodedPack& pack_;
};

Bytes MixedInput(size_t n) {
  Bytes data = test::PseudoRandomBytes(n, 31);
  // A compressible stretch and a repeated stretch (dedup-able content) in the middle.
  for (size_t i = n / 4; i < n / 2; ++i) data[i] = static_cast<uint8_t>("shardfs "[i % 8]);
  std::copy(data.begin(), data.begin() + n / 8, data.begin() + 5 * n / 8);
  return data;
}

WritePipelineOptions SmallOptions(int threads) {
  WritePipelineOptions o;
  o.chunker = {16 * 1024, 64 * 1024, 256 * 1024, 0};
  o.pack_target_size = 1 << 20;
  o.threads = threads;
  return o;
}

struct Collected {
  std::vector<EncodedPack> packs;
  std::vector<ChunkRef> chunks;
};

Collected RunPipeline(const crypto::DriveKeys& keys, const WritePipelineOptions& o,
                      ByteSpan input) {
  Collected c;
  auto p = WritePipeline::Create(keys, o, [&](EncodedPack& pack) {
    c.packs.push_back(pack);  // a copy: the pipeline recycles the original's buffers
    return Status::Ok();
  });
  EXPECT_OK(p);
  EXPECT_OK((*p)->Run(input, &c.chunks));
  return c;
}

class PipelineTest : public ::testing::Test {
 protected:
  crypto::DriveKeys keys_ = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
};

TEST_F(PipelineTest, EveryChunkReadsBackThroughShards) {
  Bytes input = MixedInput(6 << 20);
  for (int threads : {1, 3}) {
    Collected c = RunPipeline(keys_, SmallOptions(threads), input);
    ASSERT_GT(c.packs.size(), 3u);
    // Chunks tile the input in order.
    uint64_t pos = 0;
    for (const ChunkRef& r : c.chunks) {
      ASSERT_EQ(r.offset, pos);
      pos += r.size;
    }
    ASSERT_EQ(pos, input.size());
    // Every shard's id is its Merkle root, and each pack's index reads back.
    std::map<ChunkId, std::pair<const EncodedPack*, PackEntry>> where;
    for (const EncodedPack& p : c.packs) {
      ASSERT_EQ(p.shard_ids.size(), 6u);
      for (int i = 0; i < 6; ++i) ASSERT_EQ(crypto::MerkleRoot(p.shard(i)), p.shard_ids[i]);
      ASSERT_OK_AND_ASSIGN(
          PackIndex index,
          ReadPackIndex(ByteSpan(p.data).first(p.layout.pack_size), p.id, keys_.pack_index));
      EXPECT_EQ(index.entries, p.entries);
      for (const PackEntry& e : p.entries) where[e.id] = {&p, e};
    }
    ChunkSealer sealer(keys_.chunk_encryption, {});
    ErasureCoder coder = ErasureCoder::Create(4, 2).value();
    for (const ChunkRef& r : c.chunks) {
      auto it = where.find(r.id);
      ASSERT_NE(it, where.end());
      const auto& [pack, entry] = it->second;
      MemoryShards shards(*pack);
      Bytes sealed(entry.sealed_size);
      ASSERT_OK(ReadPackRange(pack->layout, coder, shards, entry.offset, sealed, nullptr));
      Bytes plain(entry.plain_size);
      ASSERT_OK(sealer.Open(crypto::Cipher::kAes256Gcm, r.id, entry.codec, sealed, plain));
      ASSERT_EQ(0, std::memcmp(plain.data(), input.data() + r.offset, r.size));
    }
  }
}

TEST_F(PipelineTest, CutsAndIdsDoNotDependOnThreads) {
  Bytes input = MixedInput(3 << 20);
  Collected one = RunPipeline(keys_, SmallOptions(1), input);
  Collected four = RunPipeline(keys_, SmallOptions(4), input);
  ASSERT_EQ(one.chunks.size(), four.chunks.size());
  for (size_t i = 0; i < one.chunks.size(); ++i) {
    EXPECT_EQ(one.chunks[i].id, four.chunks[i].id);
    EXPECT_EQ(one.chunks[i].size, four.chunks[i].size);
  }
}

// Two drives cut the same input differently: chunk lengths do not link drives.
TEST_F(PipelineTest, ChunkBoundariesFollowTheDriveSeed) {
  Bytes input = test::PseudoRandomBytes(3 << 20, 43);
  crypto::DriveKeys other = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
  Collected a = RunPipeline(keys_, SmallOptions(1), input);
  Collected b = RunPipeline(other, SmallOptions(1), input);
  std::vector<uint32_t> sa, sb;
  for (const auto& c : a.chunks) sa.push_back(c.size);
  for (const auto& c : b.chunks) sb.push_back(c.size);
  EXPECT_NE(sa, sb);
  // And they are the cuts of a chunker with the drive's seed.
  ChunkerParams p = SmallOptions(1).chunker;
  p.seed = keys_.ChunkerSeed();
  Chunker c = Chunker::Create(p).value();
  ASSERT_EQ(c.FindCut(input, true), a.chunks[0].size);
}

TEST_F(PipelineTest, AnyTwoLostShardsStillRead_ThreeDoNot) {
  Bytes input = test::PseudoRandomBytes(1500000, 40);
  WritePipelineOptions o = SmallOptions(1);
  o.pack_target_size = 4 << 20;
  Collected c = RunPipeline(keys_, o, input);
  ASSERT_EQ(c.packs.size(), 1u);
  const EncodedPack& pack = c.packs[0];
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  // The whole pack, read as one range, crosses all four data shards.
  Bytes want(pack.layout.pack_size);
  std::memcpy(want.data(), pack.data.data(), want.size());
  for (int a = 0; a < 6; ++a) {
    for (int b = a + 1; b < 6; ++b) {
      MemoryShards shards(pack);
      shards.lost_ = {a, b};
      Bytes got(want.size());
      ReadStats stats;
      ASSERT_OK(ReadPackRange(pack.layout, coder, shards, 0, got, &stats)) << a << "," << b;
      ASSERT_EQ(got, want) << a << "," << b;
      EXPECT_EQ(stats.pieces, 4);
      EXPECT_EQ(stats.degraded_pieces, (a < 4) + (b < 4));
    }
  }
  MemoryShards three(pack);
  three.lost_ = {0, 2, 5};
  Bytes got(want.size());
  Status s = ReadPackRange(pack.layout, coder, three, 0, got, nullptr);
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  EXPECT_EQ(ReadPackRange(pack.layout, coder, three, pack.layout.pack_size, got, nullptr).code(),
            Code::kOutOfRange);
}

// A shard that returns wrong bytes is caught when the chunk is opened: never wrong data.
TEST_F(PipelineTest, RottenShardIsCaughtByTheChunkSeal) {
  Bytes input = test::PseudoRandomBytes(500000, 41);
  Collected c = RunPipeline(keys_, SmallOptions(1), input);
  const EncodedPack& pack = c.packs[0];
  const PackEntry& e = pack.entries[0];
  MemoryShards shards(pack);
  shards.rotten_ = {0};
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  Bytes sealed(e.sealed_size), plain(e.plain_size);
  ASSERT_OK(ReadPackRange(pack.layout, coder, shards, e.offset, sealed, nullptr));
  ChunkSealer sealer(keys_.chunk_encryption, {});
  EXPECT_EQ(sealer.Open(crypto::Cipher::kAes256Gcm, e.id, e.codec, sealed, plain).code(),
            Code::kCorruption);
}

TEST_F(PipelineTest, SinkErrorStopsTheRun) {
  Bytes input = test::PseudoRandomBytes(4 << 20, 42);
  int calls = 0;
  auto p = WritePipeline::Create(keys_, SmallOptions(2), [&](EncodedPack&) {
    return ++calls == 2 ? Status::NoSpace("full") : Status::Ok();
  });
  ASSERT_OK(p);
  std::vector<ChunkRef> chunks;
  EXPECT_EQ((*p)->Run(input, &chunks).code(), Code::kNoSpace);
  EXPECT_TRUE(chunks.empty());
}

TEST_F(PipelineTest, RejectsBadOptions) {
  auto sink = [](EncodedPack&) { return Status::Ok(); };
  WritePipelineOptions o;
  o.threads = 0;
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  o = WritePipelineOptions();
  o.k = 0;
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  o = WritePipelineOptions();
  o.pack_target_size = 300u << 20;
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  o = WritePipelineOptions();
  o.chunker.avg_size = 3;
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
}

TEST(EncodePackTest, RejectsEmptyPack) {
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  EncodedPack out;
  EXPECT_EQ(EncodePack(coder, PackId(), Bytes{}, {}, &out).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs::backend

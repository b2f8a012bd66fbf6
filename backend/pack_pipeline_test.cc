#include "backend/pack_pipeline.h"

#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "backend/stripe_reader.h"
#include "crypto/merkle.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

// Fault injection over an in-memory pack: "lost" shards fail their reads, "rotten" ones
// return wrong bytes.
class MemoryShards : public ShardSource {
 public:
  explicit MemoryShards(const EncodedPack& p) : base_(p) {}
  Status Read(int index, uint64_t offset, MutableByteSpan out, const CancelToken* cancel) override {
    if (lost_.count(index)) return Status::Unavailable("shard lost");
    if (slow_.count(index)) {
      // Answers after 5 s, unless cancelled first.
      for (int i = 0; i < 5000 && !IsCancelled(cancel); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (IsCancelled(cancel)) {
        ++cancelled_;
        return Status::Cancelled("cancelled");
      }
    }
    SFS_RETURN_IF_ERROR(base_.Read(index, offset, out, cancel));
    if (rotten_.count(index) && !out.empty()) out[0] ^= 0xff;
    return Status::Ok();
  }
  std::set<int> lost_, rotten_, slow_;
  std::atomic<int> cancelled_{0};

 private:
  EncodedPackSource base_;
};

TEST(EncodedPackSourceTest, ServesShardsAndRefusesMissingOrOutOfRange) {
  crypto::DriveKeys keys = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
  ChunkSealer sealer(keys.chunk_encryption, {});
  PackWriter w(sealer, keys.pack_index, PackId());
  ASSERT_OK(w.Add(ChunkId(), AsBytes("hello")));
  ASSERT_OK_AND_ASSIGN(Bytes pack, w.Finish());
  EncodedPack encoded;
  ASSERT_OK(
      EncodePack(ErasureCoder::Create(4, 2).value(), PackId(), std::move(pack), {}, &encoded));
  const int missing[] = {1, 5};
  EncodedPackSource source(encoded, missing);
  Bytes out(16);
  ASSERT_OK(source.Read(4, 8, out, nullptr));
  EXPECT_EQ(0, std::memcmp(out.data(), encoded.shard(4).data() + 8, 16));
  EXPECT_EQ(source.Read(1, 0, out, nullptr).code(), Code::kUnavailable);
  EXPECT_EQ(source.Read(5, 0, out, nullptr).code(), Code::kUnavailable);
  EXPECT_EQ(source.Read(6, 0, out, nullptr).code(), Code::kUnavailable);
  EXPECT_EQ(source.Read(0, encoded.layout.shard_size - 8, out, nullptr).code(), Code::kOutOfRange);
}

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

// Runs the pipeline with a pack target above the input's size, so it makes one pack.
Collected OnePackRun(const crypto::DriveKeys& keys, ByteSpan input) {
  WritePipelineOptions o = SmallOptions(1);
  o.pack_target_size = 4 << 20;
  return RunPipeline(keys, o, input);
}

class PipelineTest : public ::testing::Test {
 protected:
  // Hedged reads on the fixture's pool, other shards asked in reverse index order.
  HedgeOptions Hedge(std::chrono::milliseconds delay) {
    HedgeOptions h;
    h.pool = &pool_;
    h.delay = delay;
    h.order = {5, 4, 3, 2, 1, 0};
    return h;
  }
  // The bytes of the one pack of run `c`.
  Bytes WholePack(const Collected& c) {
    EXPECT_EQ(c.packs.size(), 1u);
    const EncodedPack& pack = c.packs.at(0);
    return Bytes(pack.data.begin(),
                 pack.data.begin() + static_cast<ptrdiff_t>(pack.layout.pack_size));
  }

  crypto::DriveKeys keys_ = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
  ThreadPool pool_{4};
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

// Dedup: a chunk the drive stores is not packed again, nor a chunk twice in one run.
TEST_F(PipelineTest, KnownAndRepeatedChunksAreNotPackedAgain) {
  Bytes input = MixedInput(6 << 20);
  Collected first = RunPipeline(keys_, SmallOptions(2), input);
  std::set<ChunkId> ids, packed_ids;
  size_t packed = 0;
  for (const ChunkRef& r : first.chunks) {
    ids.insert(r.id);
    if (r.packed) {
      ++packed;
      EXPECT_TRUE(packed_ids.insert(r.id).second) << "chunk packed twice in one run";
    }
  }
  EXPECT_EQ(packed_ids, ids);              // every distinct chunk packed once
  EXPECT_LT(packed, first.chunks.size());  // MixedInput repeats a stretch
  size_t entries = 0;
  for (const EncodedPack& p : first.packs) entries += p.entries.size();
  EXPECT_EQ(entries, packed);

  // Everything known: no pack at all, the same cuts and ids.
  WritePipelineOptions o = SmallOptions(3);
  o.known = [&](const ChunkId& id) { return ids.count(id) > 0; };
  Collected again = RunPipeline(keys_, o, input);
  EXPECT_TRUE(again.packs.empty());
  ASSERT_EQ(again.chunks.size(), first.chunks.size());
  for (size_t i = 0; i < again.chunks.size(); ++i) {
    EXPECT_EQ(again.chunks[i].id, first.chunks[i].id);
    EXPECT_FALSE(again.chunks[i].packed);
  }

  // One byte changed in the middle: only the chunks around it are new.
  Bytes changed = input;
  changed[changed.size() / 2 + 12345] ^= 1;
  Collected edit = RunPipeline(keys_, o, changed);
  size_t fresh = 0;
  for (const ChunkRef& r : edit.chunks) fresh += r.packed ? 1 : 0;
  EXPECT_GE(fresh, 1u);
  EXPECT_LE(fresh, 2u);
  ASSERT_EQ(edit.packs.size(), 1u);
  EXPECT_EQ(edit.packs[0].entries.size(), fresh);
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
  Collected c = OnePackRun(keys_, test::PseudoRandomBytes(1500000, 40));
  // The whole pack, read as one range, crosses all four data shards.
  const Bytes want = WholePack(c);
  const EncodedPack& pack = c.packs.at(0);
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  // One after another, and hedged on a pool.
  const HedgeOptions hedge = Hedge(std::chrono::milliseconds(50));
  for (bool hedged : {false, true}) {
    for (int a = 0; a < 6; ++a) {
      for (int b = a + 1; b < 6; ++b) {
        auto shards = std::make_shared<MemoryShards>(pack);
        shards->lost_ = {a, b};
        Bytes got(want.size());
        ReadStats stats;
        ASSERT_OK(hedged
                      ? ReadPackRangeHedged(pack.layout, coder, shards, 0, got, &stats, {}, hedge)
                      : ReadPackRange(pack.layout, coder, *shards, 0, got, &stats))
            << a << "," << b;
        ASSERT_EQ(got, want) << a << "," << b;
        EXPECT_EQ(stats.pieces, 4);
        EXPECT_EQ(stats.degraded_pieces, (a < 4) + (b < 4));
      }
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

// A slow data shard is raced by a rebuild after the hedge delay, and then cancelled.
TEST_F(PipelineTest, ASlowShardIsHedgedAndCancelled) {
  Collected c = OnePackRun(keys_, test::PseudoRandomBytes(1500000, 43));
  const Bytes want = WholePack(c);
  const EncodedPack& pack = c.packs.at(0);
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  HedgeOptions hedge = Hedge(std::chrono::milliseconds(20));
  auto shards = std::make_shared<MemoryShards>(pack);
  shards->slow_ = {1};
  shards->lost_ = {3};
  Bytes got(want.size());
  ReadStats stats;
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK(ReadPackRangeHedged(pack.layout, coder, shards, 0, got, &stats, {}, hedge));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(got, want);
  EXPECT_EQ(stats.hedged_pieces, 1);
  EXPECT_EQ(stats.degraded_pieces, 2);
  EXPECT_EQ(stats.failed_shards, std::vector<int>{3});
  for (int i = 0; i < 2000 && shards->cancelled_ == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Shard 1 was asked for its own piece and for the rebuild of shard 3's piece: both cancelled.
  EXPECT_GE(shards->cancelled_, 1);
  // Avoided shards are asked only when nothing else is left.
  shards = std::make_shared<MemoryShards>(pack);
  hedge.avoid = {0};
  ASSERT_OK(ReadPackRangeHedged(pack.layout, coder, shards, 0, got, &stats, {}, hedge));
  EXPECT_EQ(got, want);
  shards->lost_ = {1, 2};
  ASSERT_OK(ReadPackRangeHedged(pack.layout, coder, shards, 0, got, &stats, {}, hedge));
  EXPECT_EQ(got, want);
}

// A shard that returns wrong bytes is caught when the chunk is opened (never wrong data),
// and a verified read finds which shard it was and reads around it.
TEST_F(PipelineTest, RottenShardsAreFoundAndReadAround) {
  Bytes input = test::PseudoRandomBytes(1500000, 41);
  Collected c = OnePackRun(keys_, input);
  ASSERT_EQ(c.packs.size(), 1u);
  const EncodedPack& pack = c.packs[0];
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  ChunkSealer sealer(keys_.chunk_encryption, {});
  const crypto::Cipher cipher = sealer.options().cipher;
  // The chunk that spans data shards 0 and 1.
  const uint64_t boundary = pack.layout.shard_size;
  const PackEntry* e = nullptr;
  for (const PackEntry& x : pack.entries)
    if (x.offset < boundary && x.offset + x.sealed_size > boundary) e = &x;
  ASSERT_NE(e, nullptr);
  Bytes sealed(e->sealed_size), plain(e->plain_size);
  auto opens = [&](ByteSpan b) { return sealer.Open(cipher, e->id, e->codec, b, plain).ok(); };
  {
    MemoryShards shards(pack);
    shards.rotten_ = {0};
    ASSERT_OK(ReadPackRange(pack.layout, coder, shards, e->offset, sealed, nullptr));
    EXPECT_FALSE(opens(sealed));  // caught: wrong bytes never pass as data
  }
  struct Case {
    std::set<int> rotten, lost;
    std::vector<int> want_bad;
  };
  for (const Case& k : {Case{{0}, {}, {0}}, Case{{1}, {}, {1}}, Case{{4}, {0}, {4}},
                        Case{{0, 1}, {}, {0, 1}}, Case{{5}, {1, 0}, {}}}) {
    MemoryShards shards(pack);
    shards.rotten_ = k.rotten;
    shards.lost_ = k.lost;
    ReadStats stats;
    Status s = ReadPackRangeVerified(pack.layout, coder, shards, e->offset, sealed, opens, &stats);
    if (k.want_bad.empty()) {
      // Two lost and one rotten: three of six unusable, beyond what 4+2 survives.
      EXPECT_FALSE(s.ok());
      EXPECT_EQ(sealed, Bytes(sealed.size(), 0));
      continue;
    }
    ASSERT_OK(s);
    EXPECT_EQ(stats.bad_shards, k.want_bad);
    EXPECT_TRUE(opens(sealed));
    const ChunkRef* ref = nullptr;
    for (const ChunkRef& r : c.chunks)
      if (r.id == e->id) ref = &r;
    ASSERT_NE(ref, nullptr);
    EXPECT_EQ(0, std::memcmp(plain.data(), input.data() + ref->offset, ref->size));
    EXPECT_GT(stats.attempts, 1);
  }
}

TEST_F(PipelineTest, SinkErrorStopsTheRun) {
  Bytes input = test::PseudoRandomBytes(8 << 20, 42);
  for (int threads : {1, 2}) {
    int calls = 0;
    auto p = WritePipeline::Create(keys_, SmallOptions(threads), [&](EncodedPack&) {
      return ++calls == 2 ? Status::NoSpace("full") : Status::Ok();
    });
    ASSERT_OK(p);
    std::vector<ChunkRef> chunks;
    EXPECT_EQ((*p)->Run(input, &chunks).code(), Code::kNoSpace);
    EXPECT_TRUE(chunks.empty());
    // On one thread nothing runs after the failure; on more, only batches already started.
    if (threads == 1) {
      EXPECT_EQ(calls, 2);
    }
    EXPECT_LT(calls, 8);
  }
}

// A sink that moves the buffers out and gives them back later: later packs reuse them, the
// packs are as without recycling, and DropSpares lets them go.
TEST_F(PipelineTest, RecycledBuffersAreReusedAndChangeNothing) {
  Bytes input = test::PseudoRandomBytes(6 << 20, 43);
  Collected plain = RunPipeline(keys_, SmallOptions(1), input);
  std::vector<EncodedPack> taken;
  std::vector<const uint8_t*> buffers;
  std::vector<Bytes> shards0;
  std::unique_ptr<WritePipeline> pipeline;
  auto p = WritePipeline::Create(keys_, SmallOptions(1), [&](EncodedPack& pack) {
    buffers.push_back(pack.data.data());
    shards0.emplace_back(pack.shard(0).begin(), pack.shard(0).end());
    taken.push_back(std::move(pack));
    // Two packs away at once, as uploads would be; the older one comes back.
    if (taken.size() == 2) {
      pipeline->Recycle(std::move(taken.front()));
      taken.erase(taken.begin());
    }
    return Status::Ok();
  });
  ASSERT_OK(p);
  pipeline = std::move(*p);
  std::vector<ChunkRef> chunks;
  ASSERT_OK(pipeline->Run(input, &chunks));
  ASSERT_EQ(buffers.size(), plain.packs.size());
  ASSERT_GE(buffers.size(), 4u);
  // From the third pack on, a buffer given back is used again.
  EXPECT_EQ(buffers[2], buffers[0]);
  EXPECT_EQ(buffers[3], buffers[1]);
  ASSERT_EQ(chunks.size(), plain.chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) EXPECT_EQ(chunks[i].id, plain.chunks[i].id);
  for (size_t i = 0; i < buffers.size(); ++i) {
    EXPECT_EQ(shards0[i].size(), plain.packs[i].shard(0).size());
  }
  // Without spares the pipeline allocates again, and runs as before.
  pipeline->DropSpares();
  taken.clear();
  std::vector<ChunkRef> again;
  ASSERT_OK(pipeline->Run(input, &again));
  EXPECT_EQ(again.size(), chunks.size());
}

// Shard padding is random: a node cannot see where a pack ends, and small packs look alike.
TEST_F(PipelineTest, PaddingIsRandomAndSmallPacksLookAlike) {
  Bytes tiny = test::PseudoRandomBytes(300, 44);
  Collected c = RunPipeline(keys_, SmallOptions(1), tiny);
  ASSERT_EQ(c.packs.size(), 1u);
  const EncodedPack& p = c.packs[0];
  EXPECT_EQ(p.layout.shard_size, kMinShardSize);
  ByteSpan tail = ByteSpan(p.data).subspan(p.layout.pack_size);
  ASSERT_GT(tail.size(), 3 * kMinShardSize);
  size_t zeros = std::count(tail.begin(), tail.end(), 0);
  EXPECT_LT(zeros, tail.size() / 64);  // random bytes: about 1 in 256 is zero
  // The padding is part of the shards' ids and parity: reads still work.
  MemoryShards shards(p);
  shards.lost_ = {0, 1};
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  Bytes got(p.layout.pack_size);
  ASSERT_OK(ReadPackRange(p.layout, coder, shards, 0, got, nullptr));
  EXPECT_EQ(0, std::memcmp(got.data(), p.data.data(), got.size()));
}

TEST_F(PipelineTest, DefaultsUseThePreferredCipher) {
  EXPECT_EQ(WritePipelineOptions().seal.cipher, crypto::PreferredCipher());
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
  o = WritePipelineOptions();
  o.threads = kMaxPipelineThreads + 1;
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  o = WritePipelineOptions();
  o.pack_target_size = SIZE_MAX;  // must not wrap around into "small"
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  // Tiny chunks: the per-chunk overhead would push a 255 MiB batch past the pack limit.
  o = WritePipelineOptions();
  o.chunker = {64, 128, 256, 0};
  o.pack_target_size = 255u << 20;
  EXPECT_GT(WorstCasePackSize(o), kMaxPackSize);
  EXPECT_EQ(WritePipeline::Create(keys_, o, sink).status().code(), Code::kInvalidArgument);
  // The default is well inside.
  EXPECT_LT(WorstCasePackSize(WritePipelineOptions()), 32u << 20);
}

// Whatever the chunk sizes, an accepted configuration never makes a pack it cannot encode.
TEST_F(PipelineTest, WorstCaseBoundHoldsForTinyChunks) {
  WritePipelineOptions o;
  o.chunker = {64, 128, 256, 0};
  o.seal.compression = Compression::kOff;
  o.pack_target_size = 1 << 20;
  ASSERT_LE(WorstCasePackSize(o), kMaxPackSize);
  Bytes input = test::PseudoRandomBytes(3 << 20, 45);
  Collected c = RunPipeline(keys_, o, input);
  for (const EncodedPack& p : c.packs) EXPECT_LE(p.layout.pack_size, WorstCasePackSize(o));
}

TEST(EncodePackTest, RejectsEmptyPack) {
  ErasureCoder coder = ErasureCoder::Create(4, 2).value();
  EncodedPack out;
  EXPECT_EQ(EncodePack(coder, PackId(), Bytes{}, {}, &out).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs::backend

#include "backend/chunker.h"

#include <set>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "crypto/hash.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

ChunkerParams SmallParams(uint64_t seed = 0) { return {16 * 1024, 64 * 1024, 256 * 1024, seed}; }

std::vector<size_t> CutAll(const Chunker& c, ByteSpan data) {
  std::vector<size_t> out;
  while (!data.empty()) {
    size_t n = c.FindCut(data, /*at_end=*/true);
    out.push_back(n);
    data = data.subspan(n);
  }
  return out;
}

// The cut rule of chunker.h written the plain way, one byte per step, to check the optimized
// loop against.
std::vector<size_t> ReferenceCuts(const ChunkerParams& p, ByteSpan data) {
  uint64_t state = p.seed;
  uint64_t gear[256];
  for (auto& g : gear) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    g = z ^ (z >> 31);
  }
  auto spread = [](int bits) {
    uint64_t m = 0;
    for (int j = 0; j < bits; ++j) m |= uint64_t{1} << (62 - (j * 48) / bits);
    return m;
  };
  int b = std::countr_zero(p.avg_size);
  uint64_t ms = spread(b + 2), ml = spread(b - 2);
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t n = data.size() - pos, cut = 0;
    if (n <= p.min_size) {
      out.push_back(n);
      break;
    }
    uint64_t h = 0;
    for (size_t i = p.min_size; i < std::min<size_t>(n, p.max_size); ++i) {
      h = (h << 1) + gear[data[pos + i]];
      if ((h & (i < p.avg_size ? ms : ml)) == 0) {
        cut = i + 1;
        break;
      }
    }
    if (cut == 0) cut = std::min<size_t>(n, p.max_size);
    out.push_back(cut);
    pos += cut;
  }
  return out;
}

TEST(ChunkerTest, ValidatesParams) {
  EXPECT_OK(ChunkerParams{}.Validate());
  EXPECT_FALSE(Chunker::Create({32, 64 * 1024, 256 * 1024, 0}).ok());  // min too small
  EXPECT_FALSE(Chunker::Create({64 * 1024, 64 * 1024, 256 * 1024, 0}).ok());
  EXPECT_FALSE(Chunker::Create({16 * 1024, 100 * 1000, 256 * 1024, 0}).ok());  // not 2^n
  EXPECT_FALSE(Chunker::Create({16 * 1024, 64 * 1024, 64 * 1024, 0}).ok());
  EXPECT_FALSE(Chunker::Create({1 << 20, 1 << 22, 128u << 20, 0}).ok());  // max too large
}

TEST(ChunkerTest, OptimizedLoopMatchesReference) {
  for (uint64_t seed : {0ull, 1ull, 99ull}) {
    for (auto params : {SmallParams(seed), ChunkerParams{64, 256, 1024, seed},
                        ChunkerParams{4096, 8192, 65536, seed}}) {
      Chunker c = Chunker::Create(params).value();
      Bytes data = test::PseudoRandomBytes(3 << 20, seed + 5);
      EXPECT_EQ(CutAll(c, data), ReferenceCuts(params, data)) << "seed " << seed;
    }
  }
}

// Cut points computed by an independent implementation (Python, byte at a time) of the rule
// in chunker.h, over test::PseudoRandomBytes(n, 42): the same on every platform, forever.
TEST(ChunkerTest, GoldenCutPoints) {
  Bytes data = test::PseudoRandomBytes(8 << 20, 42);
  std::vector<size_t> cuts = CutAll(Chunker::Create(SmallParams(0)).value(), data);
  ASSERT_EQ(cuts.size(), 111u);
  std::vector<size_t> first(cuts.begin(), cuts.begin() + 10);
  EXPECT_EQ(first, (std::vector<size_t>{28750, 71557, 124316, 73516, 66562, 83612, 87646, 67497,
                                        73476, 67422}));
  std::vector<size_t> seeded = CutAll(Chunker::Create(SmallParams(7)).value(), data);
  std::vector<size_t> first_seeded(seeded.begin(), seeded.begin() + 5);
  EXPECT_EQ(first_seeded, (std::vector<size_t>{68423, 67986, 92098, 29680, 93899}));
  // Default parameters (256 KiB / 1 MiB / 4 MiB, seed 0) over 24 MiB.
  Bytes big = test::PseudoRandomBytes(24 << 20, 42);
  EXPECT_EQ(CutAll(Chunker::Create(ChunkerParams{}).value(), big),
            (std::vector<size_t>{1385222, 845393, 962032, 1509465, 2014755, 1751504, 1067349,
                                 1554286, 1221630, 1779617, 1108918, 1625927, 1577671, 1108018,
                                 1077742, 1367721, 966222, 1590752, 651600}));
}

TEST(ChunkerTest, SizesStayWithinBoundsAndAverageNearTarget) {
  ChunkerParams p;
  Chunker c = Chunker::Create(p).value();
  Bytes data = test::PseudoRandomBytes(64 << 20, 11);
  std::vector<size_t> cuts = CutAll(c, data);
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    ASSERT_GE(cuts[i], p.min_size);
    ASSERT_LE(cuts[i], p.max_size);
  }
  double avg = static_cast<double>(data.size()) / cuts.size();
  EXPECT_GT(avg, 0.7 * p.avg_size);
  EXPECT_LT(avg, 1.5 * p.avg_size);
}

TEST(ChunkerTest, ShortAndEmptyInputs) {
  Chunker c = Chunker::Create(ChunkerParams{}).value();
  Bytes small(1000, 7);
  EXPECT_EQ(c.FindCut(small, true), 1000u);
  EXPECT_EQ(c.FindCut(small, false), 0u);  // might grow: ask for more
  EXPECT_EQ(c.FindCut({}, true), 0u);
  // A run of identical bytes has no content to cut on: cut at max_size.
  Bytes zeros(10 << 20, 0);
  std::vector<size_t> cuts = CutAll(c, zeros);
  EXPECT_EQ(cuts.front(), c.params().max_size);
}

// Inserting one byte near the start of a 64 MiB file changes at most 2 chunks: the one that
// takes the byte, and perhaps its neighbour if a cut point moved.
TEST(ChunkerTest, OneByteInsertChangesAtMostTwoChunks) {
  Chunker c = Chunker::Create(ChunkerParams{}).value();
  Bytes original = test::PseudoRandomBytes(64 << 20, 12);
  Bytes edited = original;
  edited.insert(edited.begin() + 1000, 0x5a);
  auto chunk_set = [&](const Bytes& data) {
    std::set<std::string> set;
    size_t pos = 0;
    for (size_t n : CutAll(c, data)) {
      set.insert(HexEncode(crypto::Sha256(ByteSpan(data).subspan(pos, n))));
      pos += n;
    }
    return set;
  };
  std::set<std::string> before = chunk_set(original), after = chunk_set(edited);
  size_t changed = 0;
  for (const auto& h : after) changed += before.count(h) == 0;
  EXPECT_LE(changed, 2u);
  EXPECT_GE(changed, 1u);
  EXPECT_GT(after.size(), 40u);
}

// A source that returns short reads of varying sizes, as pipes and sockets do.
class ChoppySource : public ByteSource {
 public:
  explicit ChoppySource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(MutableByteSpan out) override {
    size_t n = std::min({out.size(), data_.size() - pos_, 1 + (calls_++ * 7919) % 300000});
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  ByteSpan data_;
  size_t pos_ = 0;
  size_t calls_ = 0;
};

TEST(ChunkStreamTest, SameCutsAsWholeBuffer) {
  Chunker c = Chunker::Create(SmallParams()).value();
  Bytes data = test::PseudoRandomBytes(5 << 20, 13);
  ChoppySource src(data);
  ChunkStream stream(c, &src);
  std::vector<size_t> streamed;
  size_t pos = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(std::optional<ByteSpan> chunk, stream.Next());
    if (!chunk) break;
    ASSERT_EQ(0, std::memcmp(chunk->data(), data.data() + pos, chunk->size()));
    pos += chunk->size();
    streamed.push_back(chunk->size());
  }
  EXPECT_EQ(pos, data.size());
  EXPECT_EQ(stream.offset(), data.size());
  EXPECT_EQ(streamed, CutAll(c, data));
}

TEST(ChunkStreamTest, SourceErrorIsReportedAndSticky) {
  class Failing : public ByteSource {
   public:
    Result<size_t> Read(MutableByteSpan) override { return Status::IOError("disk gone"); }
  } src;
  Chunker c = Chunker::Create(SmallParams()).value();
  ChunkStream stream(c, &src);
  EXPECT_EQ(stream.Next().status().code(), Code::kIOError);
  EXPECT_EQ(stream.Next().status().code(), Code::kIOError);
}

// Generates `size` pseudo-random bytes without holding them.
class GeneratedSource : public ByteSource {
 public:
  explicit GeneratedSource(uint64_t size) : left_(size) {}
  Result<size_t> Read(MutableByteSpan out) override {
    size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), left_));
    test::FillPseudoRandom(out.first(n), seed_++);
    left_ -= n;
    return n;
  }

 private:
  uint64_t left_;
  uint64_t seed_ = 1;
};

long MaxRssKiB() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// 10 GiB through the stream with a fixed buffer and no growth in memory. Under the
// sanitizers (10x slower) 1 GiB shows the same.
TEST(ChunkStreamTest, BoundedMemoryOnTenGiB) {
#if defined(SHARDFS_SANITIZED)
  const uint64_t kSize = uint64_t{1} << 30;
#else
  const uint64_t kSize = uint64_t{10} << 30;
#endif
  Chunker c = Chunker::Create(ChunkerParams{}).value();
  GeneratedSource src(kSize);
  ChunkStream stream(c, &src);
  const size_t capacity = stream.buffer_capacity();
  EXPECT_EQ(capacity, 16u << 20);
  long rss_before = MaxRssKiB();
  uint64_t chunks = 0, total = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(std::optional<ByteSpan> chunk, stream.Next());
    if (!chunk) break;
    ++chunks;
    total += chunk->size();
  }
  EXPECT_EQ(total, kSize);
  EXPECT_EQ(stream.buffer_capacity(), capacity);
  EXPECT_GT(chunks, kSize / (4 << 20));
  // The buffer was allocated before rss_before; nothing else may grow with the input.
  EXPECT_LT(MaxRssKiB() - rss_before, 32 * 1024) << "RSS grew while streaming";
}

}  // namespace
}  // namespace shardfs::backend

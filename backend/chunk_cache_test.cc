#include "backend/chunk_cache.h"

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/file.h"
#include "crypto/keys.h"
#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

class ChunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  // Opens the cache again over the same folder (nothing in memory).
  void Reopen(uint64_t disk_bytes = uint64_t{1} << 30, uint64_t memory_bytes = 0) {
    cache_.reset();
    ChunkCacheOptions o;
    o.dir = dir_.path() + "/cache/chunks";
    o.disk_bytes = disk_bytes;
    o.memory_bytes = memory_bytes;
    ASSERT_OK_AND_ASSIGN(cache_, ChunkCache::Open(o, keys_.chunk_id));
  }
  // A chunk of `size` pseudo-random bytes and its id.
  std::pair<ChunkId, Bytes> Chunk(size_t size, uint64_t seed) {
    Bytes plain = test::PseudoRandomBytes(size, seed);
    return {crypto::ChunkIdHasher(keys_.chunk_id).Compute(plain), plain};
  }
  // The chunk's bytes (empty if not cached: *s says why).
  Bytes Get(const ChunkId& id, size_t size, Status* s) {
    auto got = cache_->Get(id, size);
    *s = got.status();
    return got.ok() ? **got : Bytes();
  }
  // Puts a copy of `plain`.
  Status Put(const ChunkId& id, const Bytes& plain) {
    return cache_->Put(id, std::make_shared<const Bytes>(plain));
  }
  bool Hit(const ChunkId& id, const Bytes& want) {
    Status s;
    Bytes got = Get(id, want.size(), &s);
    return s.ok() && got == want;
  }

  test::TempDir dir_;
  crypto::DriveKeys keys_ = crypto::DriveKeys::Derive(crypto::MasterKey::Generate());
  std::unique_ptr<ChunkCache> cache_;
};

TEST_F(ChunkCacheTest, ChunksComeBackAfterReopenFromPrivateFiles) {
  auto [a, pa] = Chunk(100000, 1);
  auto [b, pb] = Chunk(1, 2);
  Status s;
  Get(a, pa.size(), &s);
  EXPECT_EQ(s.code(), Code::kNotFound);
  ASSERT_OK(Put(a, pa));
  ASSERT_OK(Put(b, pb));
  EXPECT_TRUE(Hit(a, pa));
  Reopen();
  EXPECT_TRUE(cache_->Contains(a));
  EXPECT_TRUE(Hit(a, pa));
  EXPECT_TRUE(Hit(b, pb));
  EXPECT_EQ(cache_->stats().files, 2u);
  EXPECT_EQ(cache_->stats().hits, 2u);
  struct stat st;
  ASSERT_EQ(::stat(cache_->PathOf(a).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 16 + 100000);
  ASSERT_EQ(::stat((dir_.path() + "/cache/chunks").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(ChunkCacheTest, TheLeastRecentlyUsedGoFirstWithinTheBudget) {
  Reopen(3 * (16 + 10000));  // room for three chunks
  std::vector<std::pair<ChunkId, Bytes>> c;
  for (int i = 0; i < 4; ++i) c.push_back(Chunk(10000, 10 + i));
  for (int i = 0; i < 3; ++i) ASSERT_OK(Put(c[i].first, c[i].second));
  EXPECT_TRUE(Hit(c[0].first, c[0].second));  // 0 is now used more recently than 1
  ASSERT_OK(Put(c[3].first, c[3].second));
  EXPECT_FALSE(cache_->Contains(c[1].first));
  EXPECT_FALSE(std::filesystem::exists(cache_->PathOf(c[1].first)));
  for (int i : {0, 2, 3}) EXPECT_TRUE(Hit(c[i].first, c[i].second)) << i;
  ChunkCacheStats st = cache_->stats();
  EXPECT_EQ(st.files, 3u);
  EXPECT_EQ(st.evictions, 1u);
  EXPECT_LE(st.disk_bytes, 3u * (16 + 10000));
  // A smaller budget after a restart evicts by last use, kept in the files' times.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(Hit(c[2].first, c[2].second));
  Reopen(16 + 10000);
  EXPECT_TRUE(cache_->Contains(c[2].first));
  EXPECT_EQ(cache_->stats().files, 1u);
  // A chunk larger than the whole budget is not kept.
  auto big = Chunk(20000, 20);
  ASSERT_OK(Put(big.first, big.second));
  EXPECT_FALSE(cache_->Contains(big.first));
}

TEST_F(ChunkCacheTest, DamagedFilesAreDroppedNeverServed) {
  // Plain names, not structured bindings: lambdas capture them.
  const auto chunk_a = Chunk(70000, 3);
  const ChunkId& a = chunk_a.first;
  const Bytes& pa = chunk_a.second;
  const Bytes pb = Chunk(70000, 4).second;
  auto damage = [&](const std::function<void(Bytes&)>& how) {
    ASSERT_OK(Put(a, pa));
    const std::string path = cache_->PathOf(a);
    Bytes file = shardfs::ReadFile(path, 1 << 20).value();
    how(file);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(file.data()),
               static_cast<std::streamsize>(file.size()));
    Status s;
    Bytes got = Get(a, pa.size(), &s);
    EXPECT_EQ(s.code(), Code::kNotFound);
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(cache_->Contains(a));
  };
  damage([](Bytes& f) { f[f.size() / 2] ^= 1; });                              // a flipped bit
  damage([](Bytes& f) { f.resize(f.size() - 100); });                          // torn
  damage([](Bytes& f) { f[0] = 'X'; });                                        // not a cache file
  damage([&](Bytes& f) { std::copy(pb.begin(), pb.end(), f.begin() + 16); });  // another chunk
  EXPECT_EQ(cache_->stats().damaged, 4u);
  // Put again, it is served again.
  ASSERT_OK(Put(a, pa));
  EXPECT_TRUE(Hit(a, pa));
}

TEST_F(ChunkCacheTest, TemporaryFilesOfACrashAreRemoved) {
  auto [a, pa] = Chunk(1000, 5);
  ASSERT_OK(Put(a, pa));
  const std::string tmp = cache_->PathOf(a) + ".tmp.123.0";
  std::ofstream(tmp) << "partial";
  Reopen();
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_EQ(cache_->stats().files, 1u);
  EXPECT_TRUE(Hit(a, pa));
}

TEST_F(ChunkCacheTest, MemoryTierAnswersWithoutTheDisk) {
  Reopen(uint64_t{1} << 30, 100000);
  auto [a, pa] = Chunk(60000, 6);
  auto [b, pb] = Chunk(60000, 7);
  ASSERT_OK(Put(a, pa));
  ASSERT_TRUE(std::filesystem::remove(cache_->PathOf(a)));
  EXPECT_TRUE(Hit(a, pa));  // from memory
  EXPECT_EQ(cache_->stats().memory_hits, 1u);
  ASSERT_OK(Put(b, pb));  // pushes a out of memory (100000 bytes)
  Status s;
  Get(a, pa.size(), &s);
  EXPECT_EQ(s.code(), Code::kNotFound);  // and its file is gone
  EXPECT_TRUE(Hit(b, pb));
}

// The memory tier hands out the very buffer it was given, not a copy; a read of another size
// is not served from it.
TEST_F(ChunkCacheTest, MemoryTierSharesItsBuffers) {
  Reopen(uint64_t{1} << 30, 100000);
  auto [a, pa] = Chunk(60000, 8);
  auto mine = std::make_shared<const Bytes>(pa);
  ASSERT_OK(cache_->Put(a, mine));
  ASSERT_OK_AND_ASSIGN(auto got, cache_->Get(a, pa.size()));
  EXPECT_EQ(got.get(), mine.get());
  EXPECT_EQ(cache_->stats().memory_hits, 1u);
  EXPECT_EQ(cache_->Get(a, pa.size() + 1).status().code(), Code::kNotFound);
}

TEST_F(ChunkCacheTest, ManyThreadsPutAndGetAtOnce) {
  Reopen(8 * (16 + 5000), 3 * 5000);
  std::vector<std::pair<ChunkId, Bytes>> c;
  for (int i = 0; i < 16; ++i) c.push_back(Chunk(5000, 100 + i));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 200; ++round) {
        const auto& [id, plain] = c[static_cast<size_t>((round * 7 + t) % 16)];
        auto got = cache_->Get(id, plain.size());
        Status s = got.status();
        if (s.ok() && **got != plain) ++wrong;
        if (!s.ok() && s.code() != Code::kNotFound) ++wrong;
        if (!s.ok()) {
          EXPECT_OK(Put(id, plain));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(cache_->stats().damaged, 0u);
  EXPECT_LE(cache_->stats().disk_bytes, 8u * (16 + 5000));
}

}  // namespace
}  // namespace shardfs::backend

#include "backend/scrubber.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ShardStoreOptions o;
    o.dir = dir_.path() + "/node";
    o.capacity = uint64_t{256} << 20;
    o.reserve = 0;
    o.sync = false;
    ASSERT_OK_AND_ASSIGN(store_, ShardStore::Open(o));
  }

  ShardId Put(const Bytes& data, const OwnerKey& owner) {
    ShardId id = crypto::MerkleRoot(data);
    auto w = store_->BeginPut(owner, id, data.size());
    EXPECT_OK(w);
    if (!w.ok()) return id;
    EXPECT_OK((*w)->Append(data));
    EXPECT_OK((*w)->Commit());
    return id;
  }
  std::string ShardFile(const ShardId& id) {
    std::string hex = id.ToHex();
    return dir_.path() + "/node/shards/" + hex.substr(0, 2) + "/" + hex;
  }
  void FlipByte(const ShardId& id, uint64_t pos) {
    std::fstream f(ShardFile(id), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(pos));
    char c = static_cast<char>(f.get());
    f.seekp(static_cast<std::streamoff>(pos));
    f.put(static_cast<char>(c ^ 0x10));
  }
  // Waits (at most 20 s) until the scrubber has finished `passes` passes.
  static bool WaitForPasses(const Scrubber& s, uint64_t passes) {
    auto deadline = Clock::now() + 20s;
    while (s.Stats().passes_completed < passes) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
  static ScrubberOptions Fast() {
    ScrubberOptions o;
    o.rate = uint64_t{4} << 30;
    o.page_size = 2;  // several pages even for a small store
    return o;
  }

  test::TempDir dir_;
  std::unique_ptr<ShardStore> store_;
  OwnerKey alice_ = crypto::SigningKey::Generate().public_key();
  OwnerKey bob_ = crypto::SigningKey::Generate().public_key();
};

TEST_F(ScrubberTest, PassOverAHealthyStoreFindsNothing) {
  uint64_t bytes = 0;
  for (int i = 0; i < 5; ++i) {
    Bytes d = test::PseudoRandomBytes(70000 * (i + 1), i);
    Put(d, i % 2 ? alice_ : bob_);
    bytes += d.size();
  }
  Scrubber s(store_.get(), Fast());
  s.Start();
  ASSERT_TRUE(WaitForPasses(s, 1));
  s.Stop();
  ScrubStats st = s.Stats();
  EXPECT_EQ(st.rate, uint64_t{4} << 30);
  EXPECT_EQ(st.passes_completed, 1u);  // the next waits for min_pass_interval
  EXPECT_EQ(st.shards_checked, 5u);
  EXPECT_EQ(st.bytes_checked, bytes);
  EXPECT_EQ(st.damaged_found, 0u);
  ASSERT_TRUE(st.last_pass_seconds.has_value());
  EXPECT_GE(*st.last_pass_seconds, 0.0);
  EXPECT_EQ(store_->Stats().shards, 5u);
}

TEST_F(ScrubberTest, DamageInDataAndInLeafHashesIsFoundAndDropped) {
  Bytes good = test::PseudoRandomBytes(300000, 1);
  Bytes bad_data = test::PseudoRandomBytes(1500000, 2);
  Bytes bad_hash = test::PseudoRandomBytes(200000, 3);
  ShardId good_id = Put(good, alice_);
  ShardId data_id = Put(bad_data, alice_);
  Put(bad_data, bob_);
  ShardId hash_id = Put(bad_hash, bob_);
  FlipByte(data_id, 1234567);
  FlipByte(hash_id, bad_hash.size() + 40);  // leaf 1's hash
  ShardStoreStats before = store_->Stats();

  ScrubberOptions o = Fast();
  o.min_pass_interval = 0ms;  // passes back to back
  Scrubber s(store_.get(), o);
  s.Start();
  ASSERT_TRUE(WaitForPasses(s, 2));
  s.Stop();
  ScrubStats st = s.Stats();
  EXPECT_EQ(st.damaged_found, 2u);
  EXPECT_GE(st.shards_checked, 3u + 1u);  // the second pass sees the good shard only
  EXPECT_EQ(store_->OpenShard(alice_, data_id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->OpenShard(bob_, data_id).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->OpenShard(bob_, hash_id).status().code(), Code::kNotFound);
  EXPECT_OK(store_->OpenShard(alice_, good_id));
  EXPECT_FALSE(std::filesystem::exists(ShardFile(data_id)));
  EXPECT_FALSE(std::filesystem::exists(ShardFile(hash_id)));
  ShardStoreStats after = store_->Stats();
  EXPECT_EQ(after.shards, 1u);
  EXPECT_EQ(after.used, before.used - ShardStore::FileSize(bad_data.size()) -
                            ShardStore::FileSize(bad_hash.size()));
  EXPECT_EQ(store_->Usage(alice_).shards, 1u);
  EXPECT_EQ(store_->Usage(bob_).shards, 0u);
  EXPECT_EQ(store_->Usage(bob_).bytes, 0u);
}

// The rate is an upper bound on the average: checked from below only (a slow machine makes a
// pass slower, never faster), so the test cannot fail for being slow.
TEST_F(ScrubberTest, RateBoundsTheBytesRead) {
  for (int i = 0; i < 3; ++i) Put(test::PseudoRandomBytes(1 << 20, 10 + i), alice_);
  ScrubberOptions o;
  o.rate = uint64_t{8} << 20;  // 3 MiB take at least 3/8 s
  Scrubber s(store_.get(), o);
  auto start = Clock::now();
  s.Start();
  std::this_thread::sleep_for(100ms);
  uint64_t early = s.Stats().bytes_checked;
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  // Each 1 MiB piece is followed by its wait: at most one piece ahead of the rate.
  EXPECT_LE(early, elapsed * static_cast<double>(o.rate) + (1 << 20));
  ASSERT_TRUE(WaitForPasses(s, 1));
  s.Stop();
  ScrubStats st = s.Stats();
  EXPECT_EQ(st.bytes_checked, uint64_t{3} << 20);
  EXPECT_GE(*st.last_pass_seconds, 3.0 / 8 - 0.01);
}

TEST_F(ScrubberTest, StopsPromptlyMidShardAndBetweenPasses) {
  Put(test::PseudoRandomBytes(3 << 20, 20), alice_);
  ScrubberOptions slow;
  slow.rate = 1024;  // after the first 1 MiB piece, a wait of 1024 s
  Scrubber mid(store_.get(), slow);
  mid.Start();
  for (int i = 0; i < 2000 && mid.Stats().bytes_checked == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(mid.Stats().bytes_checked, uint64_t{1} << 20);
  auto start = Clock::now();
  mid.Stop();
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(mid.Stats().shards_checked, 0u);  // stopped inside the shard: not counted
  EXPECT_EQ(store_->Stats().shards, 1u);      // and not dropped

  Scrubber idle(store_.get(), Fast());  // waits an hour after its first pass
  idle.Start();
  ASSERT_TRUE(WaitForPasses(idle, 1));
  start = Clock::now();
  idle.Stop();
  idle.Stop();  // idempotent
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(ScrubberTest, RateZeroIsOff) {
  Put(test::PseudoRandomBytes(1000, 30), alice_);
  ScrubberOptions o;
  o.rate = 0;
  Scrubber s(store_.get(), o);
  s.Start();
  std::this_thread::sleep_for(50ms);
  s.Stop();
  ScrubStats st = s.Stats();
  EXPECT_EQ(st.rate, 0u);
  EXPECT_EQ(st.passes_completed, 0u);
  EXPECT_EQ(st.bytes_checked, 0u);
  EXPECT_FALSE(st.last_pass_seconds.has_value());
}

}  // namespace
}  // namespace shardfs::backend

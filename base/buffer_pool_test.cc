#include "base/buffer_pool.h"

#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(BufferPoolTest, GivenBackBuffersAreReused) {
  BufferPool pool(size_t{4} << 20);
  const uint8_t* first = nullptr;
  {
    BufferPool::Buffer b = pool.Get(300000);
    EXPECT_EQ(b.size(), 300000u);
    std::memset(b.data(), 0xab, b.size());  // all of it is writable
    first = b.data();
  }
  EXPECT_EQ(pool.kept_bytes(), size_t{512} << 10);  // rounded up to a power of two
  BufferPool::Buffer again = pool.Get(400000);       // fits in the kept one
  EXPECT_EQ(again.data(), first);
  EXPECT_EQ(again.size(), 400000u);
  EXPECT_EQ(pool.kept_bytes(), 0u);
}

TEST(BufferPoolTest, TheSmallestBufferThatFitsIsTaken) {
  BufferPool pool(size_t{8} << 20);
  const uint8_t* small = nullptr;
  {
    BufferPool::Buffer a = pool.Get(size_t{2} << 20);
    BufferPool::Buffer b = pool.Get(100000);
    small = b.data();
  }
  EXPECT_EQ(pool.Get(70000).data(), small);
}

TEST(BufferPoolTest, KeepsNoMoreThanItsBudget) {
  BufferPool pool(size_t{1} << 20);
  {
    std::vector<BufferPool::Buffer> held;
    for (int i = 0; i < 5; ++i) held.push_back(pool.Get(size_t{512} << 10));
  }
  EXPECT_EQ(pool.kept_bytes(), size_t{1} << 20);
}

TEST(BufferPoolTest, MovedBufferIsGivenBackOnce) {
  BufferPool pool(size_t{4} << 20);
  {
    BufferPool::Buffer a = pool.Get(1000);
    BufferPool::Buffer b = std::move(a);
    EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
    EXPECT_EQ(b.size(), 1000u);
    BufferPool::Buffer c;
    c = std::move(b);
    EXPECT_EQ(c.size(), 1000u);
  }
  EXPECT_EQ(pool.kept_bytes(), size_t{64} << 10);
}

TEST(BufferPoolTest, ManyThreadsGetAndGiveBack) {
  BufferPool pool(size_t{2} << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      for (int i = 0; i < 200; ++i) {
        BufferPool::Buffer b = pool.Get(static_cast<size_t>(1000 + 997 * ((t * 200 + i) % 300)));
        std::memset(b.data(), t, b.size());
        for (size_t j = 0; j < b.size(); j += 4096) ASSERT_EQ(b.data()[j], t);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(pool.kept_bytes(), size_t{2} << 20);
}

}  // namespace
}  // namespace shardfs

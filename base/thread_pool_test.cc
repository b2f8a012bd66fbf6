#include "base/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(ThreadPoolTest, RunsEveryTaskBeforeDestruction) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 1000; ++i) pool.Submit([&] { done.fetch_add(1); });
  }
  EXPECT_EQ(done.load(), 1000);
}

TEST(ThreadPoolTest, CallerCanRunTasksWithoutWorkers) {
  ThreadPool pool(0);
  int done = 0;
  pool.Submit([&] { ++done; });
  pool.Submit([&] { ++done; });
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_TRUE(pool.RunOne());
  EXPECT_TRUE(pool.RunOne());
  EXPECT_FALSE(pool.RunOne());
  EXPECT_EQ(done, 2);
}

// A pool that may grow starts a worker for a task that would otherwise wait behind blocked
// ones, up to its maximum.
TEST(ThreadPoolTest, AGrowingPoolDoesNotQueueBehindBlockedTasks) {
  // Declared before the pool, so they outlive the tasks its destructor still runs.
  std::atomic<bool> release{false};
  std::atomic<int> blocked{0};
  std::atomic<bool> ran{false};
  std::atomic<bool> waited{false};
  ThreadPool pool(2, 4);
  EXPECT_EQ(pool.workers(), 2);
  for (int i = 0; i < 3; ++i) {
    pool.Submit([&] {
      ++blocked;
      while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  pool.Submit([&] { ran = true; });
  for (int i = 0; i < 2000 && !ran; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(ran);  // on the fourth worker, while three are blocked
  EXPECT_EQ(blocked.load(), 3);
  EXPECT_EQ(pool.workers(), 4);
  // At the maximum, a task waits for a worker.
  pool.Submit([&] {
    ++blocked;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  pool.Submit([&] { waited = true; });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(waited);
  EXPECT_EQ(pool.workers(), 4);
  release = true;
}

}  // namespace
}  // namespace shardfs

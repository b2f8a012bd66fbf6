#include "base/thread_pool.h"

#include <atomic>

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

}  // namespace
}  // namespace shardfs

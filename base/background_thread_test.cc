#include "base/background_thread.h"

#include <atomic>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

using namespace std::chrono_literals;

TEST(BackgroundThreadTest, StopEndsALongPauseAtOnce) {
  BackgroundThread t;
  std::atomic<int> rounds{0};
  t.Start([&] {
    while (t.Pause(1h)) ++rounds;
  });
  auto start = std::chrono::steady_clock::now();
  t.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(rounds, 0);
  EXPECT_TRUE(t.stopping());
  t.Stop();  // idempotent
}

TEST(BackgroundThreadTest, WakeEndsOnePause) {
  BackgroundThread t;
  std::atomic<int> rounds{0};
  t.Start([&] {
    while (t.Pause(1h)) ++rounds;
  });
  for (int i = 0; i < 3; ++i) {
    int before = rounds;
    t.Wake();
    for (int w = 0; w < 1000 && rounds == before; ++w) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(rounds, before + 1);
  }
  t.Stop();
}

TEST(BackgroundThreadTest, ShortPausesRunTheLoop) {
  BackgroundThread t;
  std::atomic<int> rounds{0};
  t.Start([&] {
    while (t.Pause(1ms)) ++rounds;
  });
  for (int w = 0; w < 5000 && rounds < 5; ++w) std::this_thread::sleep_for(1ms);
  t.Stop();
  EXPECT_GE(rounds, 5);
}

}  // namespace
}  // namespace shardfs

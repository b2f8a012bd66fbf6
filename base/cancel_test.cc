#include "base/cancel.h"

#include <thread>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(CancelTokenTest, CallbacksRunOnCancelOnceAndNotAfterUnregistering) {
  CancelToken token;
  int fired = 0, gone = 0;
  {
    auto keep = token.OnCancel([&] { ++fired; });
    {
      auto dropped = token.OnCancel([&] { ++gone; });
    }
    EXPECT_FALSE(IsCancelled(&token));
    std::thread other([&] { token.Cancel(); });
    other.join();
    EXPECT_TRUE(IsCancelled(&token));
    token.Cancel();  // a second cancel runs nothing again
  }
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(gone, 0);
  // Registering on a cancelled token runs the callback at once.
  int late = 0;
  auto r = token.OnCancel([&] { ++late; });
  EXPECT_EQ(late, 1);
  EXPECT_FALSE(IsCancelled(nullptr));
}

}  // namespace
}  // namespace shardfs

#include "backend/staging.h"

#include <gtest/gtest.h>

namespace shardfs::backend {
namespace {

TEST(RangeSetTest, MergesOverlappingAndTouchingRanges) {
  RangeSet s;
  s.Add(10, 5);  // [10, 15)
  s.Add(20, 5);  // [20, 25)
  s.Add(15, 2);  // touches the first: [10, 17)
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 7}, {20, 5}}));
  s.Add(12, 10);  // bridges both: [10, 25)
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 15}}));
  s.Add(0, 0);  // nothing
  s.Add(30, 1);
  EXPECT_EQ(s.bytes(), 16u);
  EXPECT_EQ(s.Overlap(20, 20), (std::vector<ByteRange>{{20, 5}, {30, 1}}));
  EXPECT_EQ(s.Overlap(25, 5), std::vector<ByteRange>{});
  s.CutFrom(22);
  EXPECT_EQ(s.ranges(), (std::vector<ByteRange>{{10, 12}}));
  s.CutFrom(10);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace shardfs::backend

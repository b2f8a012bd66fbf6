#include "base/units.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs {
namespace {

TEST(ParseByteSize, Units) {
  EXPECT_EQ(ParseByteSize("4096").value(), 4096u);
  EXPECT_EQ(ParseByteSize("4096B").value(), 4096u);
  EXPECT_EQ(ParseByteSize("1K").value(), 1024u);
  EXPECT_EQ(ParseByteSize("512MiB").value(), 512u << 20);
  EXPECT_EQ(ParseByteSize("512 mib").value(), 512u << 20);
  EXPECT_EQ(ParseByteSize("100G").value(), uint64_t{100} << 30);
  EXPECT_EQ(ParseByteSize("2GB").value(), 2000000000u);
  EXPECT_EQ(ParseByteSize("1.5G").value(), uint64_t{3} << 29);
  EXPECT_EQ(ParseByteSize(" 3T ").value(), uint64_t{3} << 40);
}

TEST(ParseByteSize, RejectsGarbage) {
  for (const char* bad : {"", "G", "-1", "1.5", "1.", "1X", "12 34", "1e9", "0x10", "1..5G"}) {
    auto r = ParseByteSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseByteSize("99999999999999999999999").status().code(), Code::kOutOfRange);
  EXPECT_EQ(ParseByteSize("9000P").status().code(), Code::kOutOfRange);
}

TEST(FormatByteSize, Readable) {
  EXPECT_EQ(FormatByteSize(512), "512 B");
  EXPECT_EQ(FormatByteSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatByteSize(uint64_t{3} << 30), "3.0 GiB");
}

}  // namespace
}  // namespace shardfs

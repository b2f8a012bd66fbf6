#include "base/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

// RFC 3720 appendix B.4 and the usual check value.
TEST(Crc32cTest, KnownValues) {
  EXPECT_EQ(Crc32c(AsBytes("123456789")), 0xE3069283u);
  EXPECT_EQ(Crc32c(Bytes(32, 0x00)), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(Bytes(32, 0xff)), 0x62A8AB43u);
  Bytes ascending(32);
  for (size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(ByteSpan()), 0u);
}

TEST(Crc32cTest, ExtendEqualsTheWholeAtEverySplit) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += static_cast<char>('a' + i % 26);
  const uint32_t whole = Crc32c(AsBytes(text));
  for (size_t split = 0; split <= text.size(); ++split) {
    const ByteSpan all = AsBytes(text);
    EXPECT_EQ(Crc32cExtend(Crc32c(all.first(split)), all.subspan(split)), whole) << split;
  }
  EXPECT_NE(Crc32c(AsBytes("a")), Crc32c(AsBytes("b")));
}

}  // namespace
}  // namespace shardfs

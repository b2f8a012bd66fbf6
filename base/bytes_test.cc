#include "base/bytes.h"

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(HexTest, RoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "0001abff");
  auto back = HexDecode("0001ABff");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
}

TEST(HexTest, RejectsBadInput) {
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
  EXPECT_FALSE(HexDecode("0g").ok());
  EXPECT_TRUE(HexDecode("").ok());
}

TEST(ConstantTimeEqualTest, ComparesContentAndSize) {
  Bytes a = {1, 2, 3}, b = {1, 2, 3}, c = {1, 2, 4}, d = {1, 2};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, c));
  EXPECT_FALSE(ConstantTimeEqual(a, d));
}

TEST(ByteWriterReaderTest, RoundTripsFixedWidthFields) {
  Bytes buf;
  ByteWriter w(&buf);
  w.U8(7);
  w.U16(0xbeef);
  w.U32(0xdeadbeef);
  w.U64(0x0123456789abcdefull);
  w.Raw(AsBytes("xyz"));
  w.Zeros(2);
  ASSERT_EQ(buf.size(), 1u + 2 + 4 + 8 + 3 + 2);
  // Little-endian on the wire whatever the host.
  EXPECT_EQ(buf[1], 0xef);
  EXPECT_EQ(buf[2], 0xbe);

  ByteReader r(buf);
  uint8_t u8;
  uint16_t u16;
  uint32_t u32;
  uint64_t u64;
  ByteSpan view;
  ASSERT_TRUE(r.U8(&u8) && r.U16(&u16) && r.U32(&u32) && r.U64(&u64) && r.View(3, &view));
  EXPECT_EQ(u8, 7);
  EXPECT_EQ(u16, 0xbeef);
  EXPECT_EQ(u32, 0xdeadbeefu);
  EXPECT_EQ(u64, 0x0123456789abcdefull);
  EXPECT_EQ(AsChars(view), "xyz");
  EXPECT_EQ(r.remaining(), 2u);
  EXPECT_TRUE(r.Skip(2));
  EXPECT_TRUE(r.AtEnd());
}

TEST(ByteReaderTest, ShortInputFailsAndStaysFailed) {
  Bytes buf = {1, 2, 3};
  ByteReader r(buf);
  uint32_t v = 99;
  EXPECT_FALSE(r.U32(&v));
  EXPECT_EQ(v, 99u);  // untouched
  EXPECT_FALSE(r.ok());
  uint8_t b;
  EXPECT_FALSE(r.U8(&b));  // a failed reader never succeeds again
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ByteReaderTest, HugeLengthDoesNotOverflow) {
  Bytes buf(16);
  ByteReader r(buf);
  ASSERT_TRUE(r.Skip(8));
  ByteSpan view;
  EXPECT_FALSE(r.View(SIZE_MAX - 4, &view));
  EXPECT_FALSE(r.ok());
}

}  // namespace
}  // namespace shardfs

#include "net/address.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::net {
namespace {

TEST(ParseHostPortTest, Accepts) {
  ASSERT_OK_AND_ASSIGN(HostPort a, ParseHostPort("127.0.0.1:7070"));
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 7070);
  ASSERT_OK_AND_ASSIGN(HostPort b, ParseHostPort("[::1]:80"));
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.ToString(), "[::1]:80");
  ASSERT_OK_AND_ASSIGN(HostPort c, ParseHostPort("node.example:65535"));
  EXPECT_EQ(c.port, 65535);
  ASSERT_OK_AND_ASSIGN(HostPort d, ParseHostPort("0.0.0.0:0", /*allow_zero_port=*/true));
  EXPECT_EQ(d.port, 0);
}

TEST(ParseHostPortTest, Refuses) {
  for (const char* bad : {"", ":80", "host", "host:", "host:0", "host:65536", "host:-1", "host:8x",
                          "::1:80", "[::1]", "[::1]80", "a b:80", "a/b:80", "host:+80"}) {
    EXPECT_EQ(ParseHostPort(bad).status().code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace shardfs::net

#include "net/api/api_path.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::api {
namespace {

TEST(ApiPathTest, DecodesNamesAndSkipsEmptyPartsAndDots) {
  ASSERT_OK_AND_ASSIGN(Names n, DecodePath("/Camera//2026/./a%20b.jpg"));
  EXPECT_EQ(n, (Names{"Camera", "2026", "a b.jpg"}));
  ASSERT_OK_AND_ASSIGN(Names none, DecodePath("/"));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(Names utf8, DecodePath("/%C3%A9t%C3%A9"));
  EXPECT_EQ(utf8, (Names{"\xc3\xa9t\xc3\xa9"}));
  ASSERT_OK_AND_ASSIGN(Names plus, DecodePath("/a+b"));
  EXPECT_EQ(plus, (Names{"a+b"}));
}

TEST(ApiPathTest, RefusesWhatCouldLeaveTheScope) {
  for (const char* bad : {"/..", "/a/../b", "/%2e%2e", "/a/%2E%2E/b", "/a%2Fb", "/a%00b", "/%ff",
                          "/%c0%af", "/%ed%a0%80", "/a%", "/a%4", "/a%zz"}) {
    auto r = DecodePath(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(DecodePath("/" + std::string(256, 'a')).status().code(), Code::kNameTooLong);
  EXPECT_OK(DecodePath("/" + std::string(255, 'a')));
  EXPECT_EQ(SplitPath("/a/../b").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(SplitPath(std::string("/a\0b", 4)).status().code(), Code::kInvalidArgument);
}

TEST(ApiPathTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x93\xb7"));   // a camera emoji
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x93"));      // cut short
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

TEST(ApiPathTest, EncodesAndJoins) {
  EXPECT_EQ(JoinPath({}), "/");
  EXPECT_EQ(JoinPath({"a", "b c"}), "/a/b c");
  EXPECT_EQ(EncodePath({"a b", "c%d", "\xc3\xa9"}), "/a%20b/c%25d/%C3%A9");
  ASSERT_OK_AND_ASSIGN(Names back, DecodePath(EncodePath({"a b", "c%d", "\xc3\xa9"})));
  EXPECT_EQ(back, (Names{"a b", "c%d", "\xc3\xa9"}));
  EXPECT_TRUE(IsWithin({"a", "b"}, {"a"}));
  EXPECT_TRUE(IsWithin({"a"}, {"a"}));
  EXPECT_FALSE(IsWithin({"ab"}, {"a"}));
  EXPECT_FALSE(IsWithin({}, {"a"}));
}

TEST(ApiPathTest, SplitsTargets) {
  ASSERT_OK_AND_ASSIGN(Target t, SplitTarget("/api/v1/list/a%20b?cursor=x%2Fy&limit=5&flag"));
  EXPECT_EQ(t.path, "/api/v1/list/a%20b");
  EXPECT_EQ(t.query["cursor"], "x/y");
  EXPECT_EQ(t.query["limit"], "5");
  EXPECT_EQ(t.query.count("flag"), 1u);
  EXPECT_FALSE(SplitTarget("/x?a=%zz").ok());
}

}  // namespace
}  // namespace shardfs::api

#include "net/api/api_http.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::api {
namespace {

TEST(ApiHttpTest, ParsesSingleRanges) {
  auto r = ParseRange("bytes=0-99", 1000);
  ASSERT_OK(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->offset, 0u);
  EXPECT_EQ((*r)->length, 100u);
  r = ParseRange("bytes=900-", 1000);
  EXPECT_EQ((*r)->offset, 900u);
  EXPECT_EQ((*r)->length, 100u);
  r = ParseRange("bytes=-10", 1000);
  EXPECT_EQ((*r)->offset, 990u);
  EXPECT_EQ((*r)->length, 10u);
  r = ParseRange("bytes=-5000", 1000);  // more than there is: all of it
  EXPECT_EQ((*r)->offset, 0u);
  EXPECT_EQ((*r)->length, 1000u);
  r = ParseRange("bytes=500-99999", 1000);  // clipped at the end
  EXPECT_EQ((*r)->length, 500u);
  // Beyond the end: 416.
  EXPECT_EQ(ParseRange("bytes=1000-", 1000).status().code(), Code::kOutOfRange);
  EXPECT_EQ(ParseRange("bytes=0-", 0).status().code(), Code::kOutOfRange);
  // Not understood, or several ranges: the whole body.
  for (const char* whole : {"", "items=0-1", "bytes=5-1", "bytes=a-b", "bytes=0-1,5-6",
                            "bytes=", "bytes=99999999999999999999-"}) {
    auto w = ParseRange(whole, 1000);
    ASSERT_OK(w) << whole;
    EXPECT_FALSE(w->has_value()) << whole;
  }
}

TEST(ApiHttpTest, MatchesEntityTags) {
  backend::InodeAttr a;
  a.ino = 10;
  a.mtime_ns = 255;
  a.size = 16;
  EXPECT_EQ(ETagOf(a), "\"a-ff-10\"");
  EXPECT_TRUE(ETagListMatches("\"a-ff-10\"", ETagOf(a), true));
  EXPECT_TRUE(ETagListMatches("\"x\", W/\"a-ff-10\"", ETagOf(a), true));
  EXPECT_FALSE(ETagListMatches("\"x\"", ETagOf(a), true));
  EXPECT_TRUE(ETagListMatches("*", ETagOf(a), true));
  EXPECT_FALSE(ETagListMatches("*", "", false));
}

TEST(ApiHttpTest, TakesTokensFromBearerAndBasic) {
  EXPECT_EQ(TokenFromAuthorization("Bearer sfs_abc"), "sfs_abc");
  EXPECT_EQ(TokenFromAuthorization("bearer  sfs_abc"), "sfs_abc");
  // "phone:sfs_abc" in base64.
  EXPECT_EQ(TokenFromAuthorization("Basic cGhvbmU6c2ZzX2FiYw=="), "sfs_abc");
  EXPECT_EQ(TokenFromAuthorization("Basic !!!"), "");
  EXPECT_EQ(TokenFromAuthorization("Basic bm9jb2xvbg=="), "");  // "nocolon"
  EXPECT_EQ(TokenFromAuthorization("Digest x"), "");
  EXPECT_EQ(TokenFromAuthorization(""), "");
  ASSERT_OK_AND_ASSIGN(std::string d, Base64Decode("aGVsbG8"));
  EXPECT_EQ(d, "hello");
  EXPECT_FALSE(Base64Decode("a").ok());
}

TEST(ApiHttpTest, FormatsDates) {
  int64_t ns = int64_t{1763802000} * 1000000000 + 123456789;  // 2025-11-22T09:00:00.123Z
  EXPECT_EQ(FormatRfc3339(ns), "2025-11-22T09:00:00.123Z");
  EXPECT_EQ(FormatHttpDate(ns), "Sat, 22 Nov 2025 09:00:00 GMT");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
}

TEST(ApiHttpTest, MapsErrorsToStatusCodes) {
  EXPECT_EQ(HttpStatusOf(Status::NotFound("x")), 404u);
  EXPECT_EQ(HttpStatusOf(Status::InvalidArgument("x")), 400u);
  EXPECT_EQ(HttpStatusOf(Status::AlreadyExists("x")), 409u);
  EXPECT_EQ(HttpStatusOf(Status::NoSpace("x")), 507u);
  EXPECT_EQ(HttpStatusOf(Status::PermissionDenied("x")), 403u);
  EXPECT_EQ(HttpStatusOf(Status::Unavailable("x")), 503u);
  EXPECT_EQ(HttpStatusOf(Status::IOError("x")), 500u);
  auto r = ErrorResponse(Status::NotFound("no \xff file"));
  EXPECT_EQ(r.status, 404u);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["code"], "NotFound");
}

}  // namespace
TEST(ApiHttpTest, ParsesEpochSecondsToTheNanosecond) {
  EXPECT_EQ(ParseEpochSeconds("1614834367.123456789"), 1614834367123456789);
  EXPECT_EQ(ParseEpochSeconds("1614834367"), 1614834367000000000);
  EXPECT_EQ(ParseEpochSeconds("1.5"), 1500000000);
  EXPECT_EQ(ParseEpochSeconds("1.1234567899"), 1123456789);  // past 9 digits: ignored
  EXPECT_EQ(ParseEpochSeconds("0"), 0);
  for (const char* bad : {"", ".5", "-1", "1e9", " 1", "1.5x", "1.-5", "100000000001"}) {
    EXPECT_EQ(ParseEpochSeconds(bad), std::nullopt) << bad;
  }
}

TEST(ApiHttpTest, ParsesOctalModes) {
  EXPECT_EQ(ParseMode("644"), 0644u);
  EXPECT_EQ(ParseMode("0755"), 0755u);
  EXPECT_EQ(ParseMode("7777"), 07777u);
  for (const char* bad : {"", "8", "17777", "644 ", "-1", "000000"}) {
    EXPECT_EQ(ParseMode(bad), std::nullopt) << bad;
  }
}

}  // namespace shardfs::api

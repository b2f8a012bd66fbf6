#include "base/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace shardfs {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s.ToErrno(), 0);
}

TEST(StatusTest, CodesMapToErrno) {
  EXPECT_EQ(Status::NotFound("x").ToErrno(), ENOENT);
  EXPECT_EQ(Status::AlreadyExists("x").ToErrno(), EEXIST);
  EXPECT_EQ(Status::InvalidArgument("x").ToErrno(), EINVAL);
  EXPECT_EQ(Status::PermissionDenied("x").ToErrno(), EACCES);
  EXPECT_EQ(Status::NoSpace("x").ToErrno(), ENOSPC);
  EXPECT_EQ(Status::NotSupported("x").ToErrno(), EOPNOTSUPP);
  EXPECT_EQ(Status::Corruption("x").ToErrno(), EIO);
  EXPECT_EQ(Status::Unavailable("x").ToErrno(), EIO);
  EXPECT_EQ(Status::IOError("x").ToErrno(), EIO);
  EXPECT_EQ(Status(Code::kNotEmpty, "x").ToErrno(), ENOTEMPTY);
  EXPECT_EQ(Status(Code::kNameTooLong, "x").ToErrno(), ENAMETOOLONG);
  EXPECT_EQ(Status::OutOfRange("x").ToErrno(), ERANGE);
  EXPECT_EQ(Status::NoAttribute("x").ToErrno(), ENODATA);
  EXPECT_EQ(Status::NoAttribute("x").ToString(), "NoAttribute: x");
}

TEST(StatusTest, NeverEpermForAnyCode) {
  for (int c = 0; c <= static_cast<int>(Code::kNoAttribute); ++c) {
    Status s(static_cast<Code>(c), "m");
    EXPECT_NE(s.ToErrno(), EPERM) << CodeName(s.code());
    EXPECT_NE(CodeName(s.code()), "Unknown");
  }
}

TEST(StatusTest, PosixErrorRoundTripsCommonErrnos) {
  for (int err : {ENOENT, EEXIST, EINVAL, EACCES, ENOSPC, ENOTEMPTY, ENOTDIR, EISDIR, EBUSY, ERANGE,
                  ENODATA}) {
    Status s = PosixError("op", err);
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.ToErrno(), err) << s.ToString();
  }
  EXPECT_EQ(PosixError("op", EPERM).ToErrno(), EACCES);
  EXPECT_EQ(PosixError("op", EXDEV).code(), Code::kIOError);
  EXPECT_EQ(PosixError("open /x", ENOENT).message().rfind("open /x: ", 0), 0u);
}

TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = Status::NotFound("no shard").WithContext("GET");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "GET: no shard");
  EXPECT_TRUE(Status::Ok().WithContext("GET").ok());
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  SFS_ASSIGN_OR_RETURN(int h, Half(x));
  SFS_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  SFS_RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(ResultTest, ValueOrStatus) {
  Result<int> r = Quarter(12);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3);
  Result<int> bad = Quarter(6);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(bad.value_or(-1), -1);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).code(), Code::kInvalidArgument);
}

TEST(ResultDeathTest, ReadingFailedValueAborts) {
  Result<int> bad = Status::NotFound("x");
  EXPECT_DEATH((void)bad.value(), "");
}

}  // namespace
TEST(StatusTest, CodesComeBackFromTheirNames) {
  for (int c = 0; c <= static_cast<int>(kLastCode); ++c) {
    EXPECT_EQ(CodeFromName(CodeName(static_cast<Code>(c))), static_cast<Code>(c));
  }
  EXPECT_EQ(CodeFromName("NoSuchCode"), std::nullopt);
  EXPECT_EQ(CodeFromName(""), std::nullopt);
}

}  // namespace shardfs

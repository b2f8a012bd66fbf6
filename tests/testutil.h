// Helpers shared by the unit tests: Status assertions and reproducible test data.

#ifndef SHARDFS_TESTS_TESTUTIL_H_
#define SHARDFS_TESTS_TESTUTIL_H_

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "base/status.h"

// Status (or Result) assertions; they print the status on failure and take `<< "context"`.
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::shardfs::test::IsOk, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::shardfs::test::IsOk, expr)
// `lhs = value of expr`, failing the test (and returning) if expr is an error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(SFS_CONCAT_(sfs_test_result_, __LINE__), lhs, expr)
#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)  \
  auto tmp = (expr);                                \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString(); \
  lhs = std::move(tmp).value()

namespace shardfs::test {

inline ::testing::AssertionResult IsOk(const char* text, const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << " is " << s.ToString();
}
template <typename T>
::testing::AssertionResult IsOk(const char* text, const Result<T>& r) {
  return IsOk(text, r.status());
}

// `n` bytes from a fast deterministic generator (SplitMix64 seeded with `seed`): the same
// bytes on every run and platform.
Bytes PseudoRandomBytes(size_t n, uint64_t seed);
void FillPseudoRandom(MutableByteSpan out, uint64_t seed);

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace shardfs::test

#endif  // SHARDFS_TESTS_TESTUTIL_H_

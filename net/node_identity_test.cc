#include "net/node_identity.h"

#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/file.h"
#include "tests/testutil.h"

namespace shardfs::net {
namespace {

TEST(NodeIdentityTest, CreatedOnceThenKept) {
  test::TempDir dir;
  std::string d = dir.path() + "/a/b";
  ASSERT_OK_AND_ASSIGN(crypto::SigningKey k1, LoadOrCreateNodeKey(d));
  ASSERT_OK_AND_ASSIGN(crypto::SigningKey k2, LoadOrCreateNodeKey(d));
  EXPECT_EQ(k1.public_key(), k2.public_key());
  struct stat st {};
  ASSERT_EQ(::stat((d + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(NodeIdentityTest, DamageIsAClearError) {
  test::TempDir dir;
  ASSERT_OK(LoadOrCreateNodeKey(dir.path()));
  std::string path = dir.path() + "/node.key";
  ASSERT_OK_AND_ASSIGN(Bytes good, ReadFile(path, 1024));
  for (size_t i = 0; i < good.size(); ++i) {
    Bytes bad = good;
    bad[i] ^= 0x10;
    ASSERT_OK(WriteFileAtomic(path, bad, 0600));
    auto r = LoadOrCreateNodeKey(dir.path());
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_TRUE(r.status().code() == Code::kCorruption || r.status().code() == Code::kNotSupported)
        << i;
  }
  ASSERT_OK(WriteFileAtomic(path, ByteSpan(good).first(10), 0600));
  EXPECT_EQ(LoadOrCreateNodeKey(dir.path()).status().code(), Code::kCorruption);
  ASSERT_OK(WriteFileAtomic(path, Bytes(5000, 1), 0600));
  EXPECT_EQ(LoadOrCreateNodeKey(dir.path()).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace shardfs::net

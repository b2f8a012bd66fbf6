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

namespace shardfs::net {
namespace {

// tests/golden/node_key_v1.bin was written by an independent implementation (Python) from
// the seed 21 22 .. 40; a node's identity must survive upgrades.
TEST(NodeIdentityTest, GoldenV1) {
  test::TempDir dir;
  ASSERT_OK_AND_ASSIGN(
      Bytes golden,
      ReadFile(std::string(SHARDFS_SOURCE_DIR) + "/tests/golden/node_key_v1.bin", 1024));
  ASSERT_OK(WriteFileAtomic(dir.path() + "/node.key", golden, 0600));
  ASSERT_OK_AND_ASSIGN(crypto::SigningKey key, LoadOrCreateNodeKey(dir.path()));
  EXPECT_EQ(crypto::NodeIdOf(key.public_key()).ToHex(),
            "e7f162a10bec559afea195e4dce84b69568d5d2cb0963eb446c0685e2b17f2f0");
  ASSERT_OK_AND_ASSIGN(Bytes after, ReadFile(dir.path() + "/node.key", 1024));
  EXPECT_EQ(after, golden);  // read, not rewritten
}

}  // namespace
}  // namespace shardfs::net

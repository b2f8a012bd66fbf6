#include "backend/drive_config.h"

#include <gtest/gtest.h>

#include "tests/testutil.h"

namespace shardfs::backend {
namespace {

DriveConfig Sample() {
  DriveConfig c;
  c.name = "photos-2026";
  c.k = 4;
  c.m = 2;
  std::array<uint8_t, 32> a{}, b{};
  a[0] = 1;
  b[31] = 2;
  c.nodes = {DriveNode{"127.0.0.1:7001", NodeId(a)}, DriveNode{"[::1]:7002", NodeId(b)}};
  return c;
}

TEST(DriveConfigTest, RoundTrips) {
  DriveConfig c = Sample();
  std::string text = EncodeDriveConfig(c);
  ASSERT_OK_AND_ASSIGN(DriveConfig back, ParseDriveConfig(text));
  EXPECT_EQ(back, c);
  EXPECT_NE(text.find("k = 4"), std::string::npos) << text;
}

TEST(DriveConfigTest, BadFilesAreRefusedWithAReason) {
  std::string good = EncodeDriveConfig(Sample());
  struct Case {
    std::string text;
    Code code;
    std::string says;
  };
  std::vector<Case> cases = {
      {"format = 1\nname = \"x\"\nk = 4\nm = \n", Code::kInvalidArgument, "line 4"},
      {"format = 2\nname = \"x\"\nk = 4\nm = 2\n", Code::kNotSupported, "format 2"},
      {"name = \"x\"\nk = 4\nm = 2\n", Code::kInvalidArgument, "'format'"},
      {"format = 1\nname = \"x\"\nk = 4\nm = 2\nkk = 1\n", Code::kInvalidArgument, "'kk'"},
      {"format = 1\nname = \"x\"\nk = 0\nm = 2\n", Code::kInvalidArgument, "k and m"},
      {"format = 1\nname = \"x\"\nk = 30\nm = 3\n", Code::kInvalidArgument, "k + m"},
      {"format = 1\nname = \"x\"\nk = \"4\"\nm = 2\n", Code::kInvalidArgument, "'k'"},
      {"format = 1\nname = \"../etc\"\nk = 4\nm = 2\n", Code::kInvalidArgument, "drive name"},
      {"format = 1\nname = \"x\"\nk = 4\nm = 2\nnodes = [{address = \"a:1\", id = \"zz\"}]\n",
       Code::kInvalidArgument, "64 hex"},
      {"format = 1\nname = \"x\"\nk = 4\nm = 2\nnodes = \"a:1\"\n", Code::kInvalidArgument,
       "array"},
  };
  for (const Case& c : cases) {
    auto r = ParseDriveConfig(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), c.code) << c.text << " -> " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << r.status().ToString();
  }
  // Every truncation of a good file is either refused or a valid config, never a crash.
  for (size_t n = 0; n < good.size(); ++n) (void)ParseDriveConfig(good.substr(0, n));
}

TEST(DriveConfigTest, DuplicateNodesAreRefused) {
  DriveConfig c = Sample();
  c.nodes[1].address = c.nodes[0].address;
  EXPECT_EQ(ValidateDriveConfig(c).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs::backend

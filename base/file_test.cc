#include "base/file.h"

#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/byte_source.h"
#include "base/logging.h"
#include "tests/testutil.h"

namespace shardfs {
namespace {

// A test folder that counts its entries.
class TempDir : public test::TempDir {
 public:
  int Entries() const {
    int n = 0;
    DIR* d = ::opendir(path().c_str());
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';  // NOLINT(concurrency-mt-unsafe)
    ::closedir(d);
    return n;
  }
};

TEST(FileTest, WriteAtomicCreatesReplacesAndSetsMode) {
  TempDir dir;
  std::string p = dir.path() + "/f";
  ASSERT_OK(WriteFileAtomic(p, AsBytes("first"), 0640));
  ASSERT_OK_AND_ASSIGN(Bytes got, ReadFile(p, 100));
  EXPECT_EQ(AsChars(got), "first");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_OK(WriteFileAtomic(p, AsBytes("second, longer"), 0600));
  ASSERT_OK_AND_ASSIGN(got, ReadFile(p, 100));
  EXPECT_EQ(AsChars(got), "second, longer");
  EXPECT_EQ(dir.Entries(), 1);  // no temporary file left behind
}

TEST(FileTest, WriteIntoMissingFolderFailsAndLeavesNothing) {
  TempDir dir;
  Status s = WriteFileAtomic(dir.path() + "/missing/f", AsBytes("x"), 0600);
  EXPECT_EQ(s.code(), Code::kNotFound) << s.ToString();
  EXPECT_EQ(dir.Entries(), 0);
}

TEST(FileTest, LockFileIsExclusiveAndNamesItsHolder) {
  test::TempDir dir;
  std::string path = dir.path() + "/lock";
  ASSERT_OK_AND_ASSIGN(UniqueFd first, LockFile(path, "first holder"));
  auto second = LockFile(path, "second");
  ASSERT_EQ(second.status().code(), Code::kBusy);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid()) + ": first holder"),
            std::string::npos)
      << second.status().ToString();
  first.Reset();  // the lock goes with the descriptor
  ASSERT_OK_AND_ASSIGN(UniqueFd again, LockFile(path, "second"));
  ASSERT_OK_AND_ASSIGN(Bytes text, ReadFile(path, 1024));
  EXPECT_EQ(std::string(text.begin(), text.end()),
            "pid " + std::to_string(::getpid()) + ": second\n");
  EXPECT_FALSE(LockFile(dir.path() + "/missing/lock", "x").ok());
}

TEST(FileTest, ReadRefusesLargeFilesAndFolders) {
  TempDir dir;
  std::string p = dir.path() + "/big";
  ASSERT_OK(WriteFileAtomic(p, Bytes(5000, 1), 0600));
  EXPECT_EQ(ReadFile(p, 4999).status().code(), Code::kOutOfRange);
  ASSERT_OK_AND_ASSIGN(Bytes all, ReadFile(p, 5000));
  EXPECT_EQ(all.size(), 5000u);
  EXPECT_EQ(ReadFile(dir.path(), 100).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadFile(dir.path() + "/none", 100).status().code(), Code::kNotFound);
  // A file whose size stat cannot tell (procfs) is read to its end, within the cap.
  ASSERT_OK_AND_ASSIGN(Bytes status, ReadFile("/proc/self/status", 1 << 20));
  EXPECT_NE(AsChars(status).find("Name:"), std::string::npos);
  EXPECT_EQ(ReadFile("/proc/self/status", 10).status().code(), Code::kOutOfRange);
}

// The process's resident file-backed memory (RssFile), KiB.
long RssFileKiB() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "RssFile: %ld kB", &kib) == 1) break;
  }
  std::fclose(f);
  return kib;
}

// Forget drops the pages from the process's memory, not from the file: they read the same.
TEST(MappedFileTest, ForgottenPagesReadTheSame) {
  TempDir dir;
  const std::string path = dir.path() + "/f";
  Bytes data = test::PseudoRandomBytes(8 << 20, 3);
  ASSERT_OK(WriteFileAtomic(path, data, 0600));
  ASSERT_OK_AND_ASSIGN(auto map, MappedFile::Open(path));
  uint64_t sum = 0;
  for (uint8_t b : map->bytes()) sum += b;  // every page mapped in
  const long before = RssFileKiB();
  map->Forget(100, (8 << 20) - 200);  // all but the first and last page
  const long after = RssFileKiB();
  ASSERT_GE(before, 0);
  ASSERT_GE(after, 0);
  EXPECT_GE(before - after, 7 * 1024) << before << " " << after;
  uint64_t again = 0;
  for (uint8_t b : map->bytes()) again += b;
  EXPECT_EQ(again, sum);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), map->bytes().begin()));
  map->Forget(9 << 20, 100);  // past the end: nothing
  map->Forget(0, 1);          // less than a page: nothing
  EXPECT_EQ(map->bytes()[0], data[0]);
}

TEST(ByteSourceTest, FdAndSpanSourcesReadToTheEnd) {
  TempDir dir;
  std::string p = dir.path() + "/data";
  Bytes data = test::PseudoRandomBytes(10000, 3);
  ASSERT_OK(WriteFileAtomic(p, data, 0600));
  int fd = ::open(p.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  FdByteSource fds(fd);
  SpanByteSource spans(data);
  for (ByteSource* src : {static_cast<ByteSource*>(&fds), static_cast<ByteSource*>(&spans)}) {
    Bytes got, buf(3000);
    for (;;) {
      ASSERT_OK_AND_ASSIGN(size_t n, src->Read(buf));
      if (n == 0) break;
      got.insert(got.end(), buf.begin(), buf.begin() + n);
    }
    EXPECT_EQ(got, data);
  }
  ::close(fd);
  FdByteSource closed(fd);
  Bytes buf(10);
  EXPECT_FALSE(closed.Read(buf).ok());
}

TEST(LoggingTest, FileLoggerWritesPrivateFileAndFiltersLevels) {
  TempDir dir;
  std::string p = dir.path() + "/log";
  ASSERT_OK(log::Init({log::Level::kWarn, p}));
  log::Info("hidden {}", 1);
  log::Warn("shown {}", 2);
  log::Error("also shown");
  spdlog::default_logger()->flush();
  ASSERT_OK_AND_ASSIGN(Bytes text, ReadFile(p, 1 << 20));
  std::string s(AsChars(text));
  EXPECT_EQ(s.find("hidden"), std::string::npos);
  EXPECT_NE(s.find("shown 2"), std::string::npos);
  EXPECT_NE(s.find("also shown"), std::string::npos);
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(log::Init({log::Level::kInfo, dir.path() + "/no/such/dir/log"}).code(),
            Code::kNotFound);
  ASSERT_OK(log::Init({}));  // back to stderr for the other tests
}

TEST(LoggingTest, ParseLevel) {
  EXPECT_EQ(*log::ParseLevel("debug"), log::Level::kDebug);
  EXPECT_EQ(*log::ParseLevel("off"), log::Level::kOff);
  EXPECT_EQ(log::ParseLevel("loud").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace shardfs

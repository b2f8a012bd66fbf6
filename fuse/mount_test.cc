// The mount for real: a Drive over in-memory nodes, mounted in a temporary folder through
// /dev/fuse, driven with plain system calls from the test. Needs root and /dev/fuse (CI has
// both); skipped with a message otherwise.

#include "fuse/mount.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backend/memory_peer.h"
#include "crypto/sign.h"
#include "tests/faulty_peer.h"
#include "tests/memory_drive.h"
#include "tests/testutil.h"

namespace shardfs::fuse {
namespace {

using backend::Drive;
using backend::DriveOptions;
using backend::MemoryPeer;

using test::FaultyPeer;

bool CanMount() { return ::geteuid() == 0 && ::access("/dev/fuse", R_OK | W_OK) == 0; }

class MountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!CanMount()) GTEST_SKIP() << "needs root and /dev/fuse to mount";
    options_ = test::MemoryDriveOptions(dir_.path(), 6, uint64_t{1} << 32, &peers_);
    options_.checkpoint.max_delay = std::chrono::milliseconds(0);
    mnt_ = dir_.path() + "/mnt";
    plain_ = dir_.path() + "/plain";
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(plain_.c_str(), 0755), 0);
    StartMount();
  }

  void TearDown() override { StopMount(); }

  void StartMount() {
    ASSERT_OK_AND_ASSIGN(drive_, Drive::Open(options_));
    MountOptions mo;
    mo.mountpoint = mnt_;
    mo.fsync_timeout = std::chrono::milliseconds(3000);
    ASSERT_OK_AND_ASSIGN(mount_, Mount::Create(drive_.get(), mo));
    serving_ = std::thread([this] { run_status_ = mount_->Run(); });
  }

  void StopMount() {
    if (mount_) {
      EXPECT_OK(mount_->Unmount(false));
      serving_.join();
      EXPECT_OK(run_status_);
      mount_.reset();
    }
    drive_.reset();
  }

  std::string M(const std::string& rel) const { return mnt_ + "/" + rel; }

  // Has the kernel write back what it cached, then the drive store everything.
  void SyncAll() {
    int fd = ::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::syncfs(fd), 0) << std::strerror(errno);
    ::close(fd);
    ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  }

  static void WriteFile(const std::string& path, const std::string& data) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::close(fd), 0);
  }
  static std::string ReadFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return "<" + std::string(std::strerror(errno)) + ">";
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }

  test::TempDir dir_;
  DriveOptions options_;
  std::vector<std::shared_ptr<FaultyPeer>> peers_;
  std::string mnt_, plain_;
  std::unique_ptr<Drive> drive_;
  std::unique_ptr<Mount> mount_;
  std::thread serving_;
  Status run_status_;
};

TEST_F(MountTest, ShowsAsShardfsAndWritesReadBack) {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  bool seen = false;
  while (std::getline(mounts, line)) {
    if (line.find(" " + mnt_ + " ") != std::string::npos) {
      EXPECT_EQ(line.rfind("shardfs " + mnt_ + " fuse.shardfs ", 0), 0u) << line;
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
  Bytes bytes = test::PseudoRandomBytes(3 << 20, 7);
  const std::string big(bytes.begin(), bytes.end());
  WriteFile(M("big"), big);
  EXPECT_EQ(ReadFile(M("big")), big);
  struct stat st {};
  ASSERT_EQ(::stat(M("big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(big.size()));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // After the upload, from the nodes (a new mount has an empty page cache).
  SyncAll();
  StopMount();
  StartMount();
  EXPECT_EQ(ReadFile(M("big")), big);
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
}

// Changes made beside the kernel (as the companion API makes them, through the drive) show
// in the mount once invalidated, though the kernel may trust what it cached for an hour.
TEST_F(MountTest, InvalidationShowsChangesMadeBesideTheKernel) {
  struct stat st {};
  ASSERT_NE(::stat(M("beside").c_str(), &st), 0);  // the kernel now caches "no such entry"
  WriteFile(M("kept"), "old contents");
  EXPECT_EQ(ReadFile(M("kept")), "old contents");  // and these pages
  ASSERT_OK_AND_ASSIGN(auto made, drive_->Create(backend::kRootIno, "beside", {0644, 0, 0}));
  ASSERT_OK(drive_->WriteWholeFile(made.ino, AsBytes("made beside")).status());
  ASSERT_OK_AND_ASSIGN(auto kept, drive_->Lookup(backend::kRootIno, "kept"));
  ASSERT_OK(drive_->WriteWholeFile(kept.ino, AsBytes("new contents")).status());
  mount_->InvalidateEntry(backend::kRootIno, "beside");
  mount_->InvalidateInode(kept.ino);
  EXPECT_EQ(ReadFile(M("beside")), "made beside");
  EXPECT_EQ(ReadFile(M("kept")), "new contents");
  // Inodes and entries the kernel never saw are no error.
  mount_->InvalidateInode(999999);
  mount_->InvalidateEntry(999999, "x");
}

TEST_F(MountTest, ClosedFileShowsSizeAndMtimeAtOnceAndUtimensSurvivesUpload) {
  WriteFile(M("a"), "hello world");
  const timespec times[2] = {{1000, 123456789}, {2000, 987654321}};
  ASSERT_EQ(::utimensat(AT_FDCWD, M("a").c_str(), times, 0), 0);
  struct stat st {};
  ASSERT_EQ(::stat(M("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  // fsync returns once the bytes are stored: nothing staged is left for the file.
  int fd = ::open(M("a").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  EXPECT_EQ(drive_->Uploads().staged.layers, 0u);
  StopMount();
  StartMount();
  ASSERT_EQ(::stat(M("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(ReadFile(M("a")), "hello world");
}

TEST_F(MountTest, RenameOfPendingFilesLosesNothingAndUnlinkCancels) {
  ASSERT_EQ(::mkdir(M("d").c_str(), 0755), 0);
  for (int i = 0; i < 20; ++i) WriteFile(M("d/f" + std::to_string(i)), "file " + std::to_string(i));
  WriteFile(M("gone"), std::string(100000, 'x'));
  // Renamed and deleted while their uploads are still queued.
  ASSERT_EQ(::rename(M("d").c_str(), M("e").c_str()), 0);
  ASSERT_EQ(::unlink(M("gone").c_str()), 0);
  SyncAll();
  StopMount();
  StartMount();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(ReadFile(M("e/f" + std::to_string(i))), "file " + std::to_string(i));
  }
  struct stat st {};
  EXPECT_NE(::stat(M("gone").c_str(), &st), 0);
  EXPECT_NE(::stat(M("d").c_str(), &st), 0);
  // The deleted file's 100,000 bytes were never stored.
  auto totals = drive_->catalog().GetTotals();
  ASSERT_OK(totals.status());
  EXPECT_LT(totals->pack_bytes, 50000u);
}

TEST_F(MountTest, OfflineReadsFailWithEioInBoundedTimeAndWritesQueue) {
  Bytes bytes = test::PseudoRandomBytes(1 << 20, 3);
  WriteFile(M("stored"), std::string(bytes.begin(), bytes.end()));
  SyncAll();
  StopMount();
  StartMount();  // an empty page cache
  for (auto& p : peers_) p->down = true;
  const auto start = std::chrono::steady_clock::now();
  int fd = ::open(M("stored").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  EXPECT_EQ(::read(fd, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  // Writes still land in the write-back area, and read back from it.
  WriteFile(M("offline"), "written while offline");
  EXPECT_EQ(ReadFile(M("offline")), "written while offline");
  // fsync fails with EIO after its bound; the bytes stay queued...
  fd = ::open(M("offline").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::fsync(fd), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  // ...and are stored when the nodes come back.
  for (auto& p : peers_) p->down = false;
  ASSERT_OK(drive_->Sync(std::chrono::seconds(30)));
  StopMount();
  StartMount();
  EXPECT_EQ(ReadFile(M("offline")), "written while offline");
}

TEST_F(MountTest, OfflineWritesFillTheWriteBackAreaThenFailWithEnospc) {
  StopMount();
  options_.staging_limit = 2 << 20;
  options_.staging_wait = std::chrono::milliseconds(2000);
  StartMount();
  for (auto& p : peers_) p->down = true;
  // 6 MiB into a 2 MiB area with no node to upload to: the kernel's write-back cache takes the
  // writes, so the error may come at write or at close, but it comes.
  Bytes chunk = test::PseudoRandomBytes(1 << 20, 9);
  int fd = ::open(M("too-big").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  int err = 0;
  for (int i = 0; i < 6 && err == 0; ++i) {
    if (::write(fd, chunk.data(), chunk.size()) < 0) err = errno;
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  EXPECT_EQ(err, ENOSPC);
  // Once the nodes are back the area drains, and writes fit again.
  for (auto& p : peers_) p->down = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (drive_->Uploads().staged.bytes > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(drive_->Uploads().staged.bytes, 0u);
  WriteFile(M("small"), "fits");
  // (syncfs would report the refused writes of "too-big" again: the file system had them.)
  int sfd = ::open(M("small").c_str(), O_RDONLY);
  ASSERT_GE(sfd, 0);
  EXPECT_EQ(::fsync(sfd), 0) << std::strerror(errno);
  ::close(sfd);
  StopMount();
  StartMount();
  EXPECT_EQ(ReadFile(M("small")), "fits");
}

TEST_F(MountTest, ReaddirListsEveryEntryOnceAcrossPages) {
  ASSERT_EQ(::mkdir(M("many").c_str(), 0755), 0);
  for (int i = 0; i < 2500; ++i) {
    int fd = ::open(M("many/n" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  DIR* d = ::opendir(M("many").c_str());
  ASSERT_NE(d, nullptr);
  std::map<std::string, int> seen;
  while (dirent* e = ::readdir(d)) ++seen[e->d_name];
  ::closedir(d);
  EXPECT_EQ(seen.size(), 2502u);
  for (const auto& [name, n] : seen) EXPECT_EQ(n, 1) << name;
  EXPECT_EQ(seen.count("."), 1u);
  EXPECT_EQ(seen.count("n2499"), 1u);
}

// --- The POSIX parity harness: the same operations on a plain folder and on the mount. ---

// Runs operations under a root folder and writes down what each returned (errno on failure)
// and what it observed, so that two runs can be compared line by line.
class Recorder {
 public:
  explicit Recorder(std::string root) : root_(std::move(root)) {}
  std::string P(const std::string& rel) const { return root_ + "/" + rel; }

  void Note(const std::string& what, long rc) {
    out_ << what << " -> "
         << (rc < 0 ? "errno " + std::string(strerrorname_np(errno)) : std::to_string(rc)) << "\n";
  }
  // Type, permission bits, size, link count; mtime too when `times`.
  void Stat(const std::string& rel, bool times = false) {
    struct stat st {};
    if (::lstat(P(rel).c_str(), &st) != 0) {
      Note("lstat " + rel, -1);
      return;
    }
    out_ << "lstat " << rel << ": type " << (st.st_mode & S_IFMT) << " mode " << std::oct
         << (st.st_mode & 07777) << std::dec << " size " << (S_ISDIR(st.st_mode) ? 0 : st.st_size)
         << " nlink " << (S_ISDIR(st.st_mode) ? 0 : st.st_nlink);
    if (times) out_ << " mtime " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
    out_ << "\n";
  }
  void Contents(const std::string& rel) {
    int fd = ::open(P(rel).c_str(), O_RDONLY);
    if (fd < 0) {
      Note("read " + rel, -1);
      return;
    }
    std::string s;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(fd);
    out_ << "contents " << rel << ": " << s.size() << " bytes, hash " << std::hash<std::string>{}(s)
         << "\n";
  }
  void List(const std::string& rel) {
    DIR* d = ::opendir(P(rel).c_str());
    if (d == nullptr) {
      Note("opendir " + rel, -1);
      return;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) names.push_back(e->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    out_ << "list " << rel << ":";
    for (const auto& n : names) out_ << " " << n;
    out_ << "\n";
  }
  // The user.* attribute names and values, sorted.
  void Xattrs(const std::string& rel) {
    char names[4096];
    ssize_t n = ::listxattr(P(rel).c_str(), names, sizeof names);
    if (n < 0) {
      Note("listxattr " + rel, -1);
      return;
    }
    std::vector<std::string> list;
    for (ssize_t i = 0; i < n;) {
      std::string name(names + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      if (name.rfind("user.", 0) != 0) continue;
      char value[256];
      ssize_t v = ::getxattr(P(rel).c_str(), name.c_str(), value, sizeof value);
      list.push_back(name + "=" + (v < 0 ? "?" : std::string(value, static_cast<size_t>(v))));
    }
    std::sort(list.begin(), list.end());
    out_ << "xattrs " << rel << ":";
    for (const auto& x : list) out_ << " " << x;
    out_ << "\n";
  }
  std::string str() const { return out_.str(); }

 private:
  std::string root_;
  std::ostringstream out_;
};

// Expects two records to be equal, printing only the lines that differ.
void ExpectSameRecord(const std::string& mounted, const std::string& plain) {
  std::istringstream a(mounted), b(plain);
  std::string la, lb;
  int line = 0, diffs = 0;
  while (true) {
    const bool more_a = static_cast<bool>(std::getline(a, la));
    const bool more_b = static_cast<bool>(std::getline(b, lb));
    if (!more_a && !more_b) break;
    ++line;
    if (la != lb && ++diffs <= 20) {
      ADD_FAILURE() << "line " << line << "\n  mount: " << (more_a ? la : "<end>")
                    << "\n  plain: " << (more_b ? lb : "<end>");
    }
    if (!more_a) la.clear();
    if (!more_b) lb.clear();
  }
  EXPECT_EQ(diffs, 0);
}

void ParitySequence(Recorder& r) {
  auto write_at = [&](const std::string& rel, off_t off, const std::string& s, int flags = 0) {
    int fd = ::open(r.P(rel).c_str(), O_WRONLY | O_CREAT | flags, 0644);
    r.Note("open " + rel, fd < 0 ? -1 : 0);
    if (fd < 0) return;
    ssize_t n = (flags & O_APPEND) ? ::write(fd, s.data(), s.size())
                                   : ::pwrite(fd, s.data(), s.size(), off);
    r.Note("write " + rel, n);
    r.Note("close " + rel, ::close(fd));
  };
  // Create, write at offsets (a hole between), truncate down and up, append.
  write_at("f", 0, "hello");
  write_at("f", 100000, "far away");
  r.Stat("f");
  r.Contents("f");
  r.Note("truncate f 50", ::truncate(r.P("f").c_str(), 50));
  r.Contents("f");
  r.Note("truncate f 70000", ::truncate(r.P("f").c_str(), 70000));
  r.Contents("f");
  write_at("f", 0, "+appended", O_APPEND);
  r.Stat("f");
  r.Contents("f");
  // O_EXCL and O_TRUNC.
  r.Note("open excl existing", ::open(r.P("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600));
  int fd = ::open(r.P("f").c_str(), O_WRONLY | O_TRUNC);
  r.Note("open trunc", fd < 0 ? -1 : 0);
  if (fd >= 0) ::close(fd);
  r.Stat("f");
  // Errors of names and kinds.
  r.Note("open missing", ::open(r.P("missing").c_str(), O_RDONLY));
  r.Note("mkdir d", ::mkdir(r.P("d").c_str(), 0750));
  r.Note("mkdir d again", ::mkdir(r.P("d").c_str(), 0750));
  write_at("d/inner", 0, "x");
  r.Note("rmdir nonempty", ::rmdir(r.P("d").c_str()));
  r.Note("unlink dir", ::unlink(r.P("d").c_str()));
  r.Note("rmdir file", ::rmdir(r.P("f").c_str()));
  r.Note("open through file", ::open(r.P("f/x").c_str(), O_RDONLY));
  r.Note("mkdir long name", ::mkdir(r.P(std::string(256, 'n')).c_str(), 0755));
  r.Note("mkdir 255 name", ::mkdir(r.P(std::string(255, 'n')).c_str(), 0755));
  // Rename over things.
  write_at("g", 0, "gggg");
  r.Note("rename g over f", ::rename(r.P("g").c_str(), r.P("f").c_str()));
  r.Contents("f");
  r.Note("mkdir e", ::mkdir(r.P("e").c_str(), 0755));
  r.Note("rename f over dir", ::rename(r.P("f").c_str(), r.P("e").c_str()));
  r.Note("rename dir over file", ::rename(r.P("e").c_str(), r.P("f").c_str()));
  r.Note("rename dir over nonempty", ::rename(r.P("e").c_str(), r.P("d").c_str()));
  r.Note("mkdir e2", ::mkdir(r.P("e2").c_str(), 0755));
  r.Note("rename dir over empty dir", ::rename(r.P("e").c_str(), r.P("e2").c_str()));
  r.Note("rename into own child", ::rename(r.P("d").c_str(), r.P("d/sub").c_str()));
  write_at("h", 0, "hhh");
  r.Note("renameat2 noreplace",
         ::renameat2(AT_FDCWD, r.P("h").c_str(), AT_FDCWD, r.P("f").c_str(), RENAME_NOREPLACE));
  r.Note("renameat2 exchange",
         ::renameat2(AT_FDCWD, r.P("h").c_str(), AT_FDCWD, r.P("f").c_str(), RENAME_EXCHANGE));
  r.Contents("f");
  r.Contents("h");
  // Hard links and symlinks.
  r.Note("link", ::link(r.P("f").c_str(), r.P("f-link").c_str()));
  r.Stat("f");
  r.Note("link existing", ::link(r.P("f").c_str(), r.P("h").c_str()));
  r.Note("unlink f", ::unlink(r.P("f").c_str()));
  r.Stat("f-link");
  r.Contents("f-link");
  r.Note("symlink", ::symlink("f-link", r.P("s").c_str()));
  r.Stat("s");
  char target[256] = {};
  r.Note("readlink", ::readlink(r.P("s").c_str(), target, sizeof target));
  r.Note(std::string("target ") + target, 0);
  r.Contents("s");
  r.Note("symlink dangling", ::symlink("nowhere", r.P("dangling").c_str()));
  r.Contents("dangling");
  // chmod and times (ns, UTIME_NOW, UTIME_OMIT).
  r.Note("chmod", ::chmod(r.P("f-link").c_str(), 0604));
  r.Note("chmod dir", ::chmod(r.P("d").c_str(), 0700));
  const timespec t1[2] = {{1600000000, 111}, {1700000000, 222333444}};
  r.Note("utimens", ::utimensat(AT_FDCWD, r.P("f-link").c_str(), t1, 0));
  r.Stat("f-link", true);
  const timespec t2[2] = {{0, UTIME_NOW}, {0, UTIME_OMIT}};
  r.Note("utimens omit", ::utimensat(AT_FDCWD, r.P("f-link").c_str(), t2, 0));
  r.Stat("f-link", true);
  r.Note("utimens dir", ::utimensat(AT_FDCWD, r.P("d").c_str(), t1, 0));
  r.Stat("d", true);
  // Extended attributes (user.*).
  const std::string xf = r.P("h");
  r.Note("setxattr", ::setxattr(xf.c_str(), "user.color", "blue", 4, 0));
  r.Note("setxattr create existing", ::setxattr(xf.c_str(), "user.color", "red", 3, XATTR_CREATE));
  r.Note("setxattr replace missing", ::setxattr(xf.c_str(), "user.size", "1", 1, XATTR_REPLACE));
  r.Note("setxattr empty", ::setxattr(xf.c_str(), "user.empty", "", 0, 0));
  r.Note("setxattr binary", ::setxattr(xf.c_str(), "user.bin", "a\0b\xff", 4, 0));
  r.Note("setxattr replace", ::setxattr(xf.c_str(), "user.color", "green", 5, XATTR_REPLACE));
  char value[64] = {};
  r.Note("getxattr size", ::getxattr(xf.c_str(), "user.color", nullptr, 0));
  r.Note("getxattr", ::getxattr(xf.c_str(), "user.color", value, sizeof value));
  r.Note(std::string("value ") + value, 0);
  r.Note("getxattr small buffer", ::getxattr(xf.c_str(), "user.color", value, 2));
  r.Note("getxattr missing", ::getxattr(xf.c_str(), "user.nothing", value, sizeof value));
  r.Note("getxattr binary", ::getxattr(xf.c_str(), "user.bin", value, sizeof value));
  r.Note("binary ok", std::memcmp(value, "a\0b\xff", 4) == 0 ? 1 : 0);
  r.Note("removexattr", ::removexattr(xf.c_str(), "user.empty"));
  r.Note("removexattr missing", ::removexattr(xf.c_str(), "user.empty"));
  r.Xattrs("h");
  r.Note("setxattr on dir", ::setxattr(r.P("d").c_str(), "user.dir", "yes", 3, 0));
  r.Xattrs("d");
  // Unlink of an open file: its bytes stay readable and writable through the descriptor.
  write_at("open-gone", 0, "still here");
  fd = ::open(r.P("open-gone").c_str(), O_RDWR);
  r.Note("open open-gone", fd < 0 ? -1 : 0);
  r.Note("unlink open-gone", ::unlink(r.P("open-gone").c_str()));
  if (fd >= 0) {
    struct stat st {};
    r.Note("fstat", ::fstat(fd, &st));
    r.Note("nlink after unlink", static_cast<long>(st.st_nlink));
    r.Note("pwrite", ::pwrite(fd, "STILL", 5, 0));
    char buf[32] = {};
    r.Note("pread", ::pread(fd, buf, sizeof buf, 0));
    r.Note(std::string("read back ") + buf, 0);
    r.Note("close", ::close(fd));
  }
  r.Stat("open-gone");
  // fallocate grows a file.
  fd = ::open(r.P("h").c_str(), O_RDWR);
  if (fd >= 0) {
    r.Note("fallocate", ::fallocate(fd, 0, 0, 5000));
    r.Note("close", ::close(fd));
  }
  r.Stat("h");
  // Many changes to one folder, then its listing.
  r.Note("mkdir busy", ::mkdir(r.P("busy").c_str(), 0755));
  for (int i = 0; i < 300; ++i) write_at("busy/x" + std::to_string(i), 0, std::to_string(i));
  for (int i = 0; i < 300; i += 3) ::unlink(r.P("busy/x" + std::to_string(i)).c_str());
  for (int i = 1; i < 300; i += 3) {
    ::rename(r.P("busy/x" + std::to_string(i)).c_str(), r.P("busy/y" + std::to_string(i)).c_str());
  }
  r.List("busy");
  r.List("");
  r.Stat("d");
  r.Stat("e2");
}

TEST_F(MountTest, RenameWhiteoutIsRefusedWithEinval) {
  WriteFile(M("a"), "a");
  EXPECT_EQ(::renameat2(AT_FDCWD, M("a").c_str(), AT_FDCWD, M("b").c_str(), RENAME_WHITEOUT), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ReadFile(M("a")), "a");
}

TEST_F(MountTest, PosixParityWithAPlainFolder) {
  Recorder plain(plain_), mounted(mnt_);
  ParitySequence(plain);
  ParitySequence(mounted);
  ExpectSameRecord(mounted.str(), plain.str());
  // And the same after the uploads, from a new mount.
  SyncAll();
  StopMount();
  StartMount();
  Recorder again_plain(plain_), again(mnt_);
  for (auto* r : {&again_plain, &again}) {
    r->List("");
    r->List("busy");
    for (const char* f : {"f", "h", "f-link", "s", "dangling"}) {
      r->Stat(f);
      r->Contents(f);
    }
    r->Stat("f-link", true);
    r->Stat("d", true);
    r->Xattrs("h");
    r->Xattrs("d");
  }
  ExpectSameRecord(again.str(), again_plain.str());
}

}  // namespace
}  // namespace shardfs::fuse

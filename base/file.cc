#include "base/file.h"

#include <cerrno>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardfs {

namespace {

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports the error close() gives (a deferred write error on some systems).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write " + path, errno);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<Bytes> ReadFile(const std::string& path, size_t max_size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return PosixError("open " + path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return PosixError("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    return Status::OutOfRange(path + " is larger than " + std::to_string(max_size) + " bytes");
  }
  Bytes out;
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  // Read until EOF, not st_size: the file may change under us, and the cap still holds.
  for (;;) {
    if (done == out.size()) {
      if (out.size() >= max_size + 1) break;
      out.resize(std::min(max_size + 1, out.size() + 4096));
    }
    ssize_t n = ::read(fd.get(), out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read " + path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_size) {
    return Status::OutOfRange(path + " is larger than " + std::to_string(max_size) + " bytes");
  }
  out.resize(done);
  return out;
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  int raw_fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw_fd < 0) return PosixError("create temporary file for " + path, errno);
  Fd fd(raw_fd);
  auto fail = [&](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    return fail(PosixError("chmod " + tmp, errno));
  }
  Status s = WriteAll(fd.get(), data, tmp);
  if (!s.ok()) return fail(s);
  if (::fsync(fd.get()) != 0) return fail(PosixError("fsync " + tmp, errno));
  if (fd.Close() != 0) return fail(PosixError("close " + tmp, errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(PosixError("rename to " + path, errno));
  std::string dir = DirName(path);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return PosixError("open folder " + dir, errno);
  if (::fsync(dfd.get()) != 0) return PosixError("fsync folder " + dir, errno);
  return Status::Ok();
}

}  // namespace shardfs

#include "base/file.h"

#include <algorithm>
#include <cerrno>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace shardfs {

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int UniqueFd::Close() {
  int rc = ::close(fd_);
  fd_ = -1;
  return rc;
}

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

namespace {

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Opens `path` for reading, checks that it is a regular file, and sets *size to the size stat
// reports. O_NONBLOCK keeps open() of a FIFO from waiting for a writer; it changes nothing for
// regular files.
Result<int> OpenRegular(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return PosixError("open " + path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = PosixError("stat " + path, errno);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + " is not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

Status TooLarge(const std::string& path, size_t max_size) {
  return Status::OutOfRange(path + " is larger than " + std::to_string(max_size) + " bytes");
}

}  // namespace

Result<size_t> ReadUpTo(int fd, MutableByteSpan out, const std::string& path,
                        std::optional<uint64_t> offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = offset ? ::pread(fd, out.data() + done, out.size() - done,
                                 static_cast<off_t>(*offset + done))
                       : ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("read " + path, errno);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Result<Bytes> ReadFile(const std::string& path, size_t max_size) {
  if (max_size == SIZE_MAX) --max_size;  // room for the one byte that detects "too large"
  uint64_t size = 0;
  SFS_ASSIGN_OR_RETURN(int raw_fd, OpenRegular(path, &size));
  UniqueFd fd(raw_fd);
  if (size > max_size) return TooLarge(path, max_size);
  // One byte more than stat says, so a file of the size stat reports is read without growing
  // the buffer. Read to EOF, not to that size: the file may change (or be in procfs, size 0).
  Bytes out(static_cast<size_t>(size) + 1);
  size_t done = 0;
  for (;;) {
    SFS_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd.get(), MutableByteSpan(out).subspan(done), path));
    done += n;
    if (done < out.size()) break;  // EOF before the buffer filled
    if (out.size() > max_size) return TooLarge(path, max_size);
    out.resize(std::min(max_size + 1, out.size() + 4096));
  }
  out.resize(done);
  return out;
}

Result<size_t> ReadFileInto(const std::string& path, MutableByteSpan out) {
  uint64_t size = 0;  // not trusted: the read below decides
  SFS_ASSIGN_OR_RETURN(int raw_fd, OpenRegular(path, &size));
  UniqueFd fd(raw_fd);
  SFS_ASSIGN_OR_RETURN(size_t n, ReadUpTo(fd.get(), out, path));
  if (n == out.size()) {
    uint8_t extra;
    SFS_ASSIGN_OR_RETURN(size_t more, ReadUpTo(fd.get(), MutableByteSpan(&extra, 1), path));
    if (more != 0) return TooLarge(path, out.size());
  }
  return n;
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  int raw_fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw_fd < 0) return PosixError("create temporary file for " + path, errno);
  UniqueFd fd(raw_fd);
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
  return SyncDir(DirName(path));
}

Status SyncDir(const std::string& dir) {
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0) return PosixError("open folder " + dir, errno);
  if (::fsync(dfd.get()) != 0) return PosixError("fsync folder " + dir, errno);
  return Status::Ok();
}

Result<UniqueFd> LockFile(const std::string& path, std::string_view holder) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) return PosixError("open " + path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return PosixError("lock " + path, errno);
    // Who holds it, as it wrote itself down (bounded: the file is ours, but may be anything).
    char buf[256];
    ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
    std::string who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == '\0')) who.pop_back();
    for (char& c : who) {
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    return Status::Busy(path + " is locked" + (who.empty() ? "" : " by " + who));
  }
  std::string me = "pid " + std::to_string(::getpid()) + ": " + std::string(holder) + "\n";
  if (::ftruncate(fd.get(), 0) != 0) return PosixError("truncate " + path, errno);
  SFS_RETURN_IF_ERROR(WriteAll(fd.get(), AsBytes(me), path));
  return fd;
}

Result<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  std::unique_ptr<MappedFile> m(new MappedFile());
  m->fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!m->fd_.valid()) return PosixError("open " + path, errno);
  if (::fstat(m->fd_.get(), &m->st_) != 0) return PosixError("stat " + path, errno);
  if (!S_ISREG(m->st_.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  m->size_ = static_cast<size_t>(m->st_.st_size);
  if (m->size_ > 0) {
    void* p = ::mmap(nullptr, m->size_, PROT_READ, MAP_PRIVATE, m->fd_.get(), 0);
    if (p == MAP_FAILED) return PosixError("map " + path, errno);
    m->data_ = static_cast<const uint8_t*>(p);
    (void)::madvise(p, m->size_, MADV_SEQUENTIAL);
  }
  return m;
}

Result<std::vector<std::pair<uint64_t, uint64_t>>> MappedFile::DataRuns() const {
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  const auto size = static_cast<off_t>(size_);
  off_t at = 0;
  while (at < size) {
    off_t data = ::lseek(fd_.get(), at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole is left
      if (errno == EINVAL) {      // no SEEK_DATA here: all data
        return std::vector<std::pair<uint64_t, uint64_t>>{{0, size_}};
      }
      return PosixError("seek data", errno);
    }
    if (data >= size) break;
    off_t hole = ::lseek(fd_.get(), data, SEEK_HOLE);
    if (hole < 0) return PosixError("seek hole", errno);
    hole = std::min(hole, size);
    runs.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole - data));
    at = hole;
  }
  return runs;
}

void MappedFile::Forget(uint64_t offset, uint64_t length) const {
  if (offset >= size_) return;
  length = std::min<uint64_t>(length, size_ - offset);
  const auto page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (offset + page - 1) / page * page;
  const uint64_t end = (offset + length) / page * page;
  if (begin >= end) return;
  // Advice only: a failure leaves the pages mapped, which is harmless.
  ::madvise(const_cast<uint8_t*>(data_) + begin, end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace shardfs

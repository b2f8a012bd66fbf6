// Whole-file reads and atomic, durable whole-file writes.
//
// Thread safety: functions are safe to call from any thread; two writers of one path race
// (the last rename wins, and neither leaves a partial file).

#ifndef SHARDFS_BASE_FILE_H_
#define SHARDFS_BASE_FILE_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/stat.h>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs {

// Owns a file descriptor and closes it on scope exit.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset();
  // Closes now and returns close()'s result (a deferred write error on some systems).
  int Close();

 private:
  int fd_ = -1;
};

// Writes all of `data` to `fd` at its current offset, retrying short writes and EINTR.
// `path` names the file in the error.
Status WriteAll(int fd, ByteSpan data, const std::string& path);

// fsyncs the folder `dir`, so that names created or renamed in it survive a crash.
Status SyncDir(const std::string& dir);

// Reads from `fd` into `out` until it is full or the file ends: at `offset` (pread) if given,
// else from the file's position. Returns how many bytes came; IOError naming `path` from the
// system.
Result<size_t> ReadUpTo(int fd, MutableByteSpan out, const std::string& path,
                        std::optional<uint64_t> offset = std::nullopt);

// Reads the whole file at `path`. OutOfRange if it is larger than `max_size` bytes (so a huge
// or endless file given where a small one belongs is refused, not read into memory).
// NotFound, PermissionDenied, IOError as the file system says.
Result<Bytes> ReadFile(const std::string& path, size_t max_size);

// Reads the whole file at `path` into `out` without allocating (for secrets: no copy is left
// behind in freed memory). Returns the file's size; OutOfRange if it does not fit in `out`.
// Other errors as ReadFile.
Result<size_t> ReadFileInto(const std::string& path, MutableByteSpan out);

// Replaces `path` with `data`, with exactly the permission bits `mode` (the umask is not
// applied, so a 0600 key file is 0600 whatever the caller's umask): written to a temporary file
// in the same folder, fsync'd, renamed over `path`, and the folder fsync'd. After an OK
// return the new contents survive a crash; after a failure or a crash, `path` holds either
// its old or its new contents, never a mix, and no temporary file is left behind on failure.
Status WriteFileAtomic(const std::string& path, ByteSpan data, unsigned mode);

// A local regular file mapped read-only (an empty file maps nothing), with the stat it had
// when opened. Reading bytes of the mapping that the file no longer has (it was cut short by
// someone else) raises SIGBUS: map only files that are not cut while mapped.
class MappedFile {
 public:
  // NotFound, PermissionDenied, IOError; InvalidArgument if `path` is not a regular file.
  static Result<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ByteSpan bytes() const { return ByteSpan(data_, size_); }
  // Unmaps the whole pages within bytes [offset, offset + length) from the process's memory
  // (madvise MADV_DONTNEED): the file keeps them, and reading them again maps them again. For
  // bytes read once, so that they do not count in the process's resident memory.
  void Forget(uint64_t offset, uint64_t length) const;
  // The runs of the file that hold data, as (offset, length), in order: the rest are holes
  // (SEEK_DATA/SEEK_HOLE; a file system without them reports one run, the whole file).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> DataRuns() const;
  const struct stat& stat() const { return st_; }

 private:
  MappedFile() = default;
  UniqueFd fd_;
  struct stat st_ {};
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Takes the exclusive lock (flock) on the file at `path`, creating it (mode 0600), and writes
// "pid N: `holder`" into it, so that a process refused the lock can say who holds it. The lock
// lasts while the returned descriptor is open (it goes with the process, however it ends).
// Busy, with the holder's words, if another open file holds it; IOError/PermissionDenied from
// the file system.
Result<UniqueFd> LockFile(const std::string& path, std::string_view holder);

}  // namespace shardfs

#endif  // SHARDFS_BASE_FILE_H_

// Status and Result<T>: how every shardfs function reports failure.
//
// A Status is a code plus a human-readable message. Codes map one-to-one onto the errno a
// file system call returns (ToErrno), so the FUSE adapter and the HTTP API translate in one
// place each. Foreign errors (errno, sqlite, libsodium, HTTP) are converted to Status once, at
// the boundary where they appear. No exception crosses a library boundary.
//
// Thread safety: Status and Result are values; distinct objects may be used from distinct
// threads, a shared one only for reading.

#ifndef SHARDFS_BASE_STATUS_H_
#define SHARDFS_BASE_STATUS_H_

#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace shardfs {

// The error codes. Names (not numbers) appear in logs and in the companion API, so a code is
// never renamed; new codes go at the end.
enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,   // EINVAL: a malformed request, option or input.
  kNotFound,          // ENOENT
  kAlreadyExists,     // EEXIST
  kPermissionDenied,  // EACCES
  kNoSpace,           // ENOSPC: a disk, a quota or a node is full.
  kNotSupported,      // EOPNOTSUPP
  kCorruption,        // EIO: stored or received bytes fail a check.
  kUnavailable,       // EIO: a peer or resource cannot be reached now; retrying may help.
  kIOError,           // EIO: a local read or write failed.
  kDeadlineExceeded,  // EIO: an operation ran out of time.
  kBusy,              // EBUSY: held by someone else (a lock, a mount).
  kCancelled,         // ECANCELED
  kNotEmpty,          // ENOTEMPTY
  kNotDirectory,      // ENOTDIR
  kIsDirectory,       // EISDIR
  kNameTooLong,       // ENAMETOOLONG
  kOutOfRange,        // ERANGE: a value or buffer is too small or too large.
  kNoAttribute,       // ENODATA: the named extended attribute does not exist.
};
// The last code: a new code moves it.
inline constexpr Code kLastCode = Code::kNoAttribute;

// Returns the stable name of `code`, e.g. "NotFound".
std::string_view CodeName(Code code);
// The code named `name` (as CodeName gives it), or nullopt.
std::optional<Code> CodeFromName(std::string_view name);

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status NoSpace(std::string msg) { return {Code::kNoSpace, std::move(msg)}; }
  static Status NotSupported(std::string msg) { return {Code::kNotSupported, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status DeadlineExceeded(std::string msg) {
    return {Code::kDeadlineExceeded, std::move(msg)};
  }
  static Status Busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {Code::kCancelled, std::move(msg)}; }
  static Status OutOfRange(std::string msg) { return {Code::kOutOfRange, std::move(msg)}; }
  static Status NotEmpty(std::string msg) { return {Code::kNotEmpty, std::move(msg)}; }
  static Status NotDirectory(std::string msg) { return {Code::kNotDirectory, std::move(msg)}; }
  static Status IsDirectory(std::string msg) { return {Code::kIsDirectory, std::move(msg)}; }
  static Status NameTooLong(std::string msg) { return {Code::kNameTooLong, std::move(msg)}; }
  static Status NoAttribute(std::string msg) { return {Code::kNoAttribute, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "NotFound: no such shard" (or "OK").
  std::string ToString() const;

  // The errno a POSIX call would return for this status; 0 for OK. Never EPERM.
  int ToErrno() const;

  // Returns a copy whose message is "context: message"; OK stays OK.
  Status WithContext(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Converts an errno value (from a failed POSIX call) to a Status whose message is
// "context: strerror". The one place errno becomes a Status.
Status PosixError(std::string_view context, int err);

// Either a value of type T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  // REQUIRES: !status.ok(). A Result made from an OK status without a value is a bug.
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (status_.ok()) std::abort();
  }
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return status_.ok(); }
  const Status& status() const& { return status_; }
  Status status() && { return std::move(status_); }

  // REQUIRES: ok().
  T& value() & { return Checked(), *value_; }
  const T& value() const& { return Checked(), *value_; }
  T&& value() && { return Checked(), std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  void Checked() const {
    if (!value_) std::abort();  // Reading the value of a failed Result is a programming error.
  }

  Status status_;
  std::optional<T> value_;
};

}  // namespace shardfs

#define SFS_CONCAT_INNER_(a, b) a##b
#define SFS_CONCAT_(a, b) SFS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define SFS_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::shardfs::Status sfs_status_ = (expr);    \
    if (!sfs_status_.ok()) return sfs_status_; \
  } while (false)

// `lhs = value of expr` (a Result), or returns its Status from the enclosing function.
#define SFS_ASSIGN_OR_RETURN(lhs, expr) \
  SFS_ASSIGN_OR_RETURN_IMPL_(SFS_CONCAT_(sfs_result_, __LINE__), lhs, expr)
#define SFS_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return std::move(tmp).status();   \
  lhs = std::move(tmp).value()

#endif  // SHARDFS_BASE_STATUS_H_

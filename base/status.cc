#include "base/status.h"

#include <cerrno>
#include <system_error>

namespace shardfs {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kNoSpace:
      return "NoSpace";
    case Code::kNotSupported:
      return "NotSupported";
    case Code::kCorruption:
      return "Corruption";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kIOError:
      return "IOError";
    case Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Code::kBusy:
      return "Busy";
    case Code::kCancelled:
      return "Cancelled";
    case Code::kNotEmpty:
      return "NotEmpty";
    case Code::kNotDirectory:
      return "NotDirectory";
    case Code::kIsDirectory:
      return "IsDirectory";
    case Code::kNameTooLong:
      return "NameTooLong";
    case Code::kOutOfRange:
      return "OutOfRange";
    case Code::kNoAttribute:
      return "NoAttribute";
  }
  return "Unknown";
}

std::optional<Code> CodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(kLastCode); ++c) {
    if (CodeName(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  }
  return std::nullopt;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

int Status::ToErrno() const {
  switch (code_) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
      return EINVAL;
    case Code::kNotFound:
      return ENOENT;
    case Code::kAlreadyExists:
      return EEXIST;
    case Code::kPermissionDenied:
      return EACCES;
    case Code::kNoSpace:
      return ENOSPC;
    case Code::kNotSupported:
      return EOPNOTSUPP;
    case Code::kCorruption:
    case Code::kUnavailable:
    case Code::kIOError:
    case Code::kDeadlineExceeded:
      return EIO;
    case Code::kBusy:
      return EBUSY;
    case Code::kCancelled:
      return ECANCELED;
    case Code::kNotEmpty:
      return ENOTEMPTY;
    case Code::kNotDirectory:
      return ENOTDIR;
    case Code::kIsDirectory:
      return EISDIR;
    case Code::kNameTooLong:
      return ENAMETOOLONG;
    case Code::kOutOfRange:
      return ERANGE;
    case Code::kNoAttribute:
      return ENODATA;
  }
  return EIO;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string msg(context);
  if (!message_.empty()) {
    msg += ": ";
    msg += message_;
  }
  return Status(code_, std::move(msg));
}

Status PosixError(std::string_view context, int err) {
  std::string msg(context);
  msg += ": ";
  msg += std::error_code(err, std::generic_category()).message();  // thread-safe strerror
  switch (err) {
    case ENOENT:
      return Status(Code::kNotFound, std::move(msg));
    case EEXIST:
      return Status(Code::kAlreadyExists, std::move(msg));
    case EACCES:
    case EPERM:
    case EROFS:
      return Status(Code::kPermissionDenied, std::move(msg));
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kNoSpace, std::move(msg));
    case EINVAL:
      return Status(Code::kInvalidArgument, std::move(msg));
    case ENOTSUP:
      return Status(Code::kNotSupported, std::move(msg));
    case EBUSY:
      return Status(Code::kBusy, std::move(msg));
    case ENOTEMPTY:
      return Status(Code::kNotEmpty, std::move(msg));
    case ENOTDIR:
      return Status(Code::kNotDirectory, std::move(msg));
    case EISDIR:
      return Status(Code::kIsDirectory, std::move(msg));
    case ENAMETOOLONG:
      return Status(Code::kNameTooLong, std::move(msg));
    case ERANGE:
      return Status(Code::kOutOfRange, std::move(msg));
    case ENODATA:
      return Status(Code::kNoAttribute, std::move(msg));
    case ETIMEDOUT:
      return Status(Code::kDeadlineExceeded, std::move(msg));
    case ECANCELED:
      return Status(Code::kCancelled, std::move(msg));
    default:
      return Status(Code::kIOError, std::move(msg));
  }
}

}  // namespace shardfs

// ByteSource: a stream of bytes read front to back (a file, a socket body, a buffer), so that
// consumers like the chunker work in bounded memory on inputs of any size.
//
// Thread safety: a source is used by one thread at a time.

#ifndef SHARDFS_BASE_BYTE_SOURCE_H_
#define SHARDFS_BASE_BYTE_SOURCE_H_

#include <cstddef>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to out.size() bytes into out. Returns the count, 0 only at the end of the stream
  // (or when out is empty). Errors are the source's (IOError, Unavailable, ...).
  virtual Result<size_t> Read(MutableByteSpan out) = 0;
};

// Reads from a file descriptor it does not own.
class FdByteSource final : public ByteSource {
 public:
  explicit FdByteSource(int fd) : fd_(fd) {}
  Result<size_t> Read(MutableByteSpan out) override;

 private:
  int fd_;
};

// Reads from a span (which must outlive the source).
class SpanByteSource final : public ByteSource {
 public:
  explicit SpanByteSource(ByteSpan data) : data_(data) {}
  Result<size_t> Read(MutableByteSpan out) override;

 private:
  ByteSpan data_;
  size_t pos_ = 0;
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_BYTE_SOURCE_H_

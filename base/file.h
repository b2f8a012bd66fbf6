// Whole-file reads and atomic, durable whole-file writes.
//
// Thread safety: functions are safe to call from any thread; two writers of one path race
// (the last rename wins, and neither leaves a partial file).

#ifndef SHARDFS_BASE_FILE_H_
#define SHARDFS_BASE_FILE_H_

#include <cstddef>
#include <string>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs {

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

}  // namespace shardfs

#endif  // SHARDFS_BASE_FILE_H_

// Requests to the companion API of the process that owns a drive, on its unix socket: how the
// CLI's commands reach a drive that a mount or `shardfs serve` holds. The socket's folder
// admits only its owner, so no token is sent.
//
// Thread safety: functions; each request uses its own connection.

#ifndef SHARDFS_NET_LOCAL_CLIENT_H_
#define SHARDFS_NET_LOCAL_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::net {

using LocalHeaders = std::vector<std::pair<std::string, std::string>>;

struct LocalReply {
  int status = 0;
  std::string body;
  LocalHeaders headers;
};

// Sends `method` `target` with `body` (JSON if not empty) on the unix socket at
// `socket_path` and returns the answer, whatever its status. Unavailable if nothing listens
// there (no socket, or a socket left by a process that ended); DeadlineExceeded if no answer
// came within `timeout`; IOError for a connection that broke.
Result<LocalReply> LocalRequest(const std::string& socket_path, const std::string& method,
                                const std::string& target, const std::string& body,
                                std::chrono::milliseconds timeout);

// GET `target`: a 2xx answer's body goes to `sink` piece by piece (its first error ends the
// transfer and is returned); any other answer's body (at most 64 KiB) is in the reply.
// `timeout` bounds each wait for bytes. Errors as LocalRequest.
Result<LocalReply> LocalDownload(const std::string& socket_path, const std::string& target,
                                 const std::function<Status(ByteSpan)>& sink,
                                 std::chrono::milliseconds timeout);

// PUT `target` with a body of `size` bytes that `read(offset, out)` fills piece by
// piece (returning the bytes it put in `out`, never 0 before `size`; its first error ends the
// transfer and is returned). Errors as LocalRequest.
Result<LocalReply> LocalUpload(const std::string& socket_path, const std::string& target,
                               const LocalHeaders& headers, uint64_t size,
                               const std::function<Result<size_t>(uint64_t, MutableByteSpan)>& read,
                               std::chrono::milliseconds timeout);

// True if a process answers on the socket at `socket_path`.
bool LocalServerRuns(const std::string& socket_path);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_LOCAL_CLIENT_H_

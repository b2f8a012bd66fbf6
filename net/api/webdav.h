// WebDAV class 1 and 2 (RFC 4918) under /dav, so that existing apps, file managers, rclone
// and davfs2 use the drive as they are (docs/api.md, "WebDAV"): OPTIONS, PROPFIND (depth 0
// and 1), PROPPATCH (dead properties kept as extended attributes "user.dav.*" of the file,
// so they are checkpointed, copied and moved with it), MKCOL, GET/HEAD with Range, PUT (as
// REST's: streamed into a file with no name until its last byte), DELETE, COPY, MOVE with
// Overwrite, LOCK (exclusive and shared write locks, depth 0 and infinity, refresh, a lock on
// an unmapped name makes an empty file) and UNLOCK, with If headers (state tokens, entity
// tags, Not, tagged lists).
//
// Paths are the device's scope, as in REST; a Destination naming another host is 502, one
// outside /dav or the scope 403/400. Locks live in this process (a restart drops them).
//
// Thread safety: Begin may be called from many threads at once.

#ifndef SHARDFS_NET_API_WEBDAV_H_
#define SHARDFS_NET_API_WEBDAV_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "net/api/context.h"
#include "net/api/devices.h"
#include "net/http_types.h"

namespace shardfs::api {

struct WebDavOptions {
  // A lock's timeout when the client asks for none or for more (seconds).
  int64_t default_lock_seconds = 3600;
  int64_t max_lock_seconds = 7 * 24 * 3600;
  // The largest XML body taken (PROPFIND, PROPPATCH, LOCK).
  uint64_t max_xml_body = 1 << 20;
  // Locks held at once; more are refused (503).
  size_t max_locks = 10000;
};

class WebDav {
 public:
  // REQUIRES: ctx outlives this. `clock`: ns since the epoch (the real clock if empty).
  WebDav(ApiContext* ctx, WebDavOptions options, std::function<int64_t()> clock = nullptr);
  ~WebDav();

  // A request for /dav and below: `path` is what follows "/dav" (still percent-encoded).
  net::Dispatch Begin(const net::HttpRequestHead& head, std::string_view path,
                      const Principal& who);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_WEBDAV_H_

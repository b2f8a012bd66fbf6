// A streamed upload of a whole file (REST PUT, WebDAV PUT): the body goes piece by piece into
// a file with no name (Drive::CreateUnlinked), which takes the target's name only once the
// last byte has arrived and the request's conditions, checked again under the API's naming
// lock, still hold (Drive::LinkUnlinked). An upload cut short leaves nothing behind; two racing
// uploads never mix.
//
// Thread safety: a sink is used by one thread at a time (the server's).

#ifndef SHARDFS_NET_API_UPLOAD_H_
#define SHARDFS_NET_API_UPLOAD_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backend/drive.h"
#include "net/api/context.h"
#include "net/api/scope.h"
#include "net/http_types.h"

namespace shardfs::api {

// If-Match / If-None-Match of a write, as sent ("" if absent).
struct WriteConditions {
  std::string if_match;
  std::string if_none_match;
};
// OK if the target as it is now (`current`, if it exists) meets the conditions; else
// AlreadyExists, which the caller answers with 412.
Status CheckConditions(const WriteConditions& c, const std::optional<backend::InodeAttr>& current);

struct PutRequest {
  Located target;  // its folder exists; it is not a folder
  WriteConditions conditions;
  std::optional<int64_t> mtime_ns;  // set on the file once named
  uint32_t mode = 0644;             // the file's permission bits
  bool durable = false;             // answer only once stored on the nodes
  std::optional<uint64_t> length;   // for status
};

// The answer once the file has its name: its attributes, and whether it replaced a file.
using PutDone = std::function<net::HttpResponse(const backend::InodeAttr&, bool replaced)>;
// The answer to an error (HTTP status 0: the one the error calls for).
using PutError = std::function<net::HttpResponse(const Status&, unsigned http_status)>;

// The sink of an upload to `req.target`. Errors of the drive (the nameless file).
Result<std::unique_ptr<net::BodySink>> StartPut(ApiContext* ctx, PutRequest req, PutDone done,
                                                PutError error);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_UPLOAD_H_

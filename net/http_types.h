// Requests and responses as the handlers see them: plain values, no sockets, so a handler is
// a function from a request to a response and is tested without a network (STYLE.md). The
// server (net/http_server) turns bytes on the wire into these and back.
//
// A request arrives in two steps: its head, which a handler answers at once or accepts by
// returning a sink, and then its body, streamed into the sink, which gives the response.
// A response body is a string, a stream of bytes the server pulls piece by piece, or a region
// of an open file that the server sends straight from the file (sendfile), without reading it.
//
// Thread safety: values; a sink or source is used by one thread at a time.

#ifndef SHARDFS_NET_HTTP_TYPES_H_
#define SHARDFS_NET_HTTP_TYPES_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::net {

struct HttpRequestHead {
  std::string method;  // "GET", "PUT", ...
  std::string target;  // as sent: path, then ?query if any
  std::vector<std::pair<std::string, std::string>> headers;
  // The body's length from Content-Length; nullopt if the request has no Content-Length
  // (a request with chunked transfer encoding also has none here, see `chunked`).
  std::optional<uint64_t> content_length;
  bool chunked = false;
  std::string peer_address;  // for logs ("unix" on a unix socket)
  // Arrived on the server's unix socket (HttpServerOptions::unix_path), whose folder's
  // permissions say who may connect.
  bool local = false;

  // The value of header `name` (case-insensitive), or "" if absent.
  std::string_view Header(std::string_view name) const;
  bool has_body() const { return chunked || content_length.value_or(0) > 0; }
};

// Produces a streamed response body.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Fills `out` with the next bytes; returns how many (0 only at the end). An error aborts the
  // response: the connection is closed, so the client sees a short body, never wrong bytes.
  virtual Result<size_t> Read(MutableByteSpan out) = 0;
};

// Bytes [offset, offset + length) of an open file, to be sent as a response body as they are.
// If the file turns out shorter, the response is cut off: the connection is closed, so the
// client sees a short body, never wrong framing.
struct FileRegion {
  int fd = -1;  // a readable regular file; not closed by the server
  uint64_t offset = 0;
  uint64_t length = 0;
  // Keeps `fd` open: released once the response is done or abandoned.
  std::shared_ptr<const void> owner;
};

struct HttpResponse {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Length
  std::string body;
  // If set, the body is streamed from here instead, `stream_length` bytes.
  std::unique_ptr<BodySource> stream;
  uint64_t stream_length = 0;
  // If set, the body is this file region instead (neither `body` nor `stream` is used).
  std::optional<FileRegion> file;
  // Send the headers only (HEAD), with Content-Length as for the body.
  bool head_only = false;
  // Close the connection after this response (e.g. a request body was left unread).
  bool close = false;

  uint64_t content_length() const {
    return file ? file->length : stream ? stream_length : body.size();
  }
};

// Receives a request body.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next bytes of the body. An error ends the request: the sink's Finish is not called,
  // the response is Fail's, and the connection is closed.
  virtual Status Write(ByteSpan data) = 0;
  // The whole body has arrived; returns the response.
  virtual HttpResponse Finish() = 0;
  // The response for a Write error.
  virtual HttpResponse Fail(const Status& status) = 0;
};

// Sends the response to a request a handler answers later (Dispatch::Later), from any
// thread. Only its first call counts. It keeps the connection's state alive until it is
// called or destroyed: a handler must call or drop every responder it holds before the
// server is destroyed.
using Responder = std::function<void(HttpResponse)>;

// What a handler says about a request head.
struct Dispatch {
  std::optional<HttpResponse> response;  // answer now (the body, if any, is not read)
  std::unique_ptr<BodySink> sink;        // or stream the body here
  uint64_t body_limit = 0;               // the most body bytes the sink accepts
  // Or answer later: called at once with the request's responder (the body, if any, is not
  // read). For a long poll, which must not hold a server thread while it waits.
  std::function<void(Responder)> later;

  static Dispatch Respond(HttpResponse r) {
    Dispatch d;
    d.response = std::move(r);
    return d;
  }
  static Dispatch Later(std::function<void(Responder)> start) {
    Dispatch d;
    d.later = std::move(start);
    return d;
  }
  static Dispatch Stream(std::unique_ptr<BodySink> sink, uint64_t limit) {
    Dispatch d;
    d.sink = std::move(sink);
    d.body_limit = limit;
    return d;
  }
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Called once per request, when its head has arrived. Must not block for long.
  virtual Dispatch Begin(const HttpRequestHead& head) = 0;
  // The response sent, instead of reading a request, when the server is over its connection
  // limit.
  virtual HttpResponse Overloaded() = 0;
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_HTTP_TYPES_H_

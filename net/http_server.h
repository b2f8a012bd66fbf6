// An HTTP/1.1 server on Boost.Beast for any HttpHandler (the storage node's protocol, the
// companion API), on TCP, TCP with TLS, or a unix socket: asynchronous, a few threads, a strand per
// connection, a deadline on every read and write, a cap on open connections, request bodies
// streamed to the handler's sink within the limit it sets (a body of declared length read straight
// from the socket, up to io_buffer_bytes per read), and response bodies that are file regions sent
// with sendfile(2) (in steps of at most 2 MiB, each through the connection's strand, so one large
// response does not hold up the others on its thread).
//
// Threads: each thread runs its own io_context, and connections are dealt to them in turn, so
// a connection lives on one thread. One io_context shared by all threads cost the node a fifth
// of its CPU on PUT (bench/node: threads handing completions to each other through a mutex
// and condition variable, some 8 futex calls per socket read; about 0.2 per read this way).
// The price: a handler that blocks (an fsync) holds up the other connections of its thread,
// not of the whole server.
//
// Deadlines: a keep-alive connection may sit idle for idle_timeout between requests; once a
// request's first byte has arrived, its whole head must arrive within header_timeout (so a
// client that trickles a header, slowloris-style, is cut off); each read of a body piece and
// each write of a response piece (io_buffer_bytes) must complete within io_timeout, so a
// client that stops reading is cut off.
//
// A response is cut short (the connection closed) if its stream fails or its file turns out
// shorter than declared: the client sees a short body, never wrong framing. The threads block
// SIGPIPE, so a client that goes away mid-sendfile is an EPIPE, not a signal.
//
// Thread safety: Start, Stop and the accessors may be called from any thread.

#ifndef SHARDFS_NET_HTTP_SERVER_H_
#define SHARDFS_NET_HTTP_SERVER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/status.h"
#include "net/http_types.h"

namespace shardfs::net {

// A certificate chain and its private key, PEM.
struct TlsCredentials {
  std::string cert_pem;
  std::string key_pem;
};

struct HttpServerOptions {
  // Address and port to listen on; port 0 picks a free one (see HttpServer::port()).
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  // If set, listen on this unix socket instead of address and port: the socket file is made
  // anew (one left by an earlier process is replaced; anything else there is an error), mode
  // 0600, and removed at Stop. Requests from it have HttpRequestHead::local set.
  std::string unix_path;
  // If set, serve HTTPS (TLS 1.2 and 1.3) with these credentials (TCP only). File bodies are
  // then read and written through TLS instead of sent with sendfile.
  std::optional<TlsCredentials> tls;
  // Threads, each with its io_context. Handlers may block on disk, so a few more than cores.
  int threads = 8;
  // Connections open at once; one more is answered 503 and closed. An idle connection holds
  // about 2 KiB; one with a request in progress up to io_buffer_bytes + 64 KiB.
  size_t max_connections = 256;
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds io_timeout{30000};
  // The largest request head (request line and headers).
  uint32_t max_header_bytes = 16 * 1024;
  // Bytes moved per body read or streamed response write; a file body must progress by this
  // much within each io_timeout.
  size_t io_buffer_bytes = 128 * 1024;
};

class HttpServer {
 public:
  // REQUIRES: `handler` outlives the server.
  HttpServer(HttpServerOptions options, HttpHandler* handler);
  // Stops (with no drain time) if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. InvalidArgument for a bad address or TLS
  // credentials; AlreadyExists for a unix_path that is not a socket; IOError (e.g. address in
  // use) from the socket calls.
  Status Start();
  // The port listened on (after Start).
  uint16_t port() const;
  // Stops accepting, closes idle connections, lets requests in progress (responses being
  // sent, file bodies included) finish for up to `drain`, then closes the rest (a body being
  // received is abandoned, and its sink destroyed) and joins the threads.
  void Stop(std::chrono::milliseconds drain);
  // Connections open now.
  size_t connections() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_HTTP_SERVER_H_

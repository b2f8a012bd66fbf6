// A bare HTTP/1.1 GET on a socket of our own, for the one request of the read path whose body
// is large and goes to a buffer the caller already has: a shard range (HttpPeer::ReadShard).
// cpp-httplib 0.11 reads a body 4 KiB at a time, with a poll(2) before every recv(2), and
// copies it once more through a callback; here the body is received straight into the
// caller's buffer in large reads, and poll is called only when a read would block. Everything
// else HttpPeer sends still goes through httplib. Internal to net/: Beast (which parses the
// answer's head) has its one home there (STYLE.md).
//
// Thread safety: the functions share nothing; one socket is used by one thread at a time
// (another may shut it down to end the exchange).

#ifndef SHARDFS_NET_HTTP_WIRE_H_
#define SHARDFS_NET_HTTP_WIRE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/bytes.h"

namespace shardfs::net::wire {

enum class Outcome {
  kOk,
  kRefused,         // the connection was refused (nothing listens), or the host has no address
  kConnectTimeout,  // the connection was not made within the time given
  kStalled,         // no byte moved for io_timeout
  kBroken,          // the connection failed or closed (or was shut down) before the end
  kTooBig,          // the body is larger than the room for it
  kMalformed,       // the answer is not HTTP/1.x, or has no Content-Length
};

// Opens a TCP connection to host:port (a name or an address) within `timeout`. `adopt` is
// called with the socket as soon as it exists, before it connects, so that another thread may
// shut it down (which ends the connect). On kOk, *fd is the connected socket (non-blocking,
// close-on-exec, TCP_NODELAY), the caller's to close; else *fd is -1 and nothing is left open.
Outcome Connect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
                const std::function<void(int)>& adopt, int* fd);

// True if the connected socket `fd`, idle between requests, may carry another: the other end
// has not closed it (a node closes connections idle for a minute) and sent nothing unasked.
bool Reusable(int fd);

// What an answer said.
struct Answer {
  int status = 0;
  uint64_t content_length = 0;
  std::string content_range;  // the Content-Range header, if any
  bool keep_alive = false;    // the connection may carry another request
  bool into = false;          // the body went to the caller's buffer (a 2xx answer)...
  uint64_t received = 0;      // ...this many bytes of it
  Bytes body;                 // the body of any other answer
};

// Sends `request` (a whole request head without a body, ending in an empty line) on the
// connected socket `fd` and reads the answer: the body of a 2xx answer into `into` (kTooBig
// if it is longer), of any other into answer->body (kTooBig past `max_body`). `on_head` is
// called when the head of the answer has come, `on_progress` whenever bytes move. A read or
// write waits at most io_timeout for its socket (kStalled). On kOk the whole answer was read,
// and the connection may be used again if answer->keep_alive.
Outcome Exchange(int fd, std::string_view request, MutableByteSpan into, uint64_t max_body,
                 std::chrono::milliseconds io_timeout, const std::function<void()>& on_head,
                 const std::function<void()>& on_progress, Answer* answer);

}  // namespace shardfs::net::wire

#endif  // SHARDFS_NET_HTTP_WIRE_H_

// bench/lean_client: the load client of bench/node's target rows. One blocking keep-alive
// HTTP/1.1 connection to one storage node that PUTs a shard straight from the caller's memory
// and GETs one into a buffer of its own, comparing it piece by piece with the bytes the
// caller expects (memcmp, no hashing): the way a load generator such as wrk drives a server,
// so that on a machine whose cores the client and the node share, the node gets them. Its
// cost on GET is mostly the kernel's copy out of the socket (perf: about 80%, memcmp most of
// the rest). Requests are signed exactly as net::HttpPeer signs them (net::SignRequest).
// Plain POSIX sockets: Beast's and httplib's one home is net/ (STYLE.md), and the client only
// has to read the node's own answers, which always carry Content-Length.
//
// Every connect, send and receive has a deadline, and so has every whole request, so a node
// that stalls fails a request; it never hangs the benchmark.
//
// Thread safety: a client is used by one thread at a time (one client per bench thread).

#ifndef SHARDFS_BENCH_LEAN_CLIENT_H_
#define SHARDFS_BENCH_LEAN_CLIENT_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/file.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/sign.h"
#include "net/address.h"

namespace shardfs::bench {

struct LeanClientOptions {
  // How long opening a connection may take.
  std::chrono::milliseconds connect_timeout{3000};
  // A send or receive that makes no progress for this long fails the request.
  std::chrono::milliseconds io_timeout{30000};
  // The longest one request may take in all, however slowly it progresses (checked between
  // sends and receives, so it may be overrun by up to io_timeout).
  std::chrono::milliseconds request_timeout{120000};
  // Bytes asked for by each receive of a GET body: the size of the client's GET buffer,
  // allocated and touched when the client is made, so no page fault of it lands in a timed run.
  size_t read_bytes = size_t{1} << 20;
};

class LeanClient {
 public:
  // A client of the node at `address` whose id is `node_id`, signing for `owner`. Does not
  // connect yet: the first request does.
  // REQUIRES: `owner` outlives the client.
  LeanClient(net::HostPort address, NodeId node_id, const crypto::SigningKey* owner,
             LeanClientOptions options);
  LeanClient(const LeanClient&) = delete;
  LeanClient& operator=(const LeanClient&) = delete;

  // PUT /v1/shards/<id> with `data` as the body, sent from `data` itself. OK if the node
  // answers 201 (stored) or 200 (already stored), as HttpPeer::PutShard accepts. Otherwise:
  // Unavailable for any other HTTP status (the message has the node's answer), DeadlineExceeded
  // for a timeout, Corruption for an answer that is not HTTP as the node speaks it, and the
  // errno's Status for a socket error (PosixError).
  Status Put(const ShardId& id, ByteSpan data);

  // GET /v1/shards/<id>, received read_bytes at a time into the client's buffer and compared
  // with `expect` as it comes. OK if the node answers 200 with a Content-Length of
  // expect.size() and exactly the bytes of `expect`; Corruption if the length or the bytes
  // differ or the body ends early (the message says where), and the errors of Put.
  Status GetAndCompare(const ShardId& id, ByteSpan expect);

  // Connections opened so far (one unless the node closed one, e.g. idle between rounds).
  uint64_t connects() const { return connects_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct ResponseHead {
    int status = 0;
    uint64_t content_length = 0;
    bool close = false;  // the node closes the connection after this response
  };

  // Opens a connection unless an idle one is still usable.
  Status Ready();
  Status Connect();
  // The request line, Host, the signature headers and, for a body, its type and length.
  std::string RequestHead(std::string_view method, const std::string& target,
                          const ShardId& body_root, std::optional<uint64_t> body_length) const;
  // Sends `head` then `body` (may be empty) with as few large writes as the socket takes.
  Status Send(std::string_view head, ByteSpan body, Clock::time_point deadline);
  // Reads a response head into in_; the body bytes that came with it stay in
  // in_[body_begin_, in_len_).
  Result<ResponseHead> ReadHead(Clock::time_point deadline);
  // A small body (an answer to a PUT, an error) as text: first what ReadHead kept, then
  // straight from the socket.
  Result<std::string> ReadSmallBody(const ResponseHead& h, Clock::time_point deadline);
  // Receives a body of expect.size() bytes and compares it with `expect`: first what ReadHead
  // kept, then read_bytes at a time into body_, each piece compared while it is in the cache.
  Status CompareBody(ByteSpan expect, Clock::time_point deadline);
  // One receive into `out`, waiting for all of it (MSG_WAITALL) when `all`; 0 at the end of
  // the stream.
  Result<size_t> Receive(MutableByteSpan out, bool all, Clock::time_point deadline);
  // Ends an exchange: the connection is kept only after a complete one the node keeps open.
  void Finish(const ResponseHead& h);

  static constexpr size_t kMaxHead = 16 * 1024;

  const net::HostPort address_;
  const std::string name_;  // host:port, for messages and the Host header
  const NodeId node_id_;
  const crypto::SigningKey* const owner_;
  const LeanClientOptions options_;
  UniqueFd fd_;
  uint64_t connects_ = 0;
  std::array<uint8_t, kMaxHead> in_{};
  size_t in_len_ = 0;
  size_t body_begin_ = 0;
  Bytes body_;  // the GET buffer, options_.read_bytes
};

}  // namespace shardfs::bench

#endif  // SHARDFS_BENCH_LEAN_CLIENT_H_

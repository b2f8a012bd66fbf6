// backend::Peer over HTTP: the client side of the peer protocol (docs/protocol.md), on
// cpp-httplib. One pool of keep-alive connections per node, TCP_NODELAY on every one (without
// it, Nagle's algorithm and delayed ACKs stall each request by about 40 ms), deadlines (to
// connect, for the node to begin its answer, and for each read or write of a body), a bound
// on requests in flight, retries with backoff for idempotent calls that failed quickly, and
// cancellation that never blocks. Every request is signed with the owner's key, afresh for
// each attempt.
// Shard bytes are checked before they are returned: a whole shard against its id, a range
// through a Merkle proof of the leaves around it.
//
// Thread safety: all methods may be called from many threads at once.

#ifndef SHARDFS_NET_HTTP_PEER_H_
#define SHARDFS_NET_HTTP_PEER_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/peer.h"
#include "base/thread_annotations.h"
#include "crypto/sign.h"
#include "net/address.h"

namespace httplib {
class Client;
}  // namespace httplib

namespace shardfs::net {

struct HttpPeerOptions {
  // Connecting to the node (DeadlineExceeded after it; a refused connection fails at once).
  std::chrono::milliseconds connect_timeout{3000};
  // A request fails with DeadlineExceeded when the head of the node's answer has not come
  // this long after the request started (connecting included), or for a PUT after its body
  // went out (the node makes the shard durable in that time). A node that is stopped or hung
  // still accepts connections in its kernel but never answers: this, not io_timeout, bounds
  // what a request to it costs. Bodies are bounded by io_timeout only, so a slow node still
  // delivers or takes a large shard.
  std::chrono::milliseconds answer_timeout{5000};
  // A read or write of a body (the answer's, or a PUT's) that makes no progress for this long
  // fails the request with DeadlineExceeded.
  std::chrono::milliseconds io_timeout{30000};
  // Requests in flight to this node at once (and connections kept open to it).
  int max_in_flight = 8;
  // Further attempts of an idempotent request after a transport error (a kept-alive connection
  // the node had closed, a reset) or a 503. Never after a deadline passed: the node did not
  // answer in time, and the caller (which may read elsewhere or try another node) decides.
  int retries = 2;
  // The first pause before a retry; doubled for each further one, plus jitter.
  std::chrono::milliseconds backoff{100};
  // The largest shard accepted from the node (guards our memory against a lying node).
  uint64_t max_shard_size = uint64_t{256} << 20;
};

class HttpPeer : public backend::Peer {
 public:
  // A peer for the node at `address`, acting for `owner`. If `node_id` is not given, it is
  // learnt from the node's /v1/status (Unavailable if the node cannot be reached).
  static Result<std::unique_ptr<HttpPeer>> Connect(const HostPort& address,
                                                   std::shared_ptr<const crypto::SigningKey> owner,
                                                   HttpPeerOptions options,
                                                   std::optional<NodeId> node_id = std::nullopt);
  ~HttpPeer() override;

  const NodeId& node_id() const { return node_id_; }

  std::string name() const override { return address_.ToString(); }
  Status PutShard(const ShardId& id, ByteSpan data, const CancelToken* cancel) override;
  Result<Bytes> GetShard(const ShardId& id, const CancelToken* cancel) override;
  Status ReadShard(const ShardId& id, uint64_t offset, MutableByteSpan out,
                   const CancelToken* cancel) override;
  Result<uint64_t> StatShard(const ShardId& id) override;
  Result<backend::ShardProof> ProveShard(const ShardId& id, uint64_t first_leaf,
                                         uint64_t count) override;
  Status DeleteShard(const ShardId& id) override;
  Result<std::optional<Bytes>> GetSlot() override;
  Status PutSlot(ByteSpan record) override;
  Result<backend::PeerStatus> GetStatus() override;

  struct Call;
  struct Reply;

 private:
  HttpPeer(HostPort address, std::shared_ptr<const crypto::SigningKey> owner,
           HttpPeerOptions options);

  struct Connection;
  struct Watch;

  // Runs `call` with retries when it is idempotent; the one place where HTTP statuses and
  // transport errors become Status.
  Result<Reply> Run(const Call& call);
  // One try. DeadlineExceeded if a deadline passed (HttpPeerOptions). *refused is set when the
  // connection was refused: the node is not listening, and trying again at once does not help.
  Result<Reply> Attempt(const Call& call, bool* refused);
  Result<backend::ShardProof> FetchProof(const ShardId& id, uint64_t first_leaf, uint64_t count,
                                         const CancelToken* cancel);

  // A connection of the pool, once fewer than max_in_flight are in use; null if `cancel`
  // fired first. `raw`: a bare connection for range reads (net/http_wire), else httplib's.
  std::unique_ptr<Connection> Acquire(const CancelToken* cancel, bool raw);
  void Release(std::unique_ptr<Connection> conn, bool reusable);

  // The watchdog: ends (Connection::Shut) the requests on watch whose deadline passed before
  // the node began its answer.
  void WatchLoop();
  void StartWatch(Watch* w);
  // REQUIRES: StartWatch(w) was called. After it returns, the watchdog no longer touches w.
  void EndWatch(Watch* w);

  const HostPort address_;
  const std::shared_ptr<const crypto::SigningKey> owner_;
  const HttpPeerOptions options_;
  NodeId node_id_;
  Mutex mu_;
  CondVar cv_;
  int in_flight_ GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(mu_);

  // Lock order: watch_mu_ before a Connection's mutex; neither is taken while holding mu_.
  Mutex watch_mu_;
  CondVar watch_cv_;
  std::vector<Watch*> watched_ GUARDED_BY(watch_mu_);
  // When the watchdog wakes up next (max: only when woken).
  std::chrono::steady_clock::time_point watch_wake_ GUARDED_BY(watch_mu_) =
      std::chrono::steady_clock::time_point::max();
  bool watch_stop_ GUARDED_BY(watch_mu_) = false;
  std::thread watchdog_;
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_HTTP_PEER_H_

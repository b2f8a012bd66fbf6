// The storage node's request handlers: the peer protocol under /v1 (docs/protocol.md) over a
// backend::ShardStore. Pure handlers: a request head (and body) in, a response out; the
// server in net/http_server carries them over sockets.
//
// Thread safety: Begin may be called from many threads; each sink and source it returns is
// used by one thread at a time.

#ifndef SHARDFS_NET_NODE_SERVICE_H_
#define SHARDFS_NET_NODE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "backend/scrubber.h"
#include "backend/shardstore.h"
#include "base/ids.h"
#include "net/auth.h"
#include "net/http_types.h"

namespace shardfs::net {

// The peer protocol's version, the "v1" in every path.
inline constexpr int kProtocolVersion = 1;
// The most leaves one proof request may ask for (16 MiB of leaves).
inline constexpr uint64_t kMaxProofLeaves = 256;

// The node's view of the network (net/gossip_agent), served under /v1/members.
class MembershipService {
 public:
  virtual ~MembershipService() = default;
  // The view as JSON (net/members_json).
  virtual std::string ViewJson() = 0;
  // Merges member records packed one after another (each signed by its node). All are checked
  // first: InvalidArgument for a malformed one, PermissionDenied for one whose signature does
  // not verify, NotSupported for a newer version; then none is merged.
  virtual Status MergeRecords(ByteSpan records) = 0;
};

// The most bytes of records one POST /v1/members may carry (some 4,000 records).
inline constexpr uint64_t kMaxMembersBody = 1 << 20;

struct NodeServiceOptions {
  VerifierOptions verifier;
  // If not empty, only these owners may store, read or delete shards and use slots; others
  // get 403.
  std::unordered_set<crypto::PublicKey> allowed_owners;
  // The node's clock (unix seconds); tests replace it.
  std::function<int64_t()> clock;
  // The node's scrubber, whose progress GET /v1/status reports; none: reported as off.
  // REQUIRES: outlives the service.
  const backend::Scrubber* scrubber = nullptr;
  // TEST ONLY: flip one byte of every shard body and proof's leaves served, as a node that
  // lies would (`shardfs node --test-flip-served-bytes`; docs/development.md). Clients catch
  // it with their checks and name the node.
  bool test_flip_served_bytes = false;
};

class NodeService : public HttpHandler {
 public:
  // REQUIRES: `store` outlives the service and every sink and source it returns.
  NodeService(backend::ShardStore* store, NodeId self, NodeServiceOptions options);

  // The node's membership, served under /v1/members from now on (null: 404 there). Set once
  // the gossip runs, which binds the port the server got. REQUIRES: it outlives its use.
  void SetMembership(MembershipService* membership) { membership_.store(membership); }

  Dispatch Begin(const HttpRequestHead& head) override;
  HttpResponse Overloaded() override;

 private:
  Dispatch Shard(const HttpRequestHead& head, const ShardId& id, const VerifiedRequest& auth);
  Dispatch Proof(const HttpRequestHead& head, std::string_view query, const ShardId& id,
                 const VerifiedRequest& auth);
  Dispatch Slot(const HttpRequestHead& head, const crypto::PublicKey& owner,
                const VerifiedRequest& auth);
  HttpResponse StatusResponse(const HttpRequestHead& head);
  Dispatch Members(const HttpRequestHead& head);
  int64_t Now() const;

  backend::ShardStore* store_;
  const NodeId self_;
  const NodeServiceOptions options_;
  RequestVerifier verifier_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<MembershipService*> membership_{nullptr};
};

// Parses a Range header value against a body of `length` bytes: nullopt if `value` is empty,
// else the range [begin, end). InvalidArgument for a malformed value or several ranges (not
// supported: make several requests); OutOfRange if the range does not overlap the body.
Result<std::optional<std::pair<uint64_t, uint64_t>>> ParseRange(std::string_view value,
                                                                uint64_t length);

// The body of a proof response (docs/protocol.md, "Proofs"), and its parser for clients.
Bytes EncodeProofResponse(const backend::ShardProof& proof);
// Corruption for a malformed body, NotSupported for a newer version. The result is not checked
// against any id.
Result<backend::ShardProof> DecodeProofResponse(ByteSpan body);

// An error response: JSON {"code": code, "message": message}.
HttpResponse ErrorResponse(unsigned status, std::string_view code, std::string_view message);

}  // namespace shardfs::net

#endif  // SHARDFS_NET_NODE_SERVICE_H_

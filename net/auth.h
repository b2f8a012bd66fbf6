// Signed requests to storage nodes (docs/protocol.md, "Authentication").
//
// A request that stores, reads or deletes shards, or reads or writes a slot, carries the
// caller's ed25519 public key, the time, a random nonce, the Merkle root of its body (for a
// shard PUT, the shard id itself), and a signature over
//   "shardfs request v1\n" METHOD "\n" PATH "\n" QUERY "\n" NODE-ID "\n" TIME "\n" NONCE "\n"
//   BODY-ROOT "\n"
// where NODE-ID is the hex id of the node addressed, so a request signed for one node is
// worthless at another. The node checks the signature before it reads the body, refuses a
// time outside its window, and remembers every signature it accepted for as long as its time
// is inside the window, so a replay is refused too.
//
// Thread safety: SignRequest is a pure function; RequestVerifier is safe to call from many
// threads.

#ifndef SHARDFS_NET_AUTH_H_
#define SHARDFS_NET_AUTH_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "base/thread_annotations.h"
#include "crypto/sign.h"

namespace shardfs::net {

inline constexpr std::string_view kKeyHeader = "Shardfs-Key";
inline constexpr std::string_view kTimeHeader = "Shardfs-Time";
inline constexpr std::string_view kNonceHeader = "Shardfs-Nonce";
inline constexpr std::string_view kBodyHeader = "Shardfs-Body";
inline constexpr std::string_view kSignatureHeader = "Shardfs-Signature";

using Headers = std::vector<std::pair<std::string, std::string>>;

// The body root of a request without a body: crypto::MerkleRoot of no bytes.
const ShardId& EmptyBodyRoot();

// The bytes a request's signature covers.
std::string CanonicalRequest(std::string_view method, std::string_view path, std::string_view query,
                             std::string_view node_id_hex, std::string_view time,
                             std::string_view nonce, std::string_view body_root_hex);

// The five headers that sign a request for `node` with `key` at unix time `now`. `target` is
// the request target as sent (path, then ?query if any); `body_root` is the Merkle root of the
// body (crypto::MerkleRoot of an empty body when there is none).
Headers SignRequest(const crypto::SigningKey& key, const NodeId& node, std::string_view method,
                    std::string_view target, const ShardId& body_root, int64_t now);

struct VerifierOptions {
  // How far a request's time may be from the node's clock, either way, in seconds.
  int64_t max_skew_seconds = 120;
  // The most signatures remembered at once. A node that would need more (more than this many
  // signed requests inside one window) refuses new ones as overloaded rather than forget one.
  size_t replay_capacity = 1 << 20;
};

struct VerifiedRequest {
  crypto::PublicKey caller;
  ShardId body_root;  // what the caller says the body's Merkle root is; check it
};

class RequestVerifier {
 public:
  RequestVerifier(NodeId self, VerifierOptions options);

  // Checks the signature headers of a request. `header(name)` returns a header's value or an
  // empty string. PermissionDenied (HTTP 401) if a header is missing or malformed, the
  // signature does not verify, the time is outside the window, or the signature was seen
  // before; Unavailable (503) if the replay memory is full.
  template <typename HeaderFn>
  Result<VerifiedRequest> Verify(std::string_view method, std::string_view target,
                                 HeaderFn&& header, int64_t now) {
    return VerifyFields(method, target, header(kKeyHeader), header(kTimeHeader),
                        header(kNonceHeader), header(kBodyHeader), header(kSignatureHeader), now);
  }

  Result<VerifiedRequest> VerifyFields(std::string_view method, std::string_view target,
                                       std::string_view key, std::string_view time,
                                       std::string_view nonce, std::string_view body,
                                       std::string_view signature, int64_t now);

  size_t remembered();

 private:
  using Fingerprint = std::array<uint8_t, 16>;
  struct FingerprintHash {
    size_t operator()(const Fingerprint& f) const { return KeyedIdHash(f.data(), f.size()); }
  };
  void ForgetBefore(int64_t time) REQUIRES(mu_);

  const NodeId self_;
  const std::string self_hex_;
  const VerifierOptions options_;
  Mutex mu_;
  // Signatures accepted, by the request time they carried; dropped once that time has left
  // the window (a replay of them would be refused as stale).
  std::unordered_set<Fingerprint, FingerprintHash> seen_ GUARDED_BY(mu_);
  std::map<int64_t, std::vector<Fingerprint>> by_time_ GUARDED_BY(mu_);
};

}  // namespace shardfs::net

#endif  // SHARDFS_NET_AUTH_H_

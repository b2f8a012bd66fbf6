#include "net/auth.h"

#include <charconv>
#include <cstring>

#include "crypto/hash.h"
#include "crypto/merkle.h"
#include "crypto/secret.h"

namespace shardfs::net {

namespace {

constexpr size_t kNonceHexSize = 32;

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status Unauthorized(std::string msg) { return Status::PermissionDenied(std::move(msg)); }

}  // namespace

const ShardId& EmptyBodyRoot() {
  static const ShardId root = crypto::MerkleRoot({});
  return root;
}

std::string CanonicalRequest(std::string_view method, std::string_view path, std::string_view query,
                             std::string_view node_id_hex, std::string_view time,
                             std::string_view nonce, std::string_view body_root_hex) {
  std::string out = "shardfs request v1\n";
  for (std::string_view part : {method, path, query, node_id_hex, time, nonce, body_root_hex}) {
    out.append(part);
    out.push_back('\n');
  }
  return out;
}

Headers SignRequest(const crypto::SigningKey& key, const NodeId& node, std::string_view method,
                    std::string_view target, const ShardId& body_root, int64_t now) {
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  uint8_t nonce_raw[16];
  crypto::RandomBytes(nonce_raw);
  std::string nonce = HexEncode(nonce_raw);
  std::string time = std::to_string(now);
  std::string body = body_root.ToHex();
  std::string msg = CanonicalRequest(method, path, query, node.ToHex(), time, nonce, body);
  crypto::Signature sig = key.Sign(AsBytes(msg));
  return {{std::string(kKeyHeader), key.public_key().ToHex()},
          {std::string(kTimeHeader), time},
          {std::string(kNonceHeader), nonce},
          {std::string(kBodyHeader), body},
          {std::string(kSignatureHeader), HexEncode(sig)}};
}

RequestVerifier::RequestVerifier(NodeId self, VerifierOptions options)
    : self_(self), self_hex_(self.ToHex()), options_(options) {}

Result<VerifiedRequest> RequestVerifier::VerifyFields(std::string_view method,
                                                      std::string_view target, std::string_view key,
                                                      std::string_view time, std::string_view nonce,
                                                      std::string_view body,
                                                      std::string_view signature, int64_t now) {
  if (key.empty() && signature.empty()) {
    return Unauthorized("this request must be signed (Shardfs-Key, Shardfs-Signature, ...)");
  }
  if (key.empty() || time.empty() || nonce.empty() || body.empty() || signature.empty()) {
    return Unauthorized(
        "a signed request needs all of Shardfs-Key, Shardfs-Time, Shardfs-Nonce, "
        "Shardfs-Body and Shardfs-Signature");
  }
  auto caller = crypto::PublicKey::FromHex(key);
  if (!caller.ok()) return Unauthorized("Shardfs-Key is not 64 hex digits");
  auto body_root = ShardId::FromHex(body);
  if (!body_root.ok()) return Unauthorized("Shardfs-Body is not 64 hex digits");
  if (nonce.size() != kNonceHexSize || !IsLowerHex(nonce)) {
    return Unauthorized("Shardfs-Nonce is not 32 lowercase hex digits");
  }
  int64_t t = 0;
  auto [end, ec] = std::from_chars(time.data(), time.data() + time.size(), t);
  if (ec != std::errc() || end != time.data() + time.size() || time.size() > 15 ||
      time.front() == '-' || time.front() == '+') {
    return Unauthorized("Shardfs-Time is not a unix time in seconds");
  }
  if (t < now - options_.max_skew_seconds || t > now + options_.max_skew_seconds) {
    return Unauthorized("request time " + std::string(time) + " is more than " +
                        std::to_string(options_.max_skew_seconds) + " s from the node's clock (" +
                        std::to_string(now) + "); check the clock, then sign again");
  }
  if (signature.size() != 128) return Unauthorized("Shardfs-Signature is not 128 hex digits");
  auto sig_raw = HexDecode(signature);
  if (!sig_raw.ok()) return Unauthorized("Shardfs-Signature is not hex");
  crypto::Signature sig;
  std::memcpy(sig.data(), sig_raw->data(), sig.size());
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  std::string msg = CanonicalRequest(method, path, query, self_hex_, time, nonce, body);
  if (!crypto::VerifySignature(*caller, AsBytes(msg), sig)) {
    return Unauthorized(
        "signature does not verify (wrong key, or signed for another request "
        "or node)");
  }
  // Remember it. The fingerprint covers the whole signature (ed25519 signatures are
  // deterministic per message, so one message has one signature).
  crypto::Digest256 d = crypto::Sha256(sig);
  Fingerprint fp;
  std::memcpy(fp.data(), d.data(), fp.size());
  MutexLock lock(&mu_);
  ForgetBefore(now - options_.max_skew_seconds);
  if (seen_.count(fp) != 0)
    return Unauthorized("request replayed: this signature was already used");
  if (seen_.size() >= options_.replay_capacity) {
    return Status::Unavailable("too many signed requests in the time window; retry shortly");
  }
  seen_.insert(fp);
  by_time_[t].push_back(fp);
  return VerifiedRequest{*caller, *body_root};
}

void RequestVerifier::ForgetBefore(int64_t time) {
  while (!by_time_.empty() && by_time_.begin()->first < time) {
    for (const auto& fp : by_time_.begin()->second) seen_.erase(fp);
    by_time_.erase(by_time_.begin());
  }
}

size_t RequestVerifier::remembered() {
  MutexLock lock(&mu_);
  return seen_.size();
}

}  // namespace shardfs::net

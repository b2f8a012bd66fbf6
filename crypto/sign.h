// Ed25519 signatures (libsodium): the drive's owner key and storage nodes' identities.
//
// Thread safety: SigningKey is immutable after construction; Sign and VerifySignature may be
// called from many threads.

#ifndef SHARDFS_CRYPTO_SIGN_H_
#define SHARDFS_CRYPTO_SIGN_H_

#include <array>
#include <cstdint>

#include "base/bytes.h"
#include "base/ids.h"
#include "crypto/keys.h"
#include "crypto/secret.h"

namespace shardfs::crypto {

struct PublicKeyTag {
  static constexpr const char* kName = "public key";
};
using PublicKey = FixedId<PublicKeyTag, 32>;
using Signature = std::array<uint8_t, 64>;

class SigningKey {
 public:
  // The key pair whose secret is determined by `seed` (e.g. a derived sub-key).
  static SigningKey FromSeed(const SecretKey& seed);
  // A new random key pair.
  static SigningKey Generate();
  // The drive owner's key pair (FromSeed of the master key's kOwnerSigning sub-key): what
  // nodes know the drive by, and what signs its requests and its head.
  static SigningKey ForOwner(const MasterKey& master);

  const PublicKey& public_key() const { return public_key_; }
  // The seed the key pair was made from (keep secret).
  const SecretKey& seed() const { return seed_; }

  Signature Sign(ByteSpan message) const;

 private:
  SigningKey() = default;
  SecretKey seed_;
  SecretBytes<64> secret_;
  PublicKey public_key_;
};

// True if `signature` is `key`'s signature of `message`.
bool VerifySignature(const PublicKey& key, ByteSpan message, const Signature& signature);

// A storage node's id is its public key.
inline NodeId NodeIdOf(const PublicKey& key) { return NodeId::FromBytes(key.span()).value(); }

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_SIGN_H_

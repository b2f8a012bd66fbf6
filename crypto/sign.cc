#include "crypto/sign.h"

#include <sodium.h>

namespace shardfs::crypto {

static_assert(crypto_sign_SEEDBYTES == 32);
static_assert(crypto_sign_SECRETKEYBYTES == 64);
static_assert(crypto_sign_PUBLICKEYBYTES == 32);
static_assert(crypto_sign_BYTES == 64);

SigningKey SigningKey::FromSeed(const SecretKey& seed) {
  (void)Init();
  SigningKey k;
  k.seed_ = seed;
  crypto_sign_seed_keypair(k.public_key_.mutable_data(), k.secret_.mutable_data(), seed.data());
  return k;
}

SigningKey SigningKey::ForOwner(const MasterKey& master) {
  return FromSeed(DeriveSubKey(master, SubKey::kOwnerSigning));
}

SigningKey SigningKey::Generate() { return FromSeed(SecretKey::Random()); }

Signature SigningKey::Sign(ByteSpan message) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_.data());
  return sig;
}

bool VerifySignature(const PublicKey& key, ByteSpan message, const Signature& signature) {
  (void)Init();
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     key.data()) == 0;
}

}  // namespace shardfs::crypto

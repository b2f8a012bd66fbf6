// The drive master key and the keys derived from it.
//
// A drive has one 32-byte master key (created at `shardfs init`). Every key shardfs uses is
// derived from it, so the master key alone restores a drive:
// - sub-keys, one per purpose, with libsodium's crypto_kdf (BLAKE2b), context "shardfs1";
// - item keys (one per chunk, per pack, per checkpoint) from a sub-key and the item's id,
//   with keyed BLAKE2b over a purpose label and the id.
//
// Thread safety: all functions are thread-safe; key objects are values.

#ifndef SHARDFS_CRYPTO_KEYS_H_
#define SHARDFS_CRYPTO_KEYS_H_

#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "crypto/secret.h"

namespace shardfs::crypto {

// The drive's root secret. A distinct type so a sub-key is never passed where the master key
// belongs, or the reverse.
struct MasterKey {
  SecretKey key;
  static MasterKey Generate() { return MasterKey{SecretKey::Random()}; }
};

// Sub-key purposes. The numbers are the crypto_kdf sub-key ids: stored keys depend on them,
// so do not renumber; add new purposes at the end.
enum class SubKey : uint64_t {
  kChunkId = 1,            // HMAC key of chunk ids
  kChunkEncryption = 2,    // parent of per-chunk AEAD keys
  kCatalogEncryption = 3,  // parent of per-checkpoint keys of the metadata catalog
  kOwnerSigning = 4,       // seed of the drive's ed25519 owner key
  kPackIndex = 5,          // parent of per-pack index keys
  kChunkerSeed = 6,        // seed of the drive's content-defined chunker
  kDeviceTokens = 7,       // MAC key for paired devices' tokens
  kLocalCache = 8,         // encryption of the local on-disk cache
};

SecretKey DeriveSubKey(const MasterKey& master, SubKey purpose);

// The sub-keys the data path uses, derived once when a drive is opened.
struct DriveKeys {
  SecretKey chunk_id;
  SecretKey chunk_encryption;
  SecretKey pack_index;
  SecretKey catalog_encryption;
  SecretKey chunker_seed;

  static DriveKeys Derive(const MasterKey& master);

  // The seed of the drive's chunker: the first 8 bytes of chunker_seed, little-endian.
  uint64_t ChunkerSeed() const { return LoadLE64(chunker_seed.data()); }
};

// A key for one item: keyed BLAKE2b-256 under `parent` of `purpose`, a zero byte, and `id`.
// Distinct (purpose, id) pairs give independent keys.
SecretKey DeriveItemKey(const SecretKey& parent, std::string_view purpose, ByteSpan id);

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_KEYS_H_

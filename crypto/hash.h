// Hash functions and keyed hashes.
//
// Bulk hashing (shard Merkle trees, chunk ids) uses SHA-256 through OpenSSL, which uses the
// CPU's SHA extensions: measured on this project's machines at about 1.6-1.8 GB/s against
// 0.9-1.05 GB/s for libsodium's BLAKE2b (bench/pipeline prints both). Merkle leaves go twice
// as fast again, two at a time (crypto/sha256_pair.h). BLAKE2b stays for small keyed
// derivations, where libsodium is the home of keys.
//
// Thread safety: free functions are thread-safe; a Sha256Hasher is used by one thread at a
// time; ChunkIdHasher::Compute may be called from many threads at once.

#ifndef SHARDFS_CRYPTO_HASH_H_
#define SHARDFS_CRYPTO_HASH_H_

#include <array>
#include <cstdint>
#include <memory>

#include "base/bytes.h"
#include "base/ids.h"
#include "crypto/secret.h"

namespace shardfs::crypto {

using Digest256 = std::array<uint8_t, 32>;

Digest256 Sha256(ByteSpan data);

// Incremental SHA-256. Reset() makes it reusable without a new allocation.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Reset();
  void Update(ByteSpan data);
  // Returns the digest of everything since the last Reset and resets.
  Digest256 Final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// HMAC-SHA-256 (RFC 2104) with a key of any length.
Digest256 HmacSha256(ByteSpan key, ByteSpan data);

// BLAKE2b with a 32-byte output, keyed when `key` is not empty (REQUIRES: key.size() is 0 or
// 16..64).
Digest256 Blake2b256(ByteSpan data, ByteSpan key = {});

// Chunk ids: HMAC-SHA-256 of the chunk's plaintext under the drive's chunk-id key (format:
// chunk id algorithm 1 in docs/format.md). Without the key nobody can compute or confirm an id.
class ChunkIdHasher {
 public:
  explicit ChunkIdHasher(const SecretKey& chunk_id_key) : key_(chunk_id_key) {}
  ChunkId Compute(ByteSpan plaintext) const;

 private:
  SecretKey key_;
};

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_HASH_H_

// Authenticated encryption with associated data (AEAD).
//
// Two ciphers, recorded by number in every format that uses them:
// - AES-256-GCM through OpenSSL (hardware AES and carry-less multiply: measured about
//   3.8-4.5 GB/s on this project's machines, the default where the CPU has them);
// - XChaCha20-Poly1305 through libsodium (about 1.4-1.5 GB/s; for CPUs without AES
//   instructions, where GCM in software would be slow and not constant-time).
// Every key used with AES-256-GCM here encrypts few messages (keys are derived per chunk,
// pack or checkpoint), and nonces are random, so the 96-bit GCM nonce is never at risk.
//
// Thread safety: all functions are thread-safe.

#ifndef SHARDFS_CRYPTO_AEAD_H_
#define SHARDFS_CRYPTO_AEAD_H_

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/secret.h"

namespace shardfs::crypto {

// Stored in formats: do not renumber.
enum class Cipher : uint8_t {
  kAes256Gcm = 1,
  kXChaCha20Poly1305 = 2,
};

inline constexpr size_t kAeadTagSize = 16;
inline constexpr size_t kMaxNonceSize = 24;

// The nonce size of `cipher` (12 or 24 bytes).
size_t NonceSize(Cipher cipher);

// Parses a stored cipher number. Corruption for an unknown one.
Result<Cipher> CipherFromByte(uint8_t value);

// The cipher new data should use on this CPU: AES-256-GCM if the CPU has AES and carry-less
// multiply instructions, XChaCha20-Poly1305 otherwise.
Cipher PreferredCipher();

// Encrypts `plaintext` into out[0, plaintext.size()) followed by the 16-byte tag.
// `out` may alias `plaintext` exactly (in-place); no other overlap.
// REQUIRES: nonce.size() == NonceSize(cipher); out.size() == plaintext.size() + kAeadTagSize.
// InvalidArgument if a size is wrong.
Status AeadSeal(Cipher cipher, const SecretKey& key, ByteSpan nonce, ByteSpan ad,
                ByteSpan plaintext, MutableByteSpan out);

// Decrypts and verifies `sealed` (ciphertext followed by tag) into `out`.
// REQUIRES: out.size() + kAeadTagSize == sealed.size(); `out` may alias `sealed` exactly.
// Corruption if the tag does not verify (wrong key, nonce, associated data, or any flipped
// bit); then `out` is zeroed, so unauthenticated bytes are never released.
// InvalidArgument if a size is wrong.
Status AeadOpen(Cipher cipher, const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan sealed,
                MutableByteSpan out);

// A "box": a random nonce followed by the AEAD of the plaintext (ciphertext || tag), the
// framing of sealed chunks and of a pack's index and trailer.
//
// The bytes a box adds to its plaintext: nonce and tag.
inline size_t AeadBoxOverhead(Cipher cipher) { return NonceSize(cipher) + kAeadTagSize; }

// Writes nonce || AEAD(plaintext) into `out`, with a fresh random nonce.
// REQUIRES: out.size() == plaintext.size() + AeadBoxOverhead(cipher), no overlap.
// InvalidArgument if the size is wrong.
Status AeadSealBox(Cipher cipher, const SecretKey& key, ByteSpan ad, ByteSpan plaintext,
                   MutableByteSpan out);

// Opens a box into `out`. REQUIRES: out.size() + AeadBoxOverhead(cipher) == box.size()
// (InvalidArgument otherwise, including a box shorter than the overhead). Errors as AeadOpen.
Status AeadOpenBox(Cipher cipher, const SecretKey& key, ByteSpan ad, ByteSpan box,
                   MutableByteSpan out);

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_AEAD_H_

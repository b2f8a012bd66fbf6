// SHA-256 of two messages at once, for hashing many Merkle leaves fast.
//
// One SHA-256 is a chain of dependent compression steps, and the CPU's SHA instructions wait
// on each other's results: a single stream leaves the unit idle half the time. Two
// independent messages interleaved keep it busy. Measured on this project's machines (Zen 4
// under KVM, 32 KiB messages): one stream through OpenSSL about 1.5 GB/s, two interleaved
// about 3.0 GB/s. The same two-lane idea is what multi-buffer hashing libraries do; the one
// Debian packages (intel-ipsec-mb 1.3) refuses messages over 65,535 bytes, and a Merkle leaf
// here is 65,537 (a prefix byte and 64 KiB).
//
// Internal to crypto/: merkle.cc uses it; everything else hashes through crypto/hash.h.
//
// Thread safety: thread-safe (no state).

#ifndef SHARDFS_CRYPTO_SHA256_PAIR_H_
#define SHARDFS_CRYPTO_SHA256_PAIR_H_

#include <cstdint>

#include "base/bytes.h"
#include "crypto/hash.h"

namespace shardfs::crypto {

// True if this CPU has the SHA extensions (and SSSE3, SSE4.1), so Sha256Pair runs two lanes;
// otherwise it hashes the two messages one after the other through OpenSSL.
bool Sha256PairAccelerated();

// out_a = SHA-256(prefix || a), out_b = SHA-256(prefix || b), for a one-byte prefix (the
// Merkle domain byte). REQUIRES: a.size() == b.size().
void Sha256Pair(uint8_t prefix, ByteSpan a, ByteSpan b, Digest256* out_a, Digest256* out_b);

// The same through OpenSSL one message at a time, whatever the CPU (for tests: both must agree).
void Sha256PairPortable(uint8_t prefix, ByteSpan a, ByteSpan b, Digest256* out_a, Digest256* out_b);

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_SHA256_PAIR_H_

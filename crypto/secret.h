// Key material, randomness and library start-up for crypto/.
//
// crypto/ is the only place that includes sodium.h (and OpenSSL's EVP headers); its public
// headers include neither. Secret bytes live in SecretBytes, which zeroes its memory when it is
// destroyed or overwritten and never prints itself.
//
// Thread safety: Init() may be called from any thread any number of times. SecretBytes is a
// value type (use one object from one thread at a time).

#ifndef SHARDFS_CRYPTO_SECRET_H_
#define SHARDFS_CRYPTO_SECRET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "base/bytes.h"
#include "base/status.h"

namespace shardfs::crypto {

// Initializes libsodium and OpenSSL. Every crypto/ entry point calls it, so callers need not;
// an error means the process has no usable random source.
Status Init();

// Fills `out` with bytes from the operating system's CSPRNG.
void RandomBytes(MutableByteSpan out);

// Overwrites `n` bytes at `p` with zeros in a way the compiler cannot drop.
void SecureZero(void* p, size_t n);

template <size_t N>
class SecretBytes {
 public:
  static constexpr size_t kSize = N;

  SecretBytes() : bytes_{} {}
  ~SecretBytes() { SecureZero(bytes_.data(), N); }
  SecretBytes(const SecretBytes& other) : bytes_(other.bytes_) {}
  SecretBytes& operator=(const SecretBytes& other) {
    bytes_ = other.bytes_;
    return *this;
  }

  static SecretBytes Random() {
    SecretBytes s;
    RandomBytes(s.bytes_);
    return s;
  }
  // InvalidArgument unless b.size() == N.
  static Result<SecretBytes> FromBytes(ByteSpan b) {
    if (b.size() != N) return Status::InvalidArgument("secret has the wrong length");
    SecretBytes s;
    std::memcpy(s.bytes_.data(), b.data(), N);
    return s;
  }

  ByteSpan span() const { return bytes_; }
  MutableByteSpan mutable_span() { return bytes_; }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* mutable_data() { return bytes_.data(); }

  // Constant-time comparison.
  bool Equals(const SecretBytes& other) const { return ConstantTimeEqual(span(), other.span()); }

 private:
  std::array<uint8_t, N> bytes_;
};

// A 256-bit symmetric key.
using SecretKey = SecretBytes<32>;

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_SECRET_H_

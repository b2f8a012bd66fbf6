#include "crypto/secret.h"

#include <cstdlib>
#include <mutex>

#include <openssl/crypto.h>
#include <sodium.h>

namespace shardfs::crypto {

Status Init() {
  static const Status status = [] {
    if (sodium_init() < 0) return Status::IOError("libsodium failed to initialize");
    if (OPENSSL_init_crypto(0, nullptr) != 1) {
      return Status::IOError("OpenSSL failed to initialize");
    }
    return Status::Ok();
  }();
  return status;
}

void RandomBytes(MutableByteSpan out) {
  // libsodium must be initialized before randombytes_buf is used from many threads; without
  // a random source nothing in shardfs is safe, so that is a broken invariant.
  if (!Init().ok()) std::abort();
  randombytes_buf(out.data(), out.size());
}

void SecureZero(void* p, size_t n) { sodium_memzero(p, n); }

}  // namespace shardfs::crypto

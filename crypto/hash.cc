#include "crypto/hash.h"

#include <cstdlib>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <sodium.h>

namespace shardfs::crypto {

namespace {

// Fetched once: an explicit fetch avoids OpenSSL's per-call algorithm lookup.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = [] {
    (void)Init();
    return EVP_MD_fetch(nullptr, "SHA256", nullptr);
  }();
  if (md == nullptr) std::abort();  // OpenSSL without SHA-256 cannot run shardfs at all
  return md;
}

EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* mac = [] {
    (void)Init();
    return EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  }();
  if (mac == nullptr) std::abort();
  return mac;
}

// OpenSSL only fails these calls on allocation failure or misuse, both fatal here.
void Check(int ok) {
  if (ok != 1) std::abort();
}

}  // namespace

struct Sha256Hasher::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256Hasher::Sha256Hasher() : ctx_(std::make_unique<Ctx>()) {
  if (ctx_->md == nullptr) std::abort();
  Reset();
}
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Reset() { Check(EVP_DigestInit_ex(ctx_->md, Sha256Md(), nullptr)); }

void Sha256Hasher::Update(ByteSpan data) {
  Check(EVP_DigestUpdate(ctx_->md, data.data(), data.size()));
}

Digest256 Sha256Hasher::Final() {
  Digest256 out;
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(ctx_->md, out.data(), &len));
  Reset();
  return out;
}

Digest256 Sha256(ByteSpan data) {
  Digest256 out;
  unsigned int len = 0;
  Check(EVP_Digest(data.data(), data.size(), out.data(), &len, Sha256Md(), nullptr));
  return out;
}

Digest256 HmacSha256(ByteSpan key, ByteSpan data) {
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(HmacAlgorithm());
  if (ctx == nullptr) std::abort();
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  Digest256 out;
  size_t len = 0;
  Check(EVP_MAC_init(ctx, key.data(), key.size(), params));
  Check(EVP_MAC_update(ctx, data.data(), data.size()));
  Check(EVP_MAC_final(ctx, out.data(), &len, out.size()));
  EVP_MAC_CTX_free(ctx);
  return out;
}

Digest256 Blake2b256(ByteSpan data, ByteSpan key) {
  (void)Init();
  if (!key.empty() && (key.size() < crypto_generichash_KEYBYTES_MIN ||
                       key.size() > crypto_generichash_KEYBYTES_MAX)) {
    std::abort();  // a caller bug: keys are fixed-size constants in shardfs
  }
  Digest256 out;
  crypto_generichash(out.data(), out.size(), data.data(), data.size(),
                     key.empty() ? nullptr : key.data(), key.size());
  return out;
}

ChunkId ChunkIdHasher::Compute(ByteSpan plaintext) const {
  return ChunkId(HmacSha256(key_.span(), plaintext));
}

}  // namespace shardfs::crypto

#include "crypto/aead.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#include <openssl/evp.h>
#include <sodium.h>

namespace shardfs::crypto {

namespace {

const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = [] {
    (void)Init();
    return EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  }();
  if (cipher == nullptr) std::abort();
  return cipher;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

// EVP takes int lengths; feed larger inputs in pieces.
constexpr size_t kMaxEvpPiece = size_t{1} << 30;

bool GcmUpdate(EVP_CIPHER_CTX* ctx, bool encrypt, uint8_t* out, ByteSpan in) {
  size_t done = 0;
  while (done < in.size()) {
    size_t n = std::min(in.size() - done, kMaxEvpPiece);
    int outl = 0;
    int ok = encrypt ? EVP_EncryptUpdate(ctx, out ? out + done : nullptr, &outl, in.data() + done,
                                         static_cast<int>(n))
                     : EVP_DecryptUpdate(ctx, out ? out + done : nullptr, &outl, in.data() + done,
                                         static_cast<int>(n));
    if (ok != 1) return false;
    done += n;
  }
  return true;
}

Status GcmSeal(const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan pt,
               MutableByteSpan out) {
  CipherCtx c;
  int outl = 0;
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, Aes256Gcm(), nullptr, key.data(), nonce.data()) != 1 ||
      !GcmUpdate(c.ctx, true, nullptr, ad) || !GcmUpdate(c.ctx, true, out.data(), pt) ||
      EVP_EncryptFinal_ex(c.ctx, out.data() + pt.size(), &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kAeadTagSize, out.data() + pt.size()) != 1) {
    return Status::IOError("AES-256-GCM encryption failed");
  }
  return Status::Ok();
}

Status GcmOpen(const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan sealed,
               MutableByteSpan out) {
  CipherCtx c;
  ByteSpan ct = sealed.first(sealed.size() - kAeadTagSize);
  uint8_t tag[kAeadTagSize];
  std::memcpy(tag, sealed.data() + ct.size(), kAeadTagSize);
  int outl = 0;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, Aes256Gcm(), nullptr, key.data(), nonce.data()) != 1 ||
      !GcmUpdate(c.ctx, false, nullptr, ad) || !GcmUpdate(c.ctx, false, out.data(), ct) ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kAeadTagSize, tag) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, out.data() + ct.size(), &outl) != 1) {
    SecureZero(out.data(), out.size());
    return Status::Corruption("AEAD authentication failed");
  }
  return Status::Ok();
}

Status XChaChaSeal(const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan pt,
                   MutableByteSpan out) {
  unsigned long long mac_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
          out.data(), out.data() + pt.size(), &mac_len, pt.data(), pt.size(), ad.data(), ad.size(),
          nullptr, nonce.data(), key.data()) != 0) {
    return Status::IOError("XChaCha20-Poly1305 encryption failed");
  }
  return Status::Ok();
}

Status XChaChaOpen(const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan sealed,
                   MutableByteSpan out) {
  size_t ct_len = sealed.size() - kAeadTagSize;
  // libsodium reads the tag after writing the plaintext when in == out; copy it first.
  uint8_t tag[kAeadTagSize];
  std::memcpy(tag, sealed.data() + ct_len, kAeadTagSize);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out.data(), nullptr, sealed.data(),
                                                          ct_len, tag, ad.data(), ad.size(),
                                                          nonce.data(), key.data()) != 0) {
    SecureZero(out.data(), out.size());
    return Status::Corruption("AEAD authentication failed");
  }
  return Status::Ok();
}

}  // namespace

size_t NonceSize(Cipher cipher) {
  return cipher == Cipher::kAes256Gcm ? 12 : crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
}

Result<Cipher> CipherFromByte(uint8_t value) {
  switch (value) {
    case static_cast<uint8_t>(Cipher::kAes256Gcm):
      return Cipher::kAes256Gcm;
    case static_cast<uint8_t>(Cipher::kXChaCha20Poly1305):
      return Cipher::kXChaCha20Poly1305;
    default:
      return Status::Corruption("unknown cipher " + std::to_string(value));
  }
}

Cipher PreferredCipher() {
  (void)Init();
  return crypto_aead_aes256gcm_is_available() ? Cipher::kAes256Gcm : Cipher::kXChaCha20Poly1305;
}

Status AeadSeal(Cipher cipher, const SecretKey& key, ByteSpan nonce, ByteSpan ad,
                ByteSpan plaintext, MutableByteSpan out) {
  if (nonce.size() != NonceSize(cipher) || out.size() != plaintext.size() + kAeadTagSize) {
    return Status::InvalidArgument("AeadSeal: wrong nonce or output size");
  }
  SFS_RETURN_IF_ERROR(Init());
  switch (cipher) {
    case Cipher::kAes256Gcm:
      return GcmSeal(key, nonce, ad, plaintext, out);
    case Cipher::kXChaCha20Poly1305:
      return XChaChaSeal(key, nonce, ad, plaintext, out);
  }
  return Status::InvalidArgument("AeadSeal: unknown cipher");
}

Status AeadOpen(Cipher cipher, const SecretKey& key, ByteSpan nonce, ByteSpan ad, ByteSpan sealed,
                MutableByteSpan out) {
  if (nonce.size() != NonceSize(cipher) || sealed.size() < kAeadTagSize ||
      out.size() != sealed.size() - kAeadTagSize) {
    return Status::InvalidArgument("AeadOpen: wrong nonce, input or output size");
  }
  SFS_RETURN_IF_ERROR(Init());
  switch (cipher) {
    case Cipher::kAes256Gcm:
      return GcmOpen(key, nonce, ad, sealed, out);
    case Cipher::kXChaCha20Poly1305:
      return XChaChaOpen(key, nonce, ad, sealed, out);
  }
  return Status::InvalidArgument("AeadOpen: unknown cipher");
}

Status AeadSealBox(Cipher cipher, const SecretKey& key, ByteSpan ad, ByteSpan plaintext,
                   MutableByteSpan out) {
  if (out.size() != plaintext.size() + AeadBoxOverhead(cipher)) {
    return Status::InvalidArgument("AeadSealBox: wrong output size");
  }
  const size_t nonce_size = NonceSize(cipher);
  RandomBytes(out.first(nonce_size));
  return AeadSeal(cipher, key, out.first(nonce_size), ad, plaintext, out.subspan(nonce_size));
}

Status AeadOpenBox(Cipher cipher, const SecretKey& key, ByteSpan ad, ByteSpan box,
                   MutableByteSpan out) {
  if (box.size() < AeadBoxOverhead(cipher) || out.size() + AeadBoxOverhead(cipher) != box.size()) {
    return Status::InvalidArgument("AeadOpenBox: wrong input or output size");
  }
  const size_t nonce_size = NonceSize(cipher);
  return AeadOpen(cipher, key, box.first(nonce_size), ad, box.subspan(nonce_size), out);
}

}  // namespace shardfs::crypto

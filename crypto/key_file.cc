#include "crypto/key_file.h"

#include <cstring>

#include <sodium.h>

#include "base/file.h"
#include "crypto/aead.h"
#include "crypto/hash.h"

namespace shardfs::crypto {

namespace {

constexpr uint8_t kMagic[8] = {'s', 'h', 'a', 'r', 'd', 'f', 's', 'K'};
constexpr uint8_t kVersion = 1;
// Protection byte values: do not renumber.
constexpr uint8_t kProtectionNone = 0;
constexpr uint8_t kProtectionArgon2idXChaCha = 1;

constexpr size_t kHeaderSize = 12;  // magic, version, protection, 2 reserved
constexpr size_t kChecksumSize = 32;
constexpr size_t kSaltSize = crypto_pwhash_SALTBYTES;
constexpr size_t kNonceSize = 24;
constexpr size_t kPlainSize = kHeaderSize + 32 + kChecksumSize;
constexpr size_t kWrappedBody = 8 + 8 + kSaltSize + kNonceSize + 32 + kAeadTagSize;
constexpr size_t kWrappedSize = kHeaderSize + kWrappedBody + kChecksumSize;
static_assert(kSaltSize == 16);

bool ParamsReadable(uint64_t opslimit, uint64_t memlimit) {
  return opslimit >= crypto_pwhash_OPSLIMIT_MIN && opslimit <= kMaxKeyFileOpsLimit &&
         memlimit >= crypto_pwhash_MEMLIMIT_MIN && memlimit <= kMaxKeyFileMemLimit;
}

// Wipes a buffer of secrets on every way out of a scope.
class WipeOnExit {
 public:
  WipeOnExit(void* p, size_t n) : p_(p), n_(n) {}
  ~WipeOnExit() { SecureZero(p_, n_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  void* p_;
  size_t n_;
};

Result<SecretKey> StretchPassphrase(const std::string& passphrase, ByteSpan salt, uint64_t opslimit,
                                    uint64_t memlimit) {
  SecretKey out;
  if (crypto_pwhash(out.mutable_data(), out.kSize, passphrase.data(), passphrase.size(),
                    salt.data(), opslimit, static_cast<size_t>(memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Status::NoSpace("not enough memory to derive the key from the passphrase");
  }
  return out;
}

void AppendChecksum(Bytes* out) {
  Digest256 sum = Blake2b256(*out);
  out->insert(out->end(), sum.begin(), sum.end());
}

// Crockford base32.
constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr int kPhraseVersion = 1;
constexpr int kKeyChars = 52;      // 4 version bits + 256 key bits = 260 bits
constexpr int kChecksumChars = 4;  // 20 bits
constexpr int kPhraseChars = kKeyChars + kChecksumChars;

int DecodeChar(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  if (c == 'I' || c == 'L') return 1;
  if (c == 'O') return 0;
  for (int i = 0; i < 32; ++i)
    if (kAlphabet[i] == c) return i;
  return -1;
}

// 20-bit checksum of the 52 key characters' values.
uint32_t PhraseChecksum(const uint8_t values[kKeyChars]) {
  Digest256 h = Blake2b256(ByteSpan(values, kKeyChars), AsBytes("shardfs recovery phrase v1"));
  return (static_cast<uint32_t>(h[0]) << 12) | (static_cast<uint32_t>(h[1]) << 4) | (h[2] >> 4);
}

}  // namespace

Result<Bytes> EncodeKeyFile(const MasterKey& key, const std::optional<std::string>& passphrase,
                            const PassphraseParams& params) {
  SFS_RETURN_IF_ERROR(Init());
  Bytes out;
  // The exact size up front: a reallocation would leave a copy of the key in freed memory.
  out.reserve(passphrase ? kWrappedSize : kPlainSize);
  ByteWriter w(&out);
  w.Raw(kMagic);
  w.U8(kVersion);
  if (!passphrase) {
    w.U8(kProtectionNone);
    w.U16(0);
    w.Raw(key.key.span());
    AppendChecksum(&out);
    return out;
  }
  if (passphrase->empty()) return Status::InvalidArgument("the passphrase is empty");
  if (!ParamsReadable(params.opslimit, params.memlimit) || params.opslimit < kMinWriteOpsLimit ||
      params.memlimit < kMinWriteMemLimit) {
    return Status::InvalidArgument(
        "passphrase cost out of bounds (at least 2 passes and 64 MiB, at most 64 and 4 GiB)");
  }
  w.U8(kProtectionArgon2idXChaCha);
  w.U16(0);
  w.U64(params.opslimit);
  w.U64(params.memlimit);
  uint8_t salt[kSaltSize];
  uint8_t nonce[kNonceSize];
  RandomBytes(salt);
  RandomBytes(nonce);
  w.Raw(salt);
  w.Raw(nonce);
  SFS_ASSIGN_OR_RETURN(SecretKey wrap,
                       StretchPassphrase(*passphrase, salt, params.opslimit, params.memlimit));
  size_t ad_len = out.size();
  out.resize(ad_len + 32 + kAeadTagSize);
  SFS_RETURN_IF_ERROR(AeadSeal(Cipher::kXChaCha20Poly1305, wrap, nonce,
                               ByteSpan(out.data(), ad_len), key.key.span(),
                               MutableByteSpan(out.data() + ad_len, 32 + kAeadTagSize)));
  AppendChecksum(&out);
  return out;
}

Result<KeyFileInfo> InspectKeyFile(ByteSpan file) {
  if (file.size() < kHeaderSize || std::memcmp(file.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("not a shardfs key file");
  }
  ByteReader r(file.subspan(sizeof(kMagic)));
  uint8_t version = 0, protection = 0;
  uint16_t reserved = 0;
  r.U8(&version);
  r.U8(&protection);
  r.U16(&reserved);
  if (version > kVersion) {
    // A v1 file whose version byte was damaged is damage, not a newer format.
    if (file.size() == kPlainSize || file.size() == kWrappedSize) {
      Bytes as_v1(file.begin(), file.end() - kChecksumSize);
      as_v1[sizeof(kMagic)] = kVersion;
      if (ConstantTimeEqual(Blake2b256(as_v1), file.last(kChecksumSize))) {
        SecureZero(as_v1.data(), as_v1.size());
        return Status::Corruption("key file is damaged (its version byte)");
      }
      SecureZero(as_v1.data(), as_v1.size());
    }
    return Status::NotSupported("key file version " + std::to_string(version) +
                                " is newer than this shardfs understands");
  }
  if (version != kVersion || reserved != 0) return Status::Corruption("damaged key file header");
  size_t want = protection == kProtectionNone              ? kPlainSize
                : protection == kProtectionArgon2idXChaCha ? kWrappedSize
                                                           : 0;
  if (want == 0) return Status::Corruption("key file has an unknown protection type");
  if (file.size() != want) return Status::Corruption("key file has the wrong size");
  Digest256 sum = Blake2b256(file.first(want - kChecksumSize));
  if (!ConstantTimeEqual(sum, file.last(kChecksumSize))) {
    return Status::Corruption("key file checksum does not match: the file is damaged");
  }
  if (protection == kProtectionArgon2idXChaCha) {
    // The checksum is no MAC: a crafted file passes it, so the costs are checked here.
    uint64_t opslimit = LoadLE64(file.data() + kHeaderSize);
    uint64_t memlimit = LoadLE64(file.data() + kHeaderSize + 8);
    if (!ParamsReadable(opslimit, memlimit)) {
      return Status::Corruption("key file asks for passphrase costs out of bounds");
    }
  }
  return KeyFileInfo{version, protection == kProtectionArgon2idXChaCha};
}

Result<MasterKey> DecodeKeyFile(ByteSpan file, const std::optional<std::string>& passphrase,
                                KeyFileInfo* info_out) {
  SFS_RETURN_IF_ERROR(Init());
  SFS_ASSIGN_OR_RETURN(KeyFileInfo info, InspectKeyFile(file));
  if (info_out != nullptr) *info_out = info;
  ByteReader r(file.subspan(kHeaderSize));
  MasterKey key;
  if (!info.passphrase_protected) {
    r.Raw(key.key.mutable_span());
    return key;
  }
  if (!passphrase) {
    return Status::PermissionDenied("the key file is protected by a passphrase; give it");
  }
  uint64_t opslimit = 0, memlimit = 0;
  ByteSpan salt, nonce, sealed;
  r.U64(&opslimit);
  r.U64(&memlimit);
  r.View(kSaltSize, &salt);
  r.View(kNonceSize, &nonce);
  size_t ad_len = kHeaderSize + r.position();
  r.View(32 + kAeadTagSize, &sealed);
  if (!r.ok()) return Status::Corruption("key file is truncated");
  SFS_ASSIGN_OR_RETURN(SecretKey wrap, StretchPassphrase(*passphrase, salt, opslimit, memlimit));
  Status s = AeadOpen(Cipher::kXChaCha20Poly1305, wrap, nonce, file.first(ad_len), sealed,
                      key.key.mutable_span());
  if (!s.ok()) return Status::PermissionDenied("wrong passphrase for the key file");
  return key;
}

Status WriteKeyFile(const std::string& path, const MasterKey& key,
                    const std::optional<std::string>& passphrase, const PassphraseParams& params) {
  SFS_ASSIGN_OR_RETURN(Bytes data, EncodeKeyFile(key, passphrase, params));
  Status s = WriteFileAtomic(path, data, 0600);
  SecureZero(data.data(), data.size());
  return s;
}

Result<MasterKey> ReadKeyFile(const std::string& path, const std::optional<std::string>& passphrase,
                              KeyFileInfo* info) {
  uint8_t buf[kMaxKeyFileSize];
  WipeOnExit wipe(buf, sizeof(buf));
  SFS_ASSIGN_OR_RETURN(size_t n, ReadFileInto(path, buf));
  Result<MasterKey> key = DecodeKeyFile(ByteSpan(buf, n), passphrase, info);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

std::string ToRecoveryPhrase(const MasterKey& key) {
  // 260-bit big-endian number: version (4 bits) then the key; 5 bits per character.
  uint8_t values[kKeyChars] = {};
  WipeOnExit wipe(values, sizeof(values));
  uint32_t acc = kPhraseVersion;
  int bits = 4;
  int n = 0;
  for (uint8_t byte : key.key.span()) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      values[n++] = static_cast<uint8_t>((acc >> bits) & 31);
    }
  }
  uint32_t sum = PhraseChecksum(values);
  std::string out;
  out.reserve(kPhraseChars + kPhraseChars / 4);  // no reallocation, so no stray copies
  for (int i = 0; i < kPhraseChars; ++i) {
    if (i > 0 && i % 4 == 0) out += '-';
    int v =
        i < kKeyChars ? values[i] : static_cast<int>((sum >> (5 * (kPhraseChars - 1 - i))) & 31);
    out += kAlphabet[v];
  }
  return out;
}

Result<MasterKey> FromRecoveryPhrase(std::string_view phrase) {
  uint8_t values[kPhraseChars] = {};
  WipeOnExit wipe(values, sizeof(values));
  int n = 0;
  for (size_t i = 0; i < phrase.size(); ++i) {
    char c = phrase[i];
    if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    int v = DecodeChar(c);
    if (v < 0) {
      std::string what = c > ' ' && c < 127 ? std::string("'") + c + "'" : "a non-ASCII character";
      return Status::InvalidArgument(what + " is not used in recovery phrases (character " +
                                     std::to_string(i + 1) + ")");
    }
    if (n == kPhraseChars) {
      return Status::InvalidArgument("the recovery phrase is too long: it has 56 characters");
    }
    values[n++] = static_cast<uint8_t>(v);
  }
  if (n != kPhraseChars) {
    return Status::InvalidArgument("the recovery phrase is too short: it has 56 characters, got " +
                                   std::to_string(n));
  }
  if ((values[0] >> 1) != kPhraseVersion) {
    return Status::InvalidArgument(
        "this recovery phrase has a typo in its first group, or comes from a newer shardfs");
  }
  uint32_t sum = 0;
  for (int i = kKeyChars; i < kPhraseChars; ++i) sum = (sum << 5) | values[i];
  if (sum != PhraseChecksum(values)) {
    return Status::InvalidArgument(
        "the recovery phrase has a typo: its checksum does not match; check each group");
  }
  MasterKey key;
  uint32_t acc = values[0] & 1;  // the key's top bit shares the first character
  int bits = 1;
  size_t k = 0;
  for (int i = 1; i < kKeyChars; ++i) {
    acc = (acc << 5) | values[i];
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      key.key.mutable_data()[k++] = static_cast<uint8_t>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (k != 32 || bits != 0) std::abort();  // 1 + 51 * 5 = 256 bits exactly
  return key;
}

}  // namespace shardfs::crypto

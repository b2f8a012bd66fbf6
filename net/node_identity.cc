#include "net/node_identity.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <sys/stat.h>

#include "base/file.h"
#include "crypto/hash.h"

namespace shardfs::net {

namespace {

// magic "SFNK", version 1, the 32-byte seed, the first 4 bytes of SHA-256 of what precedes.
constexpr uint8_t kMagic[4] = {'S', 'F', 'N', 'K'};
constexpr uint8_t kVersion = 1;
constexpr size_t kFileSize = 4 + 1 + 32 + 4;

}  // namespace

Result<crypto::SigningKey> LoadOrCreateNodeKey(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("create data folder " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  std::string path = dir + "/" + kNodeKeyFile;
  crypto::SecretBytes<kFileSize> raw;
  auto n = ReadFileInto(path, raw.mutable_span());
  if (!n.ok() && n.status().code() == Code::kNotFound) {
    crypto::SigningKey key = crypto::SigningKey::Generate();
    crypto::SecretBytes<kFileSize> out;
    uint8_t* p = out.mutable_data();
    std::memcpy(p, kMagic, 4);
    p[4] = kVersion;
    std::memcpy(p + 5, key.seed().data(), 32);
    crypto::Digest256 sum = crypto::Sha256(ByteSpan(p, 37));
    std::memcpy(p + 37, sum.data(), 4);
    SFS_RETURN_IF_ERROR(WriteFileAtomic(path, out.span(), 0600));
    return key;
  }
  if (!n.ok()) {
    if (n.status().code() == Code::kOutOfRange) {
      return Status::Corruption(path + " is not a shardfs node key (too long)");
    }
    return n.status();
  }
  const uint8_t* p = raw.data();
  if (*n != kFileSize || std::memcmp(p, kMagic, 4) != 0) {
    return Status::Corruption(path + " is not a shardfs node key");
  }
  // The checksum first: a damaged version byte is damage, not a newer format.
  crypto::Digest256 sum = crypto::Sha256(ByteSpan(p, 37));
  if (std::memcmp(sum.data(), p + 37, 4) != 0) {
    return Status::Corruption(path + " is damaged (checksum mismatch)");
  }
  if (p[4] != kVersion) {
    return Status::NotSupported(path + " is a node key of version " + std::to_string(p[4]) +
                                ", which this build cannot read");
  }
  crypto::SecretKey seed;
  std::memcpy(seed.mutable_data(), p + 5, 32);
  return crypto::SigningKey::FromSeed(seed);
}

}  // namespace shardfs::net

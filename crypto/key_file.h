// The key file (where a drive's master key is kept on disk) and the recovery phrase (how a
// person writes it down). Both formats are specified in docs/format.md.
//
// Key file v1: a small binary file, mode 0600, holding the master key either as it is or
// wrapped under a passphrase (Argon2id via crypto_pwhash, then XChaCha20-Poly1305), with a
// checksum so damage is told apart from a wrong passphrase.
//
// Recovery phrase v1: the master key as 14 groups of 4 characters of Crockford's base32
// (digits and letters without I, L, O, U), the last group a 20-bit checksum, e.g.
// "2F7K-...-Q0ZM". Case does not matter, and I/L read as 1, O as 0; a typo is detected
// except with probability 2^-20.
//
// Thread safety: all functions are thread-safe.

#ifndef SHARDFS_CRYPTO_KEY_FILE_H_
#define SHARDFS_CRYPTO_KEY_FILE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/keys.h"

namespace shardfs::crypto {

// Argon2id cost of a passphrase-protected key file.
struct PassphraseParams {
  // Passes over memory. Default: libsodium's "moderate" (about 0.5-1 s on a desktop).
  uint64_t opslimit = 3;
  // Memory in bytes. Default: 256 MiB.
  uint64_t memlimit = uint64_t{256} << 20;

  // Cheaper settings (2 passes, 64 MiB) for tests and interactive tools.
  static PassphraseParams Interactive() { return {2, uint64_t{64} << 20}; }
};

// Bounds a key file may ask for; a file outside them is refused as corrupt, so a crafted key
// file cannot make shardfs allocate unbounded memory or spin for hours.
inline constexpr uint64_t kMaxKeyFileOpsLimit = 64;
inline constexpr uint64_t kMaxKeyFileMemLimit = uint64_t{4} << 30;
// The least a new key file may use (libsodium's "interactive" costs): anything cheaper makes
// guessing passphrases too easy. Readers accept down to libsodium's minimum.
inline constexpr uint64_t kMinWriteOpsLimit = 2;
inline constexpr uint64_t kMinWriteMemLimit = uint64_t{64} << 20;
// A key file is never larger than this.
inline constexpr size_t kMaxKeyFileSize = 4096;

// Serializes `key`. Without a passphrase the key is stored in the clear (protect the file by
// its mode); with one, it is wrapped. InvalidArgument for an empty passphrase or params below
// kMinWrite* or above kMaxKeyFile*. NoSpace if Argon2id cannot get its memory.
Result<Bytes> EncodeKeyFile(const MasterKey& key, const std::optional<std::string>& passphrase,
                            const PassphraseParams& params = {});

struct KeyFileInfo {
  int version = 0;
  bool passphrase_protected = false;
};

// Checks the format, checksum and passphrase cost bounds without unwrapping. Corruption for
// damage, a truncated file or costs out of bounds; NotSupported for a newer format version.
Result<KeyFileInfo> InspectKeyFile(ByteSpan file);

// Parses a key file. Corruption: damaged or truncated (checksum, magic, sizes, bounds).
// NotSupported: a newer version. PermissionDenied: the file is passphrase-protected and no
// passphrase was given, or the passphrase is wrong. NoSpace: no memory for Argon2id.
// A passphrase given for an unprotected file is not needed; *info (if not null) says whether
// the file was protected, so a caller that expected protection can warn that it is gone.
Result<MasterKey> DecodeKeyFile(ByteSpan file, const std::optional<std::string>& passphrase,
                                KeyFileInfo* info = nullptr);

// Writes the key file at `path` atomically with mode 0600.
Status WriteKeyFile(const std::string& path, const MasterKey& key,
                    const std::optional<std::string>& passphrase,
                    const PassphraseParams& params = {});
// Reads and decodes the key file at `path` (errors as ReadFile and DecodeKeyFile). The file's
// bytes are read into a fixed buffer and wiped: no copy of the key is left in freed memory.
Result<MasterKey> ReadKeyFile(const std::string& path, const std::optional<std::string>& passphrase,
                              KeyFileInfo* info = nullptr);

// The recovery phrase of `key`: 14 dash-separated groups of 4 characters.
std::string ToRecoveryPhrase(const MasterKey& key);

// Parses a recovery phrase typed by a person: case-insensitive; spaces and dashes anywhere are
// ignored; I and L read as 1, O as 0. InvalidArgument, with a message that says what is
// wrong (a character not used in phrases, too few or too many characters, or a typo caught by
// the checksum).
Result<MasterKey> FromRecoveryPhrase(std::string_view phrase);

}  // namespace shardfs::crypto

#endif  // SHARDFS_CRYPTO_KEY_FILE_H_

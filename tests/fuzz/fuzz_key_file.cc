// Fuzz target: the key file parser and the recovery phrase parser, on files and text a user
// (or an attacker who can write to their config folder) supplies.
//
// The key file's checksum would stop almost every mutation at the door, so each input is also
// parsed with its checksum recomputed, to reach the field checks behind it. No passphrase is
// given, so an input never makes the target run Argon2 (whose cost bounds are unit-tested).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/hash.h"
#include "crypto/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  ByteSpan in(data, size);
  (void)crypto::InspectKeyFile(in);
  (void)crypto::DecodeKeyFile(in, std::nullopt);
  if (size > 32 && size <= crypto::kMaxKeyFileSize) {
    Bytes fixed(in.begin(), in.end());
    crypto::Digest256 sum = crypto::Blake2b256(ByteSpan(fixed).first(size - 32));
    std::copy(sum.begin(), sum.end(), fixed.end() - 32);
    (void)crypto::InspectKeyFile(fixed);
    (void)crypto::DecodeKeyFile(fixed, std::nullopt);
  }
  (void)crypto::FromRecoveryPhrase(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}

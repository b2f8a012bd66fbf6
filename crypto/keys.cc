#include "crypto/keys.h"

#include <sodium.h>

namespace shardfs::crypto {

static_assert(crypto_kdf_KEYBYTES == SecretKey::kSize);
static_assert(crypto_kdf_CONTEXTBYTES == 8);

SecretKey DeriveSubKey(const MasterKey& master, SubKey purpose) {
  (void)Init();
  SecretKey out;
  crypto_kdf_derive_from_key(out.mutable_data(), out.kSize, static_cast<uint64_t>(purpose),
                             "shardfs1", master.key.data());
  return out;
}

DriveKeys DriveKeys::Derive(const MasterKey& master) {
  return DriveKeys{
      DeriveSubKey(master, SubKey::kChunkId), DeriveSubKey(master, SubKey::kChunkEncryption),
      DeriveSubKey(master, SubKey::kPackIndex), DeriveSubKey(master, SubKey::kCatalogEncryption),
      DeriveSubKey(master, SubKey::kChunkerSeed)};
}

SecretKey DeriveItemKey(const SecretKey& parent, std::string_view purpose, ByteSpan id) {
  (void)Init();
  crypto_generichash_state st;
  crypto_generichash_init(&st, parent.data(), parent.kSize, SecretKey::kSize);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(purpose.data()), purpose.size());
  const uint8_t zero = 0;
  crypto_generichash_update(&st, &zero, 1);
  crypto_generichash_update(&st, id.data(), id.size());
  SecretKey out;
  crypto_generichash_final(&st, out.mutable_data(), out.kSize);
  SecureZero(&st, sizeof(st));
  return out;
}

}  // namespace shardfs::crypto

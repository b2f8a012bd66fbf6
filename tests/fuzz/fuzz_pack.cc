// Fuzz target: the pack parser, on bytes from the network (a shard set) or a damaged disk.
//
// Input byte 0 picks what is parsed:
//   even: the rest is a whole pack, read with a fixed key and id (exercises the trailer and
//         index parsing up to authentication);
//   odd:  the rest is an index plaintext (as if it had authenticated), bytes 1..8 its claimed
//         index offset, byte 9 the cipher: exercises the entry checks behind the AEAD.
// Neither may crash, hang or read out of bounds, whatever the bytes.

#include <cstddef>
#include <cstdint>

#include "backend/pack.h"
#include "crypto/secret.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  if (size == 0) return 0;
  static const crypto::SecretKey key = crypto::SecretKey::FromBytes(Bytes(32, 0x42)).value();
  static const PackId id = PackId::FromBytes(Bytes(16, 0x17)).value();
  ByteSpan in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    (void)backend::ReadPackIndex(in, id, key);
    return 0;
  }
  if (in.size() < 9) return 0;
  uint64_t offset = LoadLE64(in.data());
  auto cipher = crypto::CipherFromByte(in[8]);
  if (!cipher.ok()) return 0;
  (void)backend::ParsePackIndexEntries(in.subspan(9), offset, *cipher);
  return 0;
}

// Packs: many sealed chunks in one object, the unit that is erasure-coded into shards
// (docs/format.md, "Pack").
//
// pack v1 = sealed chunk* || sealed index || sealed trailer || cipher (1) || version (1)
//   sealed index   = nonce || AEAD(kp, nonce, "shardfs pack index" || pack id || version ||
//                    cipher, index)
//   index          = le32 count || count * entry
//   entry (52 B)   = chunk id (32) || le64 offset || le32 sealed size || le32 plaintext size
//                    || codec (1) || 3 zero bytes
//   sealed trailer = nonce || AEAD(kp, nonce, "shardfs pack trailer" || pack id || version ||
//                    cipher, le64 index offset || le64 index size)
//   kp             = DeriveItemKey(pack index sub-key, "shardfs pack v1", pack id)
// Chunks lie back to back from offset 0 to the index. Only the last two bytes are in the
// clear; the number of chunks and their boundaries are not. The catalog knows each chunk's
// place, so reads never need the index; it is there to check a pack whole, rebuild the
// catalog's view of a pack, and collect garbage.
//
// Thread safety: PackWriter is used by one thread at a time; the free functions are
// thread-safe.

#ifndef SHARDFS_BACKEND_PACK_H_
#define SHARDFS_BACKEND_PACK_H_

#include <cstdint>
#include <vector>

#include "backend/chunk_codec.h"
#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/secret.h"

namespace shardfs::backend {

inline constexpr uint8_t kPackFormatVersion = 1;
inline constexpr size_t kPackIndexEntrySize = 52;

// Where a chunk lies in its pack.
struct PackEntry {
  ChunkId id;
  uint64_t offset = 0;
  uint32_t sealed_size = 0;
  uint32_t plain_size = 0;
  ChunkCodec codec = ChunkCodec::kRaw;

  friend bool operator==(const PackEntry&, const PackEntry&) = default;
};

// Builds one pack in memory.
class PackWriter {
 public:
  // `buffer` is reused (cleared) so a caller can recycle its allocation from pack to pack.
  PackWriter(const ChunkSealer& sealer, const crypto::SecretKey& pack_index_key, PackId id,
             Bytes buffer = {});

  // Seals `plaintext` as chunk `id` and appends it. Errors as ChunkSealer::Seal.
  Result<PackEntry> Add(const ChunkId& id, ByteSpan plaintext);

  // Bytes of sealed chunks so far.
  size_t size() const { return buffer_.size(); }
  size_t chunk_count() const { return entries_.size(); }
  const std::vector<PackEntry>& entries() const { return entries_; }
  const PackId& id() const { return id_; }

  // Appends the index and trailer and returns the finished pack. The writer is empty after.
  Result<Bytes> Finish();

 private:
  const ChunkSealer& sealer_;
  crypto::SecretKey pack_key_;
  PackId id_;
  Bytes buffer_;
  std::vector<PackEntry> entries_;
};

// The decoded index of a pack.
struct PackIndex {
  crypto::Cipher cipher = crypto::Cipher::kAes256Gcm;
  uint64_t index_offset = 0;
  std::vector<PackEntry> entries;
};

// Authenticates and parses the index of `pack` (all its bytes, without shard padding).
// Corruption for damaged, truncated or forged bytes, or a pack of another id or key;
// NotSupported for a newer pack version. Never reads outside `pack`.
Result<PackIndex> ReadPackIndex(ByteSpan pack, const PackId& id,
                                const crypto::SecretKey& pack_index_key);

// Parses an index's plaintext (after authentication) and checks that its entries tile
// [0, index_offset) exactly with sizes the cipher allows. Exposed for tests and fuzzing.
Result<std::vector<PackEntry>> ParsePackIndexEntries(ByteSpan index, uint64_t index_offset,
                                                     crypto::Cipher cipher);

// A pack's key for its index and trailer.
crypto::SecretKey PackKey(const crypto::SecretKey& pack_index_key, const PackId& id);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_PACK_H_

// Sealing of chunks: optional compression (zstd, its one home) and AEAD encryption under a
// key of the chunk's own (docs/format.md, "Sealed chunk").
//
// sealed chunk v1 = nonce || AEAD(key, nonce, ad, body)            (ciphertext || 16-byte tag)
//   key  = DeriveItemKey(chunk encryption sub-key, "shardfs chunk v1", chunk id)
//   ad   = chunk id (32) || 0x01 (format version) || cipher || codec || le32(plaintext size)
//   body = the plaintext (codec 0) or one zstd frame of it (codec 1)
// Nothing about the chunk is in the clear: a node holding a shard of a pack sees random bytes
// and cannot tell where chunks start or how long they are. Codec and sizes live in the
// (encrypted) pack index and the catalog, and the associated data binds them, so a chunk
// opened with the wrong id, cipher, codec or size fails authentication.
//
// Thread safety: a ChunkSealer is immutable; Seal and Open may be called from many threads.

#ifndef SHARDFS_BACKEND_CHUNK_CODEC_H_
#define SHARDFS_BACKEND_CHUNK_CODEC_H_

#include <cstdint>

#include "base/bytes.h"
#include "base/ids.h"
#include "base/status.h"
#include "crypto/aead.h"
#include "crypto/secret.h"

namespace shardfs::backend {

// Stored in pack indexes: do not renumber.
enum class ChunkCodec : uint8_t {
  kRaw = 0,
  kZstd = 1,
};

Result<ChunkCodec> ChunkCodecFromByte(uint8_t value);

enum class Compression {
  kOff,   // never compress
  kAuto,  // compress when a sample shows it pays (text, logs, documents; not media)
};

struct ChunkSealOptions {
  // Cipher for new chunks: AES-256-GCM where the CPU has AES instructions, else
  // XChaCha20-Poly1305.
  crypto::Cipher cipher = crypto::PreferredCipher();
  Compression compression = Compression::kAuto;
  // zstd level when compressing; 1 is fast enough to stay off the critical path.
  int zstd_level = 1;
};

struct SealedChunkInfo {
  uint32_t sealed_size = 0;
  uint32_t plain_size = 0;
  ChunkCodec codec = ChunkCodec::kRaw;
};

class ChunkSealer {
 public:
  ChunkSealer(const crypto::SecretKey& chunk_encryption_key, const ChunkSealOptions& options)
      : key_(chunk_encryption_key), options_(options) {}

  // The most bytes Seal writes for a plaintext of `plain_size` bytes (compression is only
  // used when it makes the chunk smaller).
  static size_t MaxSealedSize(size_t plain_size, crypto::Cipher cipher) {
    return plain_size + crypto::AeadBoxOverhead(cipher);
  }
  // The overhead of a raw chunk.
  static size_t Overhead(crypto::Cipher cipher) { return MaxSealedSize(0, cipher); }

  // Seals `plaintext` (the chunk whose id is `id`) into out[0, info.sealed_size).
  // REQUIRES: out.size() >= MaxSealedSize(plaintext.size(), options.cipher).
  // InvalidArgument if the chunk is larger than kMaxChunkSize or `out` is too small.
  Result<SealedChunkInfo> Seal(const ChunkId& id, ByteSpan plaintext, MutableByteSpan out) const;

  // Opens a sealed chunk into `out`, whose size must be the chunk's plaintext size.
  // Corruption if authentication fails (wrong bytes, id, cipher, codec or size) or the
  // decompressed size differs; InvalidArgument for impossible sizes.
  Status Open(crypto::Cipher cipher, const ChunkId& id, ChunkCodec codec, ByteSpan sealed,
              MutableByteSpan out) const;

  const ChunkSealOptions& options() const { return options_; }

 private:
  crypto::SecretKey ChunkKey(const ChunkId& id) const;

  crypto::SecretKey key_;
  ChunkSealOptions options_;
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_CHUNK_CODEC_H_

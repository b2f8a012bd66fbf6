#include "backend/chunk_codec.h"

#include <optional>

#include <zstd.h>

#include "backend/chunker.h"
#include "crypto/keys.h"

namespace shardfs::backend {

namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr size_t kAdSize = 32 + 1 + 1 + 1 + 4;
// Compression must save at least 1/16 of the chunk to be kept.
constexpr size_t kMinSavingShift = 4;
// Chunks at least this big are first probed on a sample of this size.
constexpr size_t kProbeSize = size_t{64} * 1024;

void MakeAd(uint8_t ad[kAdSize], const ChunkId& id, crypto::Cipher cipher, ChunkCodec codec,
            uint32_t plain_size) {
  std::memcpy(ad, id.data(), 32);
  ad[32] = kFormatVersion;
  ad[33] = static_cast<uint8_t>(cipher);
  ad[34] = static_cast<uint8_t>(codec);
  StoreLE32(ad + 35, plain_size);
}

// Scratch space for compression, one per thread so concurrent sealers don't allocate. It
// holds plaintext (compressed) while in use: ScratchUse wipes what it used when done.
Bytes& Scratch() {
  thread_local Bytes scratch;
  return scratch;
}

class ScratchUse {
 public:
  ScratchUse() = default;
  ~ScratchUse() {
    Bytes& s = Scratch();
    crypto::SecureZero(s.data(), s.size());
  }
  ScratchUse(const ScratchUse&) = delete;
  ScratchUse& operator=(const ScratchUse&) = delete;
};

// Compresses `in` into Scratch() if that saves enough; returns the compressed view or an empty
// span.
ByteSpan TryCompress(ByteSpan in, int level) {
  if (in.size() < 64) return {};
  Bytes& scratch = Scratch();
  if (in.size() >= 2 * kProbeSize) {
    // Media and encrypted files do not compress; a sample tells at a fraction of the cost.
    ByteSpan sample = in.subspan(in.size() / 2 - kProbeSize / 2, kProbeSize);
    scratch.resize(ZSTD_compressBound(sample.size()));
    size_t n = ZSTD_compress(scratch.data(), scratch.size(), sample.data(), sample.size(), level);
    if (ZSTD_isError(n) || n > sample.size() - (sample.size() >> kMinSavingShift)) return {};
  }
  scratch.resize(ZSTD_compressBound(in.size()));
  size_t n = ZSTD_compress(scratch.data(), scratch.size(), in.data(), in.size(), level);
  if (ZSTD_isError(n) || n > in.size() - (in.size() >> kMinSavingShift)) return {};
  return ByteSpan(scratch.data(), n);
}

}  // namespace

Result<ChunkCodec> ChunkCodecFromByte(uint8_t value) {
  switch (value) {
    case 0:
      return ChunkCodec::kRaw;
    case 1:
      return ChunkCodec::kZstd;
    default:
      return Status::Corruption("unknown chunk codec " + std::to_string(value));
  }
}

crypto::SecretKey ChunkSealer::ChunkKey(const ChunkId& id) const {
  return crypto::DeriveItemKey(key_, "shardfs chunk v1", id.span());
}

Result<SealedChunkInfo> ChunkSealer::Seal(const ChunkId& id, ByteSpan plaintext,
                                          MutableByteSpan out) const {
  const crypto::Cipher cipher = options_.cipher;
  if (plaintext.size() > kMaxChunkSize) return Status::InvalidArgument("chunk too large");
  if (out.size() < MaxSealedSize(plaintext.size(), cipher)) {
    return Status::InvalidArgument("output buffer too small for the sealed chunk");
  }
  ByteSpan body = plaintext;
  ChunkCodec codec = ChunkCodec::kRaw;
  std::optional<ScratchUse> scratch_use;
  if (options_.compression == Compression::kAuto) {
    scratch_use.emplace();
    ByteSpan compressed = TryCompress(plaintext, options_.zstd_level);
    if (!compressed.empty()) {
      body = compressed;
      codec = ChunkCodec::kZstd;
    }
  }
  uint8_t ad[kAdSize];
  MakeAd(ad, id, cipher, codec, static_cast<uint32_t>(plaintext.size()));
  MutableByteSpan sealed = out.first(MaxSealedSize(body.size(), cipher));
  SFS_RETURN_IF_ERROR(crypto::AeadSealBox(cipher, ChunkKey(id), ad, body, sealed));
  SealedChunkInfo info;
  info.sealed_size = static_cast<uint32_t>(sealed.size());
  info.plain_size = static_cast<uint32_t>(plaintext.size());
  info.codec = codec;
  return info;
}

Status ChunkSealer::Open(crypto::Cipher cipher, const ChunkId& id, ChunkCodec codec,
                         ByteSpan sealed, MutableByteSpan out) const {
  const size_t overhead = crypto::AeadBoxOverhead(cipher);
  if (out.size() > kMaxChunkSize || sealed.size() < overhead) {
    return Status::InvalidArgument("impossible sealed chunk size");
  }
  const size_t body_size = sealed.size() - overhead;
  if (codec == ChunkCodec::kRaw && body_size != out.size()) {
    return Status::Corruption("sealed chunk size does not match its plaintext size");
  }
  uint8_t ad[kAdSize];
  MakeAd(ad, id, cipher, codec, static_cast<uint32_t>(out.size()));
  crypto::SecretKey key = ChunkKey(id);
  if (codec == ChunkCodec::kRaw) return crypto::AeadOpenBox(cipher, key, ad, sealed, out);

  ScratchUse scratch_use;
  Bytes& scratch = Scratch();
  scratch.resize(body_size);
  SFS_RETURN_IF_ERROR(crypto::AeadOpenBox(cipher, key, ad, sealed, scratch));
  size_t n = ZSTD_decompress(out.data(), out.size(), scratch.data(), scratch.size());
  if (ZSTD_isError(n) || n != out.size()) {
    crypto::SecureZero(out.data(), out.size());
    return Status::Corruption("compressed chunk does not decompress to its size");
  }
  return Status::Ok();
}

}  // namespace shardfs::backend

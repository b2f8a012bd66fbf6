#include "backend/pack.h"

#include <string_view>

#include "backend/chunker.h"
#include "crypto/keys.h"

namespace shardfs::backend {

namespace {

constexpr std::string_view kIndexLabel = "shardfs pack index";
constexpr std::string_view kTrailerLabel = "shardfs pack trailer";
constexpr size_t kTrailerPlainSize = 16;
// Clear bytes at the very end: cipher, version.
constexpr size_t kClearTailSize = 2;

Bytes MakeAd(std::string_view label, const PackId& id, crypto::Cipher cipher) {
  Bytes ad;
  ByteWriter w(&ad);
  w.Raw(AsBytes(label));
  w.Raw(id.span());
  w.U8(kPackFormatVersion);
  w.U8(static_cast<uint8_t>(cipher));
  return ad;
}

size_t SealedTrailerSize(crypto::Cipher cipher) {
  return kTrailerPlainSize + crypto::AeadBoxOverhead(cipher);
}

// Appends a box of `plaintext` to out.
Status AppendSealed(crypto::Cipher cipher, const crypto::SecretKey& key, ByteSpan ad,
                    ByteSpan plaintext, Bytes* out) {
  size_t at = out->size();
  out->resize(at + plaintext.size() + crypto::AeadBoxOverhead(cipher));
  return crypto::AeadSealBox(cipher, key, ad, plaintext, MutableByteSpan(*out).subspan(at));
}

Status OpenSealed(crypto::Cipher cipher, const crypto::SecretKey& key, ByteSpan ad, ByteSpan sealed,
                  Bytes* out) {
  if (sealed.size() < crypto::AeadBoxOverhead(cipher)) {
    return Status::Corruption("pack is truncated");
  }
  out->resize(sealed.size() - crypto::AeadBoxOverhead(cipher));
  return crypto::AeadOpenBox(cipher, key, ad, sealed, *out);
}

}  // namespace

crypto::SecretKey PackKey(const crypto::SecretKey& pack_index_key, const PackId& id) {
  return crypto::DeriveItemKey(pack_index_key, "shardfs pack v1", id.span());
}

PackWriter::PackWriter(const ChunkSealer& sealer, const crypto::SecretKey& pack_index_key,
                       PackId id, Bytes buffer)
    : sealer_(sealer), pack_key_(PackKey(pack_index_key, id)), id_(id), buffer_(std::move(buffer)) {
  buffer_.clear();
}

Result<PackEntry> PackWriter::Add(const ChunkId& id, ByteSpan plaintext) {
  size_t at = buffer_.size();
  buffer_.resize(at + ChunkSealer::MaxSealedSize(plaintext.size(), sealer_.options().cipher));
  Result<SealedChunkInfo> info = sealer_.Seal(id, plaintext, MutableByteSpan(buffer_).subspan(at));
  if (!info.ok()) {
    buffer_.resize(at);
    return info.status();
  }
  buffer_.resize(at + info->sealed_size);
  PackEntry e{id, at, info->sealed_size, info->plain_size, info->codec};
  entries_.push_back(e);
  return e;
}

Result<Bytes> PackWriter::Finish() {
  const crypto::Cipher cipher = sealer_.options().cipher;
  Bytes index;
  index.reserve(4 + entries_.size() * kPackIndexEntrySize);
  ByteWriter w(&index);
  w.U32(static_cast<uint32_t>(entries_.size()));
  for (const PackEntry& e : entries_) {
    w.Raw(e.id.span());
    w.U64(e.offset);
    w.U32(e.sealed_size);
    w.U32(e.plain_size);
    w.U8(static_cast<uint8_t>(e.codec));
    w.Zeros(3);
  }
  const uint64_t index_offset = buffer_.size();
  Status s = AppendSealed(cipher, pack_key_, MakeAd(kIndexLabel, id_, cipher), index, &buffer_);
  if (s.ok()) {
    uint8_t trailer[kTrailerPlainSize];
    StoreLE64(trailer, index_offset);
    StoreLE64(trailer + 8, buffer_.size() - index_offset);
    s = AppendSealed(cipher, pack_key_, MakeAd(kTrailerLabel, id_, cipher), trailer, &buffer_);
  }
  if (!s.ok()) {
    buffer_.resize(index_offset);  // as before the call: the writer can still be finished
    return s;
  }
  buffer_.push_back(static_cast<uint8_t>(cipher));
  buffer_.push_back(kPackFormatVersion);
  entries_.clear();
  return std::move(buffer_);
}

Result<std::vector<PackEntry>> ParsePackIndexEntries(ByteSpan index, uint64_t index_offset,
                                                     crypto::Cipher cipher) {
  ByteReader r(index);
  uint32_t count = 0;
  if (!r.U32(&count) || r.remaining() != static_cast<uint64_t>(count) * kPackIndexEntrySize) {
    return Status::Corruption("pack index has the wrong size for its entry count");
  }
  const size_t overhead = ChunkSealer::Overhead(cipher);
  std::vector<PackEntry> entries;
  entries.reserve(count);
  uint64_t expect_offset = 0;
  for (uint32_t i = 0; i < count; ++i) {
    PackEntry e;
    uint8_t raw_id[32];
    uint8_t codec = 0;
    uint8_t pad[3];
    r.Raw(raw_id);
    r.U64(&e.offset);
    r.U32(&e.sealed_size);
    r.U32(&e.plain_size);
    r.U8(&codec);
    r.Raw(pad);
    if (!r.ok()) return Status::Corruption("pack index is truncated");
    e.id = ChunkId::FromBytes(raw_id).value();
    SFS_ASSIGN_OR_RETURN(e.codec, ChunkCodecFromByte(codec));
    if (pad[0] != 0 || pad[1] != 0 || pad[2] != 0) {
      return Status::Corruption("pack index entry has non-zero padding");
    }
    // Compression is kept only when it shrinks a chunk, so no sealed chunk is larger than raw.
    if (e.offset != expect_offset || e.sealed_size < overhead || e.plain_size > kMaxChunkSize ||
        uint64_t{e.sealed_size} > uint64_t{e.plain_size} + overhead ||
        (e.codec == ChunkCodec::kRaw && e.sealed_size != e.plain_size + overhead)) {
      return Status::Corruption("pack index entry " + std::to_string(i) + " is inconsistent");
    }
    expect_offset += e.sealed_size;
    if (expect_offset > index_offset) {
      return Status::Corruption("pack index entries run past the index");
    }
    entries.push_back(e);
  }
  if (expect_offset != index_offset) {
    return Status::Corruption("pack index entries do not reach the index");
  }
  return entries;
}

Result<PackIndex> ReadPackIndex(ByteSpan pack, const PackId& id,
                                const crypto::SecretKey& pack_index_key) {
  if (pack.size() < kClearTailSize) return Status::Corruption("pack is truncated");
  // The version byte is read as a hint: a pack that is not version 1 but whose trailer
  // authenticates as version 1 (the version is in the associated data) is a damaged v1 pack,
  // not a newer one.
  const uint8_t version = pack[pack.size() - 1];
  if (version == 0) return Status::Corruption("bad pack version byte");
  const bool claims_newer = version > kPackFormatVersion;
  auto not_v1 = [&](Status damage) {
    if (!claims_newer) return damage;
    return Status::NotSupported("pack version " + std::to_string(version) +
                                " is newer than this shardfs understands");
  };
  Result<crypto::Cipher> cipher_or = crypto::CipherFromByte(pack[pack.size() - 2]);
  if (!cipher_or.ok()) return not_v1(cipher_or.status());
  const crypto::Cipher cipher = *cipher_or;
  const size_t trailer_size = SealedTrailerSize(cipher);
  if (pack.size() < kClearTailSize + trailer_size) {
    return not_v1(Status::Corruption("pack is truncated"));
  }
  const size_t trailer_at = pack.size() - kClearTailSize - trailer_size;
  crypto::SecretKey key = PackKey(pack_index_key, id);

  Bytes trailer;
  if (!OpenSealed(cipher, key, MakeAd(kTrailerLabel, id, cipher),
                  pack.subspan(trailer_at, trailer_size), &trailer)
           .ok()) {
    return not_v1(Status::Corruption("pack trailer fails authentication"));
  }
  if (claims_newer) return Status::Corruption("pack is damaged (its version byte)");
  uint64_t index_offset = LoadLE64(trailer.data());
  uint64_t index_size = LoadLE64(trailer.data() + 8);
  if (index_offset > trailer_at || index_size != trailer_at - index_offset) {
    return Status::Corruption("pack trailer points outside the pack");
  }
  Bytes index;
  if (!OpenSealed(cipher, key, MakeAd(kIndexLabel, id, cipher),
                  pack.subspan(index_offset, index_size), &index)
           .ok()) {
    return Status::Corruption("pack index fails authentication");
  }
  PackIndex out;
  out.cipher = cipher;
  out.index_offset = index_offset;
  SFS_ASSIGN_OR_RETURN(out.entries, ParsePackIndexEntries(index, index_offset, cipher));
  return out;
}

}  // namespace shardfs::backend

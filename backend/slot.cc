#include "backend/slot.h"

#include <cstring>
#include <string_view>

namespace shardfs::backend {

namespace {

constexpr uint8_t kMagic[4] = {'S', 'F', 'S', 'L'};
// Signatures are over a domain string first, so a slot signature is never valid as a request
// signature or anything else the same key signs.
constexpr std::string_view kDomain = "shardfs slot record v1\n";

Bytes SignedMessage(ByteSpan unsigned_part) {
  Bytes msg(kDomain.size() + unsigned_part.size());
  std::memcpy(msg.data(), kDomain.data(), kDomain.size());
  if (!unsigned_part.empty()) {
    std::memcpy(msg.data() + kDomain.size(), unsigned_part.data(), unsigned_part.size());
  }
  return msg;
}

}  // namespace

Result<Bytes> SignSlotRecord(const crypto::SigningKey& key, uint64_t sequence, ByteSpan value) {
  if (value.size() > kMaxSlotValue) {
    return Status::OutOfRange("slot value of " + std::to_string(value.size()) +
                              " bytes is over the limit of " + std::to_string(kMaxSlotValue));
  }
  Bytes out;
  out.reserve(kSlotRecordOverhead + value.size());
  ByteWriter w(&out);
  w.Raw(kMagic);
  w.U8(kSlotRecordVersion);
  w.Raw(key.public_key().span());
  w.U64(sequence);
  w.U32(static_cast<uint32_t>(value.size()));
  w.Raw(value);
  w.Raw(key.Sign(SignedMessage(out)));
  return out;
}

Result<SlotRecord> VerifySlotRecord(ByteSpan encoded) {
  if (encoded.size() < kSlotRecordOverhead) {
    return Status::InvalidArgument("slot record too short (" + std::to_string(encoded.size()) +
                                   " bytes)");
  }
  if (std::memcmp(encoded.data(), kMagic, 4) != 0) {
    return Status::InvalidArgument("not a slot record (bad magic)");
  }
  if (encoded[4] != kSlotRecordVersion) {
    return Status::NotSupported("slot record version " + std::to_string(encoded[4]) +
                                " is not supported (this build reads version 1)");
  }
  uint32_t value_len = LoadLE32(encoded.data() + 45);
  if (value_len > kMaxSlotValue) {
    return Status::InvalidArgument("slot record value of " + std::to_string(value_len) +
                                   " bytes is over the limit");
  }
  if (encoded.size() != kSlotRecordOverhead + value_len) {
    return Status::InvalidArgument("slot record length does not match its value length");
  }
  SlotRecord rec;
  rec.owner = crypto::PublicKey::FromBytes(encoded.subspan(5, 32)).value();
  rec.sequence = LoadLE64(encoded.data() + 37);
  size_t signed_len = 49 + value_len;
  crypto::Signature sig;
  std::memcpy(sig.data(), encoded.data() + signed_len, sig.size());
  if (!crypto::VerifySignature(rec.owner, SignedMessage(encoded.first(signed_len)), sig)) {
    return Status::PermissionDenied("slot record signature does not verify");
  }
  rec.value.assign(encoded.begin() + 49, encoded.begin() + 49 + value_len);
  return rec;
}

}  // namespace shardfs::backend

// Slot records: a small mutable value that an owner stores on storage nodes under its public
// key, signed, with a sequence number, so a node (or anyone) can check who wrote it and keep
// only the newest. The drive keeps its head pointer in one (docs/format.md, "Slot record").
//
// Thread safety: values and pure functions.

#ifndef SHARDFS_BACKEND_SLOT_H_
#define SHARDFS_BACKEND_SLOT_H_

#include <cstdint>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/sign.h"

namespace shardfs::backend {

inline constexpr uint8_t kSlotRecordVersion = 1;
// The largest value a slot holds.
inline constexpr size_t kMaxSlotValue = 16 * 1024;
// Fixed bytes around the value: magic, version, owner, sequence, value length, signature.
inline constexpr size_t kSlotRecordOverhead = 4 + 1 + 32 + 8 + 4 + 64;

struct SlotRecord {
  crypto::PublicKey owner;
  uint64_t sequence = 0;
  Bytes value;
};

// Encodes and signs `value` as the record with `sequence` of `key`'s owner.
// REQUIRES: value.size() <= kMaxSlotValue (checked: OutOfRange).
Result<Bytes> SignSlotRecord(const crypto::SigningKey& key, uint64_t sequence, ByteSpan value);

// Decodes `encoded` and checks its signature. InvalidArgument for a malformed record (wrong
// magic, short, trailing bytes, value too long), NotSupported for a newer version,
// PermissionDenied for a signature that does not verify.
Result<SlotRecord> VerifySlotRecord(ByteSpan encoded);

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_SLOT_H_

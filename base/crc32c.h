// CRC-32C (Castagnoli, the iSCSI polynomial 0x1EDC6F41, reflected; RFC 3720 appendix B.4):
// the checksum of the staging area's records (docs/format.md, "Staging segment"). It catches a
// record cut short or overwritten by a crash, not tampering. Computed with the CPU's crc32
// instruction where there is one (SSE4.2), else from a table.
//
// Thread safety: pure functions.

#ifndef SHARDFS_BASE_CRC32C_H_
#define SHARDFS_BASE_CRC32C_H_

#include <cstdint>

#include "base/bytes.h"

namespace shardfs {

// The CRC-32C of the bytes whose CRC-32C is `crc` followed by `data` (Crc32c(a || b) ==
// Crc32cExtend(Crc32c(a), b)).
uint32_t Crc32cExtend(uint32_t crc, ByteSpan data);

// The CRC-32C of `data` (of "123456789": 0xE3069283).
inline uint32_t Crc32c(ByteSpan data) { return Crc32cExtend(0, data); }

}  // namespace shardfs

#endif  // SHARDFS_BASE_CRC32C_H_

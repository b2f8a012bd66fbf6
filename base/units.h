// Byte sizes as people write them on command lines and in config files ("100G", "512MiB",
// "4096").
//
// Thread safety: pure functions.

#ifndef SHARDFS_BASE_UNITS_H_
#define SHARDFS_BASE_UNITS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace shardfs {

// Parses a whole number of bytes with an optional unit: none or B (bytes); K, M, G, T, P and
// KiB, MiB, GiB, TiB, PiB (powers of 1024); KB, MB, GB, TB, PB (powers of 1000). Units are
// case-insensitive; space between number and unit is allowed; a fraction is allowed with a
// unit ("1.5G"). InvalidArgument for anything else, OutOfRange above 2^63.
Result<uint64_t> ParseByteSize(std::string_view text);

// "1.5 GiB", "512 B": for logs and status output.
std::string FormatByteSize(uint64_t bytes);

}  // namespace shardfs

#endif  // SHARDFS_BASE_UNITS_H_

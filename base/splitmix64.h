// SplitMix64: a small, fast, well-mixed 64-bit generator (Steele, Lea and Flood, 2014). Not
// for secrets. The chunker's gear table is defined by it (docs/format.md, "Chunking"), and
// test data and golden values depend on its output, so it never changes.
//
// Thread safety: pure functions over caller-owned state.

#ifndef SHARDFS_BASE_SPLITMIX64_H_
#define SHARDFS_BASE_SPLITMIX64_H_

#include <cstdint>

#include "base/bytes.h"

namespace shardfs {

// The output function: a bijective mix of all 64 bits.
inline uint64_t SplitMix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Advances *state and returns the next output.
inline uint64_t SplitMix64Next(uint64_t* state) {
  return SplitMix64Mix(*state += 0x9e3779b97f4a7c15ull);
}

// Fills `out` with the outputs of a generator seeded with `seed`, each as 8 little-endian
// bytes (the last one cut short if out.size() is not a multiple of 8).
inline void FillSplitMix64(MutableByteSpan out, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = 0; i < out.size(); i += 8) {
    uint64_t z = SplitMix64Next(&state);
    size_t n = out.size() - i < 8 ? out.size() - i : 8;
    for (size_t j = 0; j < n; ++j) out[i + j] = static_cast<uint8_t>(z >> (8 * j));
  }
}

}  // namespace shardfs

#endif  // SHARDFS_BASE_SPLITMIX64_H_

#include "tests/testutil.h"

#include <cstring>

namespace shardfs::test {

void FillPseudoRandom(MutableByteSpan out, uint64_t seed) {
  uint64_t state = seed;
  size_t i = 0;
  while (i < out.size()) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    size_t n = out.size() - i < 8 ? out.size() - i : 8;
    for (size_t j = 0; j < n; ++j) out[i + j] = static_cast<uint8_t>(z >> (8 * j));
    i += n;
  }
}

Bytes PseudoRandomBytes(size_t n, uint64_t seed) {
  Bytes out(n);
  FillPseudoRandom(out, seed);
  return out;
}

}  // namespace shardfs::test

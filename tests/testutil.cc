#include "tests/testutil.h"

#include "base/splitmix64.h"

namespace shardfs::test {

void FillPseudoRandom(MutableByteSpan out, uint64_t seed) { FillSplitMix64(out, seed); }

Bytes PseudoRandomBytes(size_t n, uint64_t seed) {
  Bytes out(n);
  FillPseudoRandom(out, seed);
  return out;
}

}  // namespace shardfs::test

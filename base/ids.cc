#include "base/ids.h"

#include <cerrno>
#include <cstdlib>

#include <sys/random.h>

#include "base/splitmix64.h"

namespace shardfs {

namespace {

uint64_t Seed() {
  static const uint64_t seed = [] {
    uint64_t s = 0;
    ssize_t n;
    do {
      n = ::getrandom(&s, sizeof(s), 0);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof(s))) std::abort();  // no entropy: nothing is safe
    return s;
  }();
  return seed;
}

}  // namespace

size_t KeyedIdHash(const uint8_t* data, size_t size) {
  uint64_t h = Seed() ^ size;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = SplitMix64Mix(h ^ w);
  }
  for (; i < size; ++i) h = SplitMix64Mix(h ^ data[i]);
  return static_cast<size_t>(h);
}

}  // namespace shardfs

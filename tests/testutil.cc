#include "tests/testutil.h"

#include <cstdlib>
#include <filesystem>

#include <unistd.h>

#include "base/splitmix64.h"

namespace shardfs::test {

void FillPseudoRandom(MutableByteSpan out, uint64_t seed) { FillSplitMix64(out, seed); }

Bytes PseudoRandomBytes(size_t n, uint64_t seed) {
  Bytes out(n);
  FillPseudoRandom(out, seed);
  return out;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != 0 ? base : "/tmp") + "/shardfs-test-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace shardfs::test

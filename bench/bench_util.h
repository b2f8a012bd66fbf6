// Helpers the benchmarks share.

#ifndef SHARDFS_BENCH_BENCH_UTIL_H_
#define SHARDFS_BENCH_BENCH_UTIL_H_

#include <fstream>
#include <string>

namespace shardfs::bench {

// The CPU's model name from /proc/cpuinfo, for the report's header.
inline std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace shardfs::bench

#endif  // SHARDFS_BENCH_BENCH_UTIL_H_

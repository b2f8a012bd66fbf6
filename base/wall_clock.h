// Wall-clock time as the drive keeps it (inode times, journal entries, node health): whole
// nanoseconds since the Unix epoch, and its conversion to and from POSIX `timespec`.
//
// Thread safety: pure functions (WallClockNs reads the system clock).

#ifndef SHARDFS_BASE_WALL_CLOCK_H_
#define SHARDFS_BASE_WALL_CLOCK_H_

#include <chrono>
#include <cstdint>

#include <time.h>

namespace shardfs {

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;

// Now, in nanoseconds since the Unix epoch.
inline int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t TimespecToNs(const timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * kNanosPerSecond + t.tv_nsec;
}

// tv_nsec stays in [0, 1e9) for times before the epoch too, as utimensat requires.
inline timespec NsToTimespec(int64_t ns) {
  int64_t sec = ns / kNanosPerSecond;
  int64_t rem = ns % kNanosPerSecond;
  if (rem < 0) {
    rem += kNanosPerSecond;
    --sec;
  }
  return timespec{static_cast<time_t>(sec), static_cast<long>(rem)};
}

}  // namespace shardfs

#endif  // SHARDFS_BASE_WALL_CLOCK_H_

// A shardfs drive as a user meets it, for the benchmarks that go through the mount (bench/fuse,
// bench/api): storage node processes on loopback, a drive made with `shardfs init`, mounted
// with `shardfs mount` (the daemon) and unmounted with `shardfs umount`, which returns once
// every write is stored on the nodes.
//
// Thread safety: for one thread.

#ifndef SHARDFS_BENCH_BENCH_DRIVE_H_
#define SHARDFS_BENCH_BENCH_DRIVE_H_

#include <string>
#include <vector>

#include <sys/types.h>

#include "bench/bench_util.h"

namespace shardfs::bench {

class BenchDrive {
 public:
  // Starts `nodes` nodes (each may take `capacity` bytes) under `root` and makes the drive
  // RS(`k`,`m`) in `root`/home, to be mounted at `root`/mnt with `mount_flags` added. Every
  // command may take `timeout` seconds; their output goes to files in `scratch`.
  BenchDrive(const std::string& shardfs, const std::string& root, const std::string& scratch,
             int nodes, int k, int m, uint64_t capacity, int timeout,
             std::vector<std::string> mount_flags = {});
  // Unmounts (or, if that fails, detaches the mount and kills the daemon); the nodes stop.
  ~BenchDrive();
  BenchDrive(const BenchDrive&) = delete;
  BenchDrive& operator=(const BenchDrive&) = delete;

  void Mount();
  // `shardfs umount`; fails the run unless it says every write is stored on the nodes.
  void Unmount();
  bool mounted() const { return mounted_; }
  // Empties the chunk cache (unmounted): a read then fetches from the nodes.
  void ClearCache();

  // `shardfs ARGS --home HOME`.
  CommandResult Run(std::vector<std::string> args);
  const std::string& home() const { return home_; }
  const std::string& mountpoint() const { return mountpoint_; }
  // The mount daemon's peak RSS so far (VmHWM), KiB; -1 if unknown.
  long DaemonPeakKiB() const;

 private:
  const std::string shardfs_, home_, mountpoint_, scratch_;
  const int timeout_;
  const std::vector<std::string> mount_flags_;
  LocalNodes nodes_;  // stopped after the daemon, by its own destructor
  bool mounted_ = false;
  pid_t daemon_ = -1;
};

}  // namespace shardfs::bench

#endif  // SHARDFS_BENCH_BENCH_DRIVE_H_

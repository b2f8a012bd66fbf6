// Helpers the benchmarks share: timing, a temporary folder removed on every exit path, the
// cleanup of an interrupted run, the raw fsync'd write baseline (bench/node, bench/engine) and
// the write pipeline's figure (bench/pipeline, bench/engine).
//
// Thread safety: ParallelFor runs its function on many threads; the leftovers registry
// (SetLeftovers, WatchForInterrupt) is guarded by a mutex; the rest is for one thread.

#ifndef SHARDFS_BENCH_BENCH_UTIL_H_
#define SHARDFS_BENCH_BENCH_UTIL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "backend/pack_pipeline.h"
#include "base/bytes.h"
#include "base/status.h"
#include "crypto/keys.h"

namespace shardfs::bench {

// The CPU's model name from /proc/cpuinfo, for the report's header.
std::string CpuModel();

// The benchmark's own failures (not the figures it measures) end the run by throwing; the
// guards (TempDir, NodeProcess) still stop processes and remove folders on the way out.
[[noreturn]] void Fail(const std::string& what);
void Check(const Status& s, const std::string& what);

// Median wall time in seconds of `runs` runs of fn, after one warm-up run.
double MedianSeconds(int runs, const std::function<void()>& fn);
// The median of `v` (the upper one of an even count). REQUIRES: !v.empty().
double Median(std::vector<double> v);

// The folder to make temporary folders in: `preferred` (the build folder, on the disk the
// project builds on; a tmpfs $TMPDIR would measure memory, not a disk) if it exists, else
// $TMPDIR, else /tmp.
std::string DefaultDir(const std::string& preferred);
// "ext4", "xfs", "tmpfs", ... or the magic number in hex.
std::string FsType(const std::string& path);

// Runs fn(worker, item) for items [0, count) on `threads` threads, each taking the next item;
// returns the first failure (the other workers stop taking items).
Status ParallelFor(int threads, size_t count, const std::function<Status(int, size_t)>& fn);

// A folder `parent`/`prefix`.XXXXXX, removed with all in it when destroyed unless `keep`.
class TempDir {
 public:
  TempDir(const std::string& parent, const std::string& prefix, bool keep);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool keep_;
};

// --- interruption ------------------------------------------------------------------------

// What an interrupted run leaves behind: processes to stop (by pid) and a folder to remove.
// Blocks SIGINT, SIGTERM and SIGHUP in every thread (call it before starting any) and waits
// for one on a thread of its own: then sends SIGTERM to every pid registered (SIGKILL after
// 5 s), removes the folder and exits with 130. `name` prefixes its message.
void WatchForInterrupt(const std::string& name);
// Replaces what the watcher cleans up. An empty `dir` removes nothing.
void SetLeftovers(std::vector<pid_t> pids, const std::string& dir);

// --- the raw disk write baseline ---------------------------------------------------------

// Writes `data` as the new file `path`: write, fsync, close.
Status RawWrite(const std::string& path, ByteSpan data);
// syncfs of the file system `dir` is on: a write run starts with nothing dirty.
void SyncFs(const std::string& dir);
// Writes `bytes` to a scratch file in `dir` and deletes it before it is written back, so the
// page cache a write run fills finds memory the host backs (see bench/node and
// docs/bench.md: on the reference machine the host takes back freed memory, and the first
// write into it costs several times more).
void Prefault(const std::string& dir, uint64_t bytes);

// One raw write run: `count` files of `data` (the same bytes each) written as new files
// (RawWrite) in `dir` on `threads` threads after SyncFs and Prefault, then deleted. Returns
// the run's wall time in seconds (the deletion not included).
double TimeRawWrite(const std::string& dir, ByteSpan data, size_t count, int threads);

// --- the write pipeline ------------------------------------------------------------------

// Median seconds of `runs` runs (after a warm-up) of backend::WritePipeline over `input` on
// `threads` threads with `options` (a drive's defaults unless changed), its packs dropped.
double TimeWritePipeline(const crypto::DriveKeys& keys, backend::WritePipelineOptions options,
                         ByteSpan input, int threads, int runs);

}  // namespace shardfs::bench

#endif  // SHARDFS_BENCH_BENCH_UTIL_H_

// Helpers the benchmarks share: timing, a temporary folder removed on every exit path, the
// cleanup of an interrupted run, child processes run by pid with bounded waits (bench/engine,
// bench/fuse), the random files and small-file trees they write and compare, the raw fsync'd
// write baseline (bench/node, bench/engine), the write pipeline's figure (bench/pipeline,
// bench/engine) and the targets' report.
//
// Thread safety: ParallelFor runs its function on many threads; the leftovers registry
// (the *Leftover* functions, WatchForInterrupt) is guarded by a mutex; the rest is for one
// thread.

#ifndef SHARDFS_BENCH_BENCH_UTIL_H_
#define SHARDFS_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <sys/time.h>
#include <sys/types.h>

#include "backend/pack_pipeline.h"
#include "base/bytes.h"
#include "base/status.h"
#include "crypto/keys.h"
#include "tests/node_process.h"

// The shardfs binary and the build folder, as CMake gives them to each bench (bench/CMakeLists)
// and otherwise: the binary on the PATH, and DefaultDir's other choices.
#ifndef SHARDFS_BINARY
#define SHARDFS_BINARY "shardfs"
#endif
#ifndef SHARDFS_BENCH_DIR
#define SHARDFS_BENCH_DIR ""
#endif

namespace shardfs::bench {

// The CPU's model name from /proc/cpuinfo, for the report's header.
std::string CpuModel();

// The benchmark's own failures (not the figures it measures) end the run by throwing; the
// guards (TempDir, NodeProcess) still stop processes and remove folders on the way out.
[[noreturn]] void Fail(const std::string& what);
void Check(const Status& s, const std::string& what);

// Seconds since `start` on the steady clock.
double SecondsSince(std::chrono::steady_clock::time_point start);
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

// A folder `parent`/`prefix`.XXXXXX, removed with all in it when destroyed unless `keep` (a
// mount left below it is detached first, not walked into).
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

// What an interrupted run leaves behind: mounts to detach, processes to stop (by pid; children
// or not) and a folder to remove. Blocks SIGINT, SIGTERM and SIGHUP in every thread (call it
// before starting any) and waits for one on a thread of its own: then detaches every mount
// registered (umount2 MNT_DETACH), sends SIGTERM to every pid (SIGKILL to those still alive
// after 5 s), removes the folder (detaching any mount still below it) and exits with 130.
// From then on the main thread blocks at its next call that registers or starts a process.
// `name` prefixes its message.
void WatchForInterrupt(const std::string& name);
// Returns at once, unless an interrupt is being handled: then blocks until the watcher ends
// the process. Call it before main returns or reports a failure, so that neither cuts the
// cleanup short (a command interrupted with the run fails it too).
void WaitIfInterrupted();
// A benchmark's body under the watcher (WatchForInterrupt(name), so call it before starting
// any thread): its exit status, or 1 with "NAME: WHAT" on stderr if it failed (threw); either
// way once an interrupt's cleanup, if one came, is done.
int RunWatched(const std::string& name, const std::function<int()>& run);
// What the watcher cleans up. Adding a pid or mount twice registers it once; removing one not
// registered does nothing. An empty folder removes nothing.
void AddLeftoverPid(pid_t pid);
void RemoveLeftoverPid(pid_t pid);
void AddLeftoverMount(const std::string& mountpoint);
void RemoveLeftoverMount(const std::string& mountpoint);
void SetLeftoverDir(const std::string& dir);

// --- processes ---------------------------------------------------------------------------

// Seconds in a timeval (rusage times).
double TimevalSeconds(const timeval& t);

// True while `pid` runs: a child that has not exited (one that has is reaped by the check, its
// status lost), or another process that exists. False for pid <= 0.
bool Alive(pid_t pid);

// Starts argv (looked up in $PATH unless it holds a '/') with stdin from /dev/null and stdout
// and stderr on the given descriptors, every signal unblocked (WatchForInterrupt blocks them
// in this process), and `death_signal` sent to it if this thread's process dies; registers it
// as a leftover (RemoveLeftoverPid once it is reaped). Returns the pid; fails the run if fork
// fails. An exec that fails exits with 127.
pid_t Spawn(const std::vector<std::string>& argv, int out_fd, int err_fd, int death_signal);

struct CommandResult {
  int status = 0;          // the waitpid status
  double seconds = 0;      // wall time from fork to exit
  double cpu_seconds = 0;  // the command's user + system time (wait4)
  std::string out, err;    // what it printed ("" for a discarded stdout)
};

struct CommandOptions {
  // Seconds the command may take; then it is killed (SIGKILL) and the run fails.
  int timeout = 600;
  // Fail the run unless the command exits with 0.
  bool check = true;
  // Send stdout to /dev/null instead of keeping it.
  bool discard_out = false;
};

// Runs argv to its end (registered as a leftover while it runs), its output in files of
// `scratch` (cmd.out, cmd.err, read back into the result).
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& scratch,
                         const CommandOptions& options = CommandOptions());
// "dd if=x of=y": argv for messages.
std::string CommandLine(const std::vector<std::string>& argv);

// A long-running child (a FUSE daemon in the foreground, say) with its stdout and stderr in
// `log`, registered as a leftover while it runs. The destructor stops it (SIGTERM, 10 s, then
// SIGKILL).
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // REQUIRES: not running.
  void Start(const std::vector<std::string>& argv, const std::string& log, int death_signal);
  // Waits up to `limit` for the child to exit on its own; true if it did (it is reaped).
  bool Wait(std::chrono::milliseconds limit);
  // Sends `sig`, waits up to `grace`, then SIGKILL and reaps. Returns the wait status, or -1
  // if it was not running.
  int Stop(int sig, std::chrono::milliseconds grace);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The last `n` bytes of its log.
  std::string LogTail(size_t n) const;

 private:
  pid_t pid_ = -1;
  std::string log_;
};

// "" if `tool` is in $PATH, else why not.
std::string MissingTool(const std::string& tool);

// True if `path` (absolute, normalised) is a mount point in /proc/self/mountinfo.
bool IsMountPoint(const std::string& path);

// Writes `text` as the file `path` (atomically, mode 0600); fails the run if it cannot.
void WriteText(const std::string& path, const std::string& text);
// Drops the kernel's page, dentry and inode caches (echo 3 > /proc/sys/vm/drop_caches; only
// clean pages go: what a benchmark reads back was made durable before). Needs root.
void DropCaches();

// The whole of the text file `path` ("" if it cannot be read).
std::string ReadText(const std::string& path);

// --- storage nodes -----------------------------------------------------------------------

// `count` `shardfs node` processes of the binary `shardfs` on 127.0.0.1:0, node I's data and
// log in `parent`/nodeI, each taking up to `capacity` bytes (no reserve, no scrubbing), each
// registered as a leftover while it runs. The destructor stops those still running.
class LocalNodes {
 public:
  // Fails the run if one does not start. `extra` flags go to every node; with `join`, each node
  // after the first joins the first's gossip network (--join).
  LocalNodes(const std::string& shardfs, const std::string& parent, int count, uint64_t capacity,
             const std::vector<std::string>& extra = {}, bool join = false);
  ~LocalNodes() { Stop(); }
  LocalNodes(const LocalNodes&) = delete;
  LocalNodes& operator=(const LocalNodes&) = delete;

  // SIGTERM to every node, SIGKILL to one still running after 30 s.
  void Stop();
  const std::vector<std::unique_ptr<test::NodeProcess>>& processes() const { return nodes_; }
  // "HOST:PORT,HOST:PORT,...", as `shardfs init --node` takes them.
  const std::string& list() const { return list_; }

 private:
  std::vector<std::unique_ptr<test::NodeProcess>> nodes_;
  std::string list_;
};

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

// --- files -------------------------------------------------------------------------------

constexpr size_t kBlock = size_t{4} << 20;

// Fills `out` with SplitMix64 output for 4 MiB block number `block` of a file seeded `seed`.
void FillBlock(MutableByteSpan out, uint64_t seed, uint64_t block);
// Writes `size` random bytes (FillBlock) as `path` and fsyncs it.
void WriteRandomFile(const std::string& path, uint64_t size, uint64_t seed);
// Fails the run unless the files `a` and `b` hold the same bytes.
void CompareFiles(const std::string& a, const std::string& b);

// A tree of `files` files of `kib` KiB of random bytes, `per_folder` to a folder
// (root/dNNNN/fNNNNN); its folders are made as needed. SyncFs's the file system at the end.
struct SmallTree {
  size_t files = 10000;
  size_t kib = 4;
  size_t per_folder = 100;

  std::string Path(const std::string& root, size_t i) const;
  void Write(const std::string& root, uint64_t seed) const;
  // Fails the run unless `copy` holds exactly the files of `root`, with the same bytes.
  void Compare(const std::string& root, const std::string& copy) const;
  uint64_t bytes() const { return static_cast<uint64_t>(files) * (kib << 10); }
};

// --- the report --------------------------------------------------------------------------

// printf of one double.
std::string Fmt(const char* f, double v);
// "(slowest-fastest)" of `units` over each of `secs`, "" for fewer than 2.
std::string Range(const std::vector<double>& secs, double units, const char* f);

// A target: what is judged, the value measured, the target, and whether it was met.
struct Target {
  std::string what;
  std::string value;
  std::string target;
  bool pass;
};

// Prints "targets", a line per target ending in `met_word` or MISS, and how many were met,
// followed by `note` in brackets.
void PrintTargets(const std::vector<Target>& targets, const char* met_word,
                  const std::string& note);
// The targets as a JSON array of {what, value, target, pass}.
nlohmann::json TargetsJson(const std::vector<Target>& targets);

}  // namespace shardfs::bench

#endif  // SHARDFS_BENCH_BENCH_UTIL_H_
